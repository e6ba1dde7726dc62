//! What the hub shares with every publisher: the configuration, the ingest side's clock and
//! spawner, the recorder, the part ids issued and the DVR disk tier. Publishers hold this
//! rather than the hub, so the packaging side depends on nothing above it.

use std::sync::Arc;

use super::part_ids::PartIds;
use crate::clock::Time;
use crate::config::Config;
use crate::record::Recorder;
use crate::store::spill::SpillTier;
use crate::store::TrackWindow;

/// The hub's shared services (see the module docs).
#[derive(Debug)]
pub struct Services {
    config: Arc<Config>,
    /// Where publishers and the lifecycle read the time and schedule work.
    time: Time,
    recorder: Recorder,
    /// The part ids issued, so no part URL is reused.
    part_ids: PartIds,
    /// The DVR disk tier, when some app has a DVR window.
    spill: Option<Arc<SpillTier>>,
}

impl Services {
    /// The services for `config` on `time`'s clock and spawner.
    pub fn new(config: Arc<Config>, time: Time) -> Self {
        Services {
            time,
            part_ids: PartIds::default(),
            recorder: Recorder::new(&config.record),
            spill: super::dvr::tier(&config),
            config,
        }
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock and spawner of the ingest side.
    pub fn time(&self) -> &Time {
        &self.time
    }

    /// What is recorded to disk.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The part ids issued.
    pub fn part_ids(&self) -> &PartIds {
        &self.part_ids
    }

    /// A new window for track `track` (`video`, `audio`, or `ts` for the MPEG-TS feed) of
    /// rendition `label` of `app/base`, whose part numbers start at `first_part`: the live
    /// window, or the app's DVR window (see [`super::dvr`]).
    pub fn track_window(
        &self,
        app: &str,
        base: &str,
        label: &str,
        track: &str,
        first_part: u64,
    ) -> TrackWindow {
        let spill = self.spill.as_ref();
        super::dvr::window(&self.config, spill, app, base, label, track, first_part)
    }
}

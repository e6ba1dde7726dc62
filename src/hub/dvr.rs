//! Which window a track gets: the live window, or for an app with a DVR window
//! (`[record.apps.X] dvr_window`) that many segments, of which only the live window's
//! worth stays in memory and the rest lives in the disk tier ([`crate::store::spill`]).

use std::sync::Arc;

use crate::config::Config;
use crate::store::spill::{Spill, SpillTier};
use crate::store::{TrackWindow, GRACE_SEGMENTS};

/// The disk tier, when some app has a DVR window; `None` also when its directory is
/// unusable (logged): DVR windows then fall back to the live window.
pub(super) fn tier(config: &Config) -> Option<Arc<SpillTier>> {
    let record = &config.record;
    if !record.any_dvr() {
        return None;
    }
    match SpillTier::start(&record.dvr_dir, record.dvr_disk_bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(dir = %record.dvr_dir.display(), error = %e,
                "DVR disk tier unusable: DVR windows are off");
            None
        }
    }
}

/// A new window for track `track` of rendition `label` of `app/base`, whose part numbers
/// start at `first_part`: the live window, or with a DVR window for the app and a disk
/// tier, that many segments of which only the live window's worth stays in memory.
pub(super) fn window(
    config: &Config,
    spill: Option<&Arc<SpillTier>>,
    app: &str,
    base: &str,
    label: &str,
    track: &str,
    first_part: u64,
) -> TrackWindow {
    let live = config.segment.window;
    let window = match (spill, config.record.dvr_secs(app)) {
        (Some(tier), Some(secs)) => {
            let segments = (secs / config.segment.target_duration).ceil() as usize;
            let memory = live + GRACE_SEGMENTS;
            let path = format!("{app}/{base}/{label}/{track}");
            TrackWindow::with_first_part(segments.max(live), first_part).with_spill(Spill::new(
                tier.clone(),
                &path,
                memory,
            ))
        }
        _ => TrackWindow::with_first_part(live, first_part),
    };
    window.with_init_versions(config.limits.init_versions)
}

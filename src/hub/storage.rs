//! Where a publisher's packaged objects go: init segments, parts, CMAF and TS segments
//! into the rendition's windows (live or DVR), with the gap segments a returning rung
//! needs and the wall-clock times its playlists show; CMAF segments also to the recorder.
//! Ending a publish here hands the rendition to the lifecycle, which schedules its expiry.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tracing::debug;

use super::gaps::Boundaries;
use super::ladder::Ladder;
use super::lifecycle::{Departure, Expire};
use super::rendition::Rendition;
use super::services::Services;
use super::ts_output::TsSegment;
use crate::media::{CodecConfig, TrackKind, MEDIA_CLOCK};
use crate::segment::{CutPart, CutSegment};
use crate::store::{StoredPart, StoredSegment, TrackWindow};

/// One publisher's view of the store: the rendition it feeds, in its ladder, with the
/// hub's services and the way to expire the rendition once it ends.
pub(super) struct Storage {
    pub(super) services: Arc<Services>,
    pub(super) expire: Expire,
    pub(super) ladder: Arc<Ladder>,
    pub(super) rendition: Arc<Rendition>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("ladder", &self.ladder)
            .field("rendition", &self.rendition.label)
            .finish_non_exhaustive()
    }
}

/// The ladder's boundaries and wall-clock times, as the gap segments need them.
impl Boundaries for Storage {
    fn start(&self, seq: u64) -> Option<i64> {
        self.ladder.timeline.boundary_start(seq)
    }

    /// Wall-clock time of ladder time `t` (EXT-X-PROGRAM-DATE-TIME).
    fn wall_clock(&self, t: i64) -> SystemTime {
        match self.ladder.timeline.origin() {
            Some(origin) => crate::wallclock::shift(origin, t),
            None => self.services.time().now(),
        }
    }
}

impl Storage {
    /// The last segment number the rendition holds (its previous publish's, on a reconnect).
    pub(super) fn last_seq(&self) -> Option<u64> {
        let state = self.rendition.read();
        [state.video.as_ref(), state.audio.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|t| t.window.last().map(|s| s.seq))
            .max()
    }

    /// Stores `init` as a new init segment version of track `kind` (configured `config`),
    /// creating the track's window (live or DVR) when it is new. Returns the version and
    /// whether an existing track changed codec configuration.
    pub(super) fn add_init(
        &self,
        kind: TrackKind,
        config: &CodecConfig,
        init: Bytes,
    ) -> (u64, bool) {
        // Init versions grow with the wall clock (and at least by one), so their URLs are
        // never reused by a republish or a codec change and can be cached like segments;
        // so do part ids (see `part_ids`).
        let version = {
            let state = self.rendition.read();
            let previous = state.track(kind).map(|t| t.init_version + 1);
            previous
                .unwrap_or(0)
                .max(self.services.time().epoch_number(1))
        };
        let first_part = self.services.part_ids().first(self.services.time().now());
        let (app, base, label) = (&self.ladder.app, &self.ladder.base, &self.rendition.label);
        let window = self
            .services
            .track_window(app, base, label, kind.as_str(), first_part);
        let changed = self
            .rendition
            .write()
            .configure(kind, config, version, init, window);
        (version, changed)
    }

    /// Replaces track `kind`'s current init segment (same version).
    pub(super) fn replace_init(&self, kind: TrackKind, init: Bytes) {
        self.rendition.write().replace_init(kind, init);
    }

    /// The gaps `window` needs before segment `seq` at ladder time `media_start` (a rung
    /// back after a drop), computed from a snapshot, with no lock held.
    fn gaps(&self, window: Option<&TrackWindow>, seq: u64, media_start: i64) -> Vec<StoredSegment> {
        window.map_or_else(Vec::new, |w| {
            super::gaps::missing(w, seq, media_start, self)
        })
    }

    fn track_gaps(&self, kind: TrackKind, seq: u64, media_start: i64) -> Vec<StoredSegment> {
        let state = self.rendition.read();
        self.gaps(state.track(kind).map(|t| &t.window), seq, media_start)
    }

    /// One LL-HLS part (`data`, muxed) appended to its track's open segment; the first
    /// part of a segment opens it. `part_target` is the PART-TARGET to advertise.
    pub(super) fn part(
        &self,
        part: &CutPart,
        data: Bytes,
        discontinuity: bool,
        part_target: Option<f64>,
    ) -> Option<u64> {
        let kind = part.kind;
        let head = StoredSegment {
            seq: part.seq,
            start: part.samples.first().map_or(0, |s| s.dts),
            duration: 0,
            timescale: part.timescale,
            wall_clock: Boundaries::wall_clock(self, part.media_start),
            init_version: 0, // the track's, filled in by the writer
            discontinuity,
            parts: Vec::new(),
        };
        let gaps = self.track_gaps(kind, part.seq, part.media_start);
        let mut state = self.rendition.write();
        state.fix_part_target(part_target);
        let id = state.push_part(kind, gaps, head, part.duration(), part.independent(), data);
        drop(state);
        id.inspect(|id| self.services.part_ids().issued(*id))
    }

    /// A finished CMAF segment of `cut`'s track: `parts` is its one fragment, or empty when
    /// its parts are stored already (low latency). Recorded too when the ladder is.
    pub(super) fn segment(&self, cut: &CutSegment, parts: Vec<StoredPart>, discontinuity: bool) {
        let kind = cut.kind;
        let (app, base) = (&self.ladder.app, &self.ladder.base);
        // Recordings keep the ladder's own audio only: their VoD master has no alternatives.
        let record =
            self.services.recorder().wants(app, base) && self.rendition.audio_track.is_none();
        let segment = StoredSegment {
            seq: cut.seq,
            start: cut.start(),
            duration: cut.duration(),
            timescale: cut.timescale,
            wall_clock: Boundaries::wall_clock(self, cut.media_start),
            init_version: 0, // the track's, filled in by the writer
            discontinuity,
            parts,
        };
        let gaps = self.track_gaps(kind, cut.seq, cut.media_start);
        let stored = self.rendition.write().push_segment(kind, gaps, segment);
        if stored && record {
            let state = self.rendition.read();
            let tap = state
                .track(kind)
                .and_then(|t| crate::record::Tap::new(&t.config, &t.window, cut.seq));
            drop(state);
            if let Some(tap) = tap {
                let label = &self.rendition.label;
                self.services.recorder().segment(app, base, label, tap);
            }
        }
        metrics::counter!("packgate_segments_total", "track" => kind.as_str()).increment(1);
        metrics::histogram!("packgate_segment_duration_seconds", "track" => kind.as_str())
            .record(cut.duration_secs());
        debug!(
            track = kind.as_str(),
            seq = cut.seq,
            secs = cut.duration_secs(),
            "segment ready"
        );
    }

    /// A muxed MPEG-TS segment into the rendition's TS window.
    pub(super) fn ts(&self, seg: TsSegment) {
        let stored = StoredSegment {
            seq: seg.seq,
            start: seg.start,
            duration: seg.duration,
            timescale: MEDIA_CLOCK,
            wall_clock: Boundaries::wall_clock(self, seg.media_start),
            init_version: 0,
            discontinuity: seg.discontinuity,
            parts: vec![StoredPart {
                id: seg.seq,
                duration: seg.duration,
                independent: seg.independent,
                data: seg.data,
            }],
        };
        let gaps = self.gaps(self.rendition.read().ts.as_ref(), seg.seq, seg.media_start);
        // The TS feed gets the app's DVR window too (its segments spill like CMAF's).
        let (app, base, label) = (&self.ladder.app, &self.ladder.base, &self.rendition.label);
        // Made before the rendition's lock is taken (no lock while another is held).
        let first = self.rendition.read().ts.is_none();
        let window = first.then(|| self.services.track_window(app, base, label, "ts", 0));
        self.rendition.write().push_ts(gaps, stored, window);
        metrics::counter!("packgate_segments_total", "track" => "ts").increment(1);
    }

    /// The publish ended (its media stored): tells the recorder, and the lifecycle, which
    /// ends the playlists now or after the linger time and schedules the expiry.
    pub(super) fn close(&self, how: Departure) {
        let (app, base) = (&self.ladder.app, &self.ladder.base);
        let clean = how == Departure::Clean;
        self.services
            .recorder()
            .stopped(app, base, &self.rendition.label, clean);
        let (ladder, rendition) = (&self.ladder, &self.rendition);
        super::lifecycle::stopped(&self.services, &self.expire, ladder, rendition, how);
    }
}

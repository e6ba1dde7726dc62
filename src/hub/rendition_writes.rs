//! Every change a rendition's state can undergo, as named methods of its writer: the
//! publisher's storage and the lifecycle call these, nothing writes the fields directly.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{StateWriter, TrackOutput};
use crate::media::{CodecConfig, TrackKind};
use crate::store::{StoredSegment, TrackWindow};

impl StateWriter<'_> {
    /// Sets track `kind` up with `config` and its init segment `init` as version
    /// `version`; a track seen for the first time gets `window`. True when the track
    /// existed with another configuration (a codec change).
    pub fn configure(
        &mut self,
        kind: TrackKind,
        config: &CodecConfig,
        version: u64,
        init: Bytes,
        window: TrackWindow,
    ) -> bool {
        let track = self.state_mut().track_mut(kind);
        let changed = track.as_ref().is_some_and(|old| old.config != *config);
        let out = track.get_or_insert_with(|| TrackOutput {
            config: config.clone(),
            init_version: version,
            window,
        });
        out.config = config.clone();
        out.init_version = version;
        out.window.add_init(version, init);
        changed
    }

    /// Replaces the current init segment of track `kind` under the same version (nothing
    /// refers to it yet).
    pub fn replace_init(&mut self, kind: TrackKind, init: Bytes) {
        if let Some(track) = self.state_mut().track_mut(kind) {
            track.window.add_init(track.init_version, init);
        }
    }

    /// Appends a part to track `kind`'s open segment, after the `gaps` its window needs
    /// first; `head` describes the segment when the part opens it (its `init_version` is
    /// the track's). Returns the part's id; `None` (nothing stored) without the track.
    pub fn push_part(
        &mut self,
        kind: TrackKind,
        gaps: Vec<StoredSegment>,
        head: StoredSegment,
        duration: u64,
        independent: bool,
        data: Bytes,
    ) -> Option<u64> {
        let track = self.state_mut().track_mut(kind).as_mut()?;
        gaps.into_iter().for_each(|g| track.window.push_gap(g));
        let init_version = track.init_version;
        let head = || StoredSegment {
            init_version,
            ..head
        };
        Some(track.window.push_part(head, duration, independent, data))
    }

    /// Appends a finished segment to track `kind`'s window after the `gaps` it needs
    /// first, under the track's current init version. False (nothing stored) without the
    /// track.
    pub fn push_segment(
        &mut self,
        kind: TrackKind,
        gaps: Vec<StoredSegment>,
        segment: StoredSegment,
    ) -> bool {
        let Some(track) = self.state_mut().track_mut(kind).as_mut() else {
            return false;
        };
        gaps.into_iter().for_each(|g| track.window.push_gap(g));
        track.window.push(StoredSegment {
            init_version: track.init_version,
            ..segment
        });
        true
    }

    /// Appends an MPEG-TS segment after the `gaps` it needs first; the first segment
    /// brings the TS `window` (a live window of the default length when `None`).
    pub fn push_ts(
        &mut self,
        gaps: Vec<StoredSegment>,
        segment: StoredSegment,
        window: Option<TrackWindow>,
    ) {
        let ts = self.state_mut().ts.get_or_insert_with(|| {
            window
                .unwrap_or_else(|| TrackWindow::new(crate::config::SegmentConfig::default().window))
        });
        gaps.into_iter().for_each(|g| ts.push_gap(g));
        ts.push(segment);
    }

    /// The wall-clock time of media time zero of the current timeline.
    pub fn set_timeline_origin(&mut self, origin: Option<SystemTime>) {
        self.state_mut().timeline_origin = origin;
    }

    /// How far (ms) the recent cuts were from the ladder's boundaries.
    pub fn set_misalignment_ms(&mut self, ms: f64) {
        self.state_mut().misalignment_ms = ms;
    }

    /// Whether video has gone longer than the keyframe cap without a keyframe.
    pub fn set_keyframe_overdue(&mut self, overdue: bool) {
        self.state_mut().keyframe_overdue = overdue;
    }

    /// Fixes the advertised PART-TARGET once: a playlist's PART-TARGET never changes.
    pub fn fix_part_target(&mut self, secs: Option<f64>) {
        if self.part_target.is_none() && secs.is_some() {
            self.state_mut().part_target = secs;
        }
    }

    /// The lifecycle's fields (see [`super::super::lifecycle`]): ended, or waiting for a
    /// reconnect since `reconnect_wait`, or neither (publishing).
    pub(in crate::hub) fn set_lifecycle(&mut self, ended: bool, reconnect_wait: Option<Instant>) {
        let state = self.state_mut();
        state.ended = ended;
        state.reconnect_wait = reconnect_wait;
    }

    /// A new publish session by connection `conn_id` continues the rendition.
    pub(in crate::hub) fn next_session(&mut self, conn_id: u64) {
        let state = self.state_mut();
        state.generation += 1;
        state.publisher = conn_id;
    }
}

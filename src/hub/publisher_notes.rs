//! The publisher's per-segment judgements that end up in the rendition's state: keyframes
//! overdue, and alignment with the ladder's boundaries. Logged once per change and counted
//! with the ingest warnings (see [`super::super::diagnostics`]).

use tracing::{info, warn};

use super::Publisher;
use crate::hub::diagnostics::{warned, Warning};
use crate::media::MEDIA_CLOCK;

impl Publisher {
    /// Logs and records in the rendition's state when video goes without keyframes for
    /// longer than the cap, and when keyframes come back.
    pub(super) fn note_keyframes(&mut self) {
        let overdue = self.segmenter.keyframe_overdue();
        if overdue.is_some() == self.overdue {
            return;
        }
        self.overdue = overdue.is_some();
        let cap = self.hub.config().segment.keyframe_cap().as_secs_f64();
        warned(Warning::KeyframeOverdue, self.overdue);
        if self.overdue {
            warn!(app = %self.ladder.app, stream = %self.rendition.stream_name, cap_s = cap,
                "no keyframe for longer than segment.max_keyframe_interval: segments are cut between keyframes (not independent)");
        } else {
            info!(app = %self.ladder.app, stream = %self.rendition.stream_name, "keyframes again");
        }
        self.rendition.write().keyframe_overdue = self.overdue;
    }

    /// Records how far the latest cut was from the ladder boundary; logs changes.
    pub(super) fn note_alignment(&mut self) {
        let m = self.segmenter.misalignment();
        let was = self.misalignments.iter().copied().max().unwrap_or(0);
        self.misalignments.push_back(m);
        if self.misalignments.len() > self.hub.config().segment.window {
            self.misalignments.pop_front();
        }
        let now = self.misalignments.iter().copied().max().unwrap_or(0);
        let ms = now as f64 * 1000.0 / f64::from(MEDIA_CLOCK);
        if m > 0 && was == 0 {
            warned(Warning::LadderMisaligned, true);
            warn!(ladder = %self.ladder.base, rendition = %self.rendition.label, misalignment_ms = ms,
                "keyframes not aligned with the ladder: players may stall when switching to this rendition");
        } else if now == 0 && was > 0 {
            warned(Warning::LadderMisaligned, false);
            info!(ladder = %self.ladder.base, rendition = %self.rendition.label, "keyframes aligned with the ladder again");
        }
        self.rendition.write().misalignment_ms = ms;
    }

    /// The publish ended: its conditions no longer count as active in the metrics.
    pub(super) fn clear_notes(&mut self) {
        if std::mem::take(&mut self.overdue) {
            warned(Warning::KeyframeOverdue, false);
        }
        if self.misalignments.iter().any(|m| *m > 0) {
            warned(Warning::LadderMisaligned, false);
            self.misalignments.clear();
        }
    }
}

//! The publisher's per-segment judgements that end up in the rendition's state: keyframes
//! overdue, and alignment with the ladder's boundaries. Logged once per change and counted
//! with the ingest warnings (see [`super::super::diagnostics`]).

use tracing::{info, warn};

use super::Publisher;
use crate::hub::diagnostics::{warned, Warning};

impl Publisher {
    /// Logs and records in the rendition's state when video goes without keyframes for
    /// longer than the cap, and when keyframes come back.
    pub(super) fn note_keyframes(&mut self) {
        let overdue = self.segmenter.keyframe_overdue();
        if overdue.is_some() == self.overdue {
            return;
        }
        self.overdue = overdue.is_some();
        let cap = self
            .store
            .services
            .config()
            .segment
            .keyframe_cap()
            .as_secs_f64();
        warned(Warning::KeyframeOverdue, self.overdue);
        let (app, stream) = self.names();
        if self.overdue {
            warn!(app = %app, stream = %stream, cap_s = cap,
                "no keyframe for longer than segment.max_keyframe_interval: segments are cut between keyframes (not independent)");
        } else {
            info!(app = %app, stream = %stream, "keyframes again");
        }
        self.store
            .rendition
            .write()
            .set_keyframe_overdue(self.overdue);
    }

    /// Records how far the latest cut was from the ladder boundary; logs changes.
    pub(super) fn note_alignment(&mut self) {
        let m = self.segmenter.misalignment();
        let names = (&*self.store.ladder.base, &*self.store.rendition.label);
        let ms = self.map.note_alignment(m, names);
        self.store.rendition.write().set_misalignment_ms(ms);
    }

    /// The publish ended: its conditions no longer count as active in the metrics.
    pub(super) fn clear_notes(&mut self) {
        if std::mem::take(&mut self.overdue) {
            warned(Warning::KeyframeOverdue, false);
        }
        self.map.clear_alignment();
    }
}

//! A publisher's media clock mapped onto its ladder's timeline: jumps in the encoder's
//! timestamps removed, the rendition joined to the ladder by wall-clock arrival, its first
//! keyframe snapped onto the nearest ladder boundary (frames before it held, within a
//! byte budget), and how far its cuts land from the ladder's boundaries logged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{info, warn};

use super::diagnostics::{warned, Warning};
use super::rendition::slot;
use crate::flv::timestamp::Reanchor;
use crate::media::{Frame, TrackKind, MEDIA_CLOCK};
use crate::segment::timeline::LadderTimeline;

/// Why a publisher wants its connection closed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// More media arrived before the first keyframe than `[limits] held_bytes` allows.
    #[error("{held} bytes of media before the first keyframe (limits.held_bytes = {limit})")]
    HeldBytes {
        /// Bytes held when the budget ran out.
        held: usize,
        /// The budget.
        limit: usize,
    },
}

/// Where a frame stands once mapped.
#[derive(Debug)]
pub(super) enum Placed {
    /// Held until the first keyframe fixes the mapping.
    Held,
    /// On the ladder timeline.
    Ready(Frame),
    /// The first keyframe, on the ladder timeline, after the frames held before it.
    First(Vec<Frame>, Frame),
}

/// Maps one publisher's media times onto its ladder's timeline.
#[derive(Debug)]
pub(super) struct TimelineMap {
    timeline: Arc<LadderTimeline>,
    /// Added to this publisher's media times to put them on the ladder timeline; set by
    /// the first frame, corrected once by the first keyframe's snap.
    offset: Option<i64>,
    snapped: bool,
    /// The last segment number of this rendition's previous publish, when this one is a
    /// reconnect: its first keyframe snaps only to ladder boundaries numbered above it.
    resumed_after: Option<u64>,
    /// Frames that arrived before the first keyframe fixed the offset.
    pub(super) held: Vec<Frame>,
    /// Bytes `held` costs (payloads plus per-frame bookkeeping).
    pub(super) held_bytes: usize,
    held_limit: usize,
    /// Removes jumps from the encoder's timestamps.
    reanchor: Reanchor,
    /// Misalignment (ticks) of the recent cuts, newest last, at most `window` of them.
    misalignments: VecDeque<i64>,
    window: usize,
}

impl TimelineMap {
    /// A mapping onto `timeline` for a publisher that resumes after segment
    /// `resumed_after` (a reconnect), holding at most `held_limit` bytes before the first
    /// keyframe and treating a jump over `jump` ticks as a discontinuity; alignment is
    /// judged over the last `window` cuts.
    pub(super) fn new(
        timeline: Arc<LadderTimeline>,
        resumed_after: Option<u64>,
        held_limit: usize,
        jump: i64,
        window: usize,
    ) -> Self {
        TimelineMap {
            timeline,
            offset: None,
            snapped: false,
            resumed_after,
            held: Vec::new(),
            held_bytes: 0,
            held_limit,
            reanchor: Reanchor::new(jump),
            misalignments: VecDeque::new(),
            window,
        }
    }

    /// Removes a timestamp jump from `frame` (a wrap the unwrapper could not see, an
    /// encoder restart, a far-future frame): the stream's timeline continues. Returns the
    /// jump (ticks) when there was one.
    pub(super) fn reanchor(&mut self, frame: &mut Frame) -> Option<i64> {
        let mapped = self.reanchor.map(slot(frame.kind), frame.dts);
        let shift = mapped.time - frame.dts;
        frame.dts += shift;
        frame.pts += shift;
        mapped.jump
    }

    /// Puts `frame`, arriving at `now()` (read for the first frame only), on the ladder
    /// timeline. Until the first keyframe (any first frame when the stream has no video)
    /// frames are held; `names` label the warning when the held bytes run over budget.
    pub(super) fn place(
        &mut self,
        mut frame: Frame,
        now: impl FnOnce() -> SystemTime,
        has_video: bool,
        names: (&str, &str),
    ) -> Result<Placed, FrameError> {
        let timeline = &self.timeline;
        let offset = *self
            .offset
            .get_or_insert_with(|| timeline.join(frame.dts, now()));
        if self.snapped {
            frame.dts += offset;
            frame.pts += offset;
            return Ok(Placed::Ready(frame));
        }
        let anchor = !has_video || (frame.kind == TrackKind::Video && frame.keyframe);
        if !anchor {
            self.hold(frame, names)?;
            return Ok(Placed::Held);
        }
        // Land the first keyframe exactly on the ladder boundary it is nearest to.
        let corrected = offset + timeline.snap(frame.dts + offset, self.resumed_after);
        self.offset = Some(corrected);
        self.snapped = true;
        self.held_bytes = 0;
        let mut held = std::mem::take(&mut self.held);
        for f in held.iter_mut().chain(std::iter::once(&mut frame)) {
            f.dts += corrected;
            f.pts += corrected;
        }
        Ok(Placed::First(held, frame))
    }

    /// Wall-clock time of ladder time zero, once known.
    pub(super) fn origin(&self) -> Option<SystemTime> {
        self.timeline.origin()
    }

    /// Keeps a frame until the first keyframe, within the `[limits] held_bytes` budget.
    fn hold(&mut self, frame: Frame, (app, stream): (&str, &str)) -> Result<(), FrameError> {
        let limit = self.held_limit;
        self.held_bytes += frame.data.len() + std::mem::size_of::<Frame>();
        if self.held_bytes > limit {
            warn!(app = %app, stream = %stream, held = self.held_bytes, limit,
                "no keyframe within the held_bytes budget: closing the connection");
            let held = self.held_bytes;
            self.held.clear();
            self.held_bytes = 0;
            return Err(FrameError::HeldBytes { held, limit });
        }
        self.held.push(frame);
        Ok(())
    }

    /// Records that the latest cut was `m` ticks from the ladder boundary; logs changes
    /// (`names`: ladder base and rendition label). Returns the largest recent distance, ms.
    pub(super) fn note_alignment(&mut self, m: i64, (ladder, rendition): (&str, &str)) -> f64 {
        let was = self.misalignments.iter().copied().max().unwrap_or(0);
        self.misalignments.push_back(m);
        if self.misalignments.len() > self.window {
            self.misalignments.pop_front();
        }
        let now = self.misalignments.iter().copied().max().unwrap_or(0);
        let ms = now as f64 * 1000.0 / f64::from(MEDIA_CLOCK);
        if m > 0 && was == 0 {
            warned(Warning::LadderMisaligned, true);
            warn!(ladder = %ladder, rendition = %rendition, misalignment_ms = ms,
                "keyframes not aligned with the ladder: players may stall when switching to this rendition");
        } else if now == 0 && was > 0 {
            warned(Warning::LadderMisaligned, false);
            info!(ladder = %ladder, rendition = %rendition, "keyframes aligned with the ladder again");
        }
        ms
    }

    /// The publish ended: its misalignment no longer counts as active in the metrics.
    pub(super) fn clear_alignment(&mut self) {
        if self.misalignments.iter().any(|m| *m > 0) {
            warned(Warning::LadderMisaligned, false);
            self.misalignments.clear();
        }
    }
}

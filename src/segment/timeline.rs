//! The shared ladder timeline: every rendition of a ladder is cut at the same media times
//! and numbers its segments the same way, so players can switch between renditions at
//! any segment boundary.
//!
//! Renditions arrive on separate connections with their own RTMP clocks. A rendition's
//! clock is mapped onto the ladder's by wall-clock arrival, then snapped so that its first
//! keyframe lands exactly on the nearest existing boundary (encoders that emit aligned
//! keyframes then align exactly). Boundaries follow the usual rule, the first keyframe at
//! or after the target since the last boundary, and whichever rendition reaches a
//! boundary first records it: connections race, so no rendition may wait for another.
//! Each rendition numbers its segments contiguously (`last + 1`), which equals the
//! boundary's number exactly when it is aligned; a keyframe that misses the boundaries is
//! reported as misalignment, and the ladder still plays.
//!
//! A rendition whose encoder dropped and came back ([`LadderTimeline::rejoin`]) takes the
//! number of the boundary it lands on, so it is aligned with the others again at once;
//! the numbers it missed while away become gap segments in its playlists
//! ([`crate::store::TrackWindow::push_gap`]), which keeps them contiguous.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::media::MEDIA_CLOCK;

/// A keyframe within this many ticks of a boundary is on it (half a frame at 60 fps).
const ALIGN_TOLERANCE: i64 = MEDIA_CLOCK as i64 / 120;
/// Boundaries remembered.
const MEMORY: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Boundary {
    seq: u64,
    start: i64,
}

#[derive(Debug)]
struct State {
    origin: Option<SystemTime>,
    boundaries: VecDeque<Boundary>,
    next_seq: u64,
}

/// One ladder's timeline, shared by its renditions' segmenters.
#[derive(Debug)]
pub struct LadderTimeline {
    target: i64,
    state: Mutex<State>,
}

/// What the timeline says about a keyframe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Not a segment start.
    No,
    /// Start segment `seq` here; `misaligned` is how far (ticks) the cut is from the
    /// ladder's boundary with that number, 0 when aligned.
    At {
        /// Sequence number of the new segment.
        seq: u64,
        /// Distance to the ladder's boundary, ticks.
        misaligned: i64,
    },
}

impl LadderTimeline {
    /// A timeline cutting at `target`, numbering from `first_seq`.
    pub fn new(target: Duration, first_seq: u64) -> Self {
        LadderTimeline {
            target: (target.as_secs_f64() * f64::from(MEDIA_CLOCK)).round() as i64,
            state: Mutex::new(State {
                origin: None,
                boundaries: VecDeque::new(),
                next_seq: first_seq,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wall-clock time of ladder time zero, once a rendition started.
    pub fn origin(&self) -> Option<SystemTime> {
        self.lock().origin
    }

    /// The offset (ticks) that maps a rendition's media clock onto the ladder's, given its
    /// first frame's time `dts` arriving at `now`. The first rendition defines the ladder
    /// clock (offset 0).
    pub fn join(&self, dts: i64, now: SystemTime) -> i64 {
        let mut s = self.lock();
        let Some(origin) = s.origin else {
            s.origin = Some(crate::wallclock::shift(now, -dts));
            return 0;
        };
        let since = match now.duration_since(origin) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        (since * f64::from(MEDIA_CLOCK)).round() as i64 - dts
    }

    /// Snaps a joining rendition's first keyframe at ladder time `t` onto the nearest
    /// boundary within half a target duration; returns the correction to add. A rendition
    /// coming back after segment `after` only snaps to boundaries numbered above it. The
    /// ladder's next boundary counts too: a rendition arrives about as late as its peers'
    /// frames, so the boundary nearest to it is often one no peer has reached yet. It is
    /// predicted one target after the last, or one cadence when GOPs are longer than the
    /// target (a few ms of timestamp jitter in the last interval do not count).
    pub fn snap(&self, t: i64, after: Option<u64>) -> i64 {
        let s = self.lock();
        let mut recent = s.boundaries.iter().rev();
        let predicted = recent.next().map(|last| {
            let cadence = recent
                .next()
                .map(|prev| last.start - prev.start)
                .filter(|&c| c > self.target + self.target / 50)
                .unwrap_or(self.target);
            last.start + cadence
        });
        s.boundaries
            .iter()
            .filter(|b| after.is_none_or(|a| b.seq > a))
            .map(|b| b.start)
            .chain(predicted)
            .map(|start| start - t)
            .filter(|d| d.abs() <= self.target / 2)
            .min_by_key(|d| d.abs())
            .unwrap_or(0)
    }

    /// Like [`LadderTimeline::keyframe`] for the first cut of a rendition that comes back
    /// after its segment `last_seq`: it starts on a ladder boundary numbered above
    /// `last_seq` and takes that boundary's number (not `last_seq + 1`), so it is aligned
    /// with the renditions that went on meanwhile. Until the ladder has such a boundary
    /// (the rendition came back within the segment it left in), it waits.
    pub fn rejoin(&self, t: i64, last_seq: u64, force: bool) -> Cut {
        match self.keyframe(t, None, force) {
            Cut::At { seq, misaligned } if seq > last_seq => Cut::At { seq, misaligned },
            _ => Cut::No,
        }
    }

    /// Where boundary `seq` starts (ladder time), while it is remembered.
    pub fn boundary_start(&self, seq: u64) -> Option<i64> {
        let s = self.lock();
        s.boundaries.iter().find(|b| b.seq == seq).map(|b| b.start)
    }

    /// Decides whether a keyframe at ladder time `t` starts a segment, given the
    /// rendition's current segment `(seq, start)`.
    ///
    /// `force` asks for a cut whatever the distance from the last boundary (a segment
    /// at its length limit, a discontinuity, or a keyframe after a forced cut). A forced
    /// cut takes a boundary the ladder has already passed when there is one; otherwise it
    /// records a new boundary only if the rendition is in step with the ladder (its
    /// segment began on a boundary), so a rendition with odd GOPs never moves the
    /// boundaries of the others.
    pub fn keyframe(&self, t: i64, current: Option<(u64, i64)>, force: bool) -> Cut {
        let mut s = self.lock();
        let own_next = current.map(|(seq, _)| seq + 1);
        let after_current =
            |start: i64| current.is_none_or(|(_, cur)| start > cur + ALIGN_TOLERANCE);
        let at = |seq: u64, b: Boundary| Cut::At {
            seq,
            misaligned: if seq == b.seq {
                (t - b.start).abs()
            } else {
                (t - b.start).abs().max(1)
            },
        };
        // A keyframe on a recorded boundary.
        if let Some(b) = s
            .boundaries
            .iter()
            .rev()
            .find(|b| (b.start - t).abs() <= ALIGN_TOLERANCE)
            .copied()
        {
            if !after_current(b.start) {
                return Cut::No;
            }
            let seq = own_next.unwrap_or(b.seq);
            return if seq == b.seq {
                Cut::At { seq, misaligned: 0 }
            } else {
                at(seq, b)
            };
        }
        // The first to reach a due keyframe records the boundary.
        let in_step = current.is_none_or(|(_, cur)| {
            s.boundaries
                .iter()
                .any(|b| (b.start - cur).abs() <= ALIGN_TOLERANCE)
        });
        let due = s
            .boundaries
            .back()
            .is_none_or(|l| t - l.start >= self.target);
        let passed = s
            .boundaries
            .iter()
            .rev()
            .find(|b| b.start < t && after_current(b.start))
            .copied();
        if due || (force && passed.is_none() && in_step) {
            let b = Boundary {
                seq: s.next_seq,
                start: t,
            };
            s.next_seq += 1;
            s.boundaries.push_back(b);
            if s.boundaries.len() > MEMORY {
                s.boundaries.pop_front();
            }
            let seq = own_next.unwrap_or(b.seq);
            return if seq == b.seq {
                Cut::At { seq, misaligned: 0 }
            } else {
                at(seq, b)
            };
        }
        // Off every boundary: cut once a boundary has passed since this segment began.
        match (passed, current) {
            (Some(b), _) => at(own_next.unwrap_or(b.seq), b),
            // Forced out of step: a cut of this rendition's own, not a ladder boundary.
            (None, Some((seq, cur))) if force && t > cur => Cut::At {
                seq: seq + 1,
                misaligned: (t - cur).max(1),
            },
            _ => Cut::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: i64 = MEDIA_CLOCK as i64;

    fn cut(seq: u64) -> Cut {
        Cut::At { seq, misaligned: 0 }
    }

    #[test]
    fn renditions_share_numbers_whoever_comes_first() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 100);
        let now = SystemTime::now();
        assert_eq!(tl.join(0, now), 0);
        assert_eq!(tl.keyframe(0, None, false), cut(100));
        assert_eq!(tl.keyframe(2 * S, Some((100, 0)), false), cut(101));
        // Rendition 2 joins 300 ms later with its own clock at 0; it is mapped by wall
        // clock and its first keyframe snapped onto the boundary at 0.
        let off = tl.join(0, now + Duration::from_millis(300));
        assert_eq!(off, 3 * S / 10);
        assert_eq!(tl.snap(off, None), -off);
        assert_eq!(tl.keyframe(0, None, false), cut(100));
        assert_eq!(
            tl.keyframe(S, Some((100, 0)), false),
            Cut::No,
            "mid-segment keyframe"
        );
        assert_eq!(tl.keyframe(2 * S, Some((100, 0)), false), cut(101));
        // Rendition 2 gets to 4 s before rendition 1: it records the boundary, 1 finds it.
        assert_eq!(tl.keyframe(4 * S, Some((101, 2 * S)), false), cut(102));
        assert_eq!(tl.keyframe(4 * S + 10, Some((101, 2 * S)), false), cut(102));
        assert_eq!(
            tl.keyframe(4 * S, Some((102, 4 * S)), false),
            Cut::No,
            "same boundary twice"
        );
    }

    #[test]
    fn misaligned_keyframes_are_measured_and_numbers_stay_contiguous() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 1);
        tl.join(0, SystemTime::now());
        tl.keyframe(0, None, false);
        tl.keyframe(2 * S, Some((1, 0)), false);
        tl.keyframe(4 * S, Some((2, 2 * S)), false);
        assert_eq!(tl.keyframe(0, None, false), cut(1));
        // 2.5 s GOP: the keyframe at 2.5 s missed the boundary at 2 s by 500 ms.
        assert_eq!(
            tl.keyframe(5 * S / 2, Some((1, 0)), false),
            Cut::At {
                seq: 2,
                misaligned: S / 2
            }
        );
        assert_eq!(
            tl.keyframe(5 * S, Some((2, 5 * S / 2)), false),
            Cut::At {
                seq: 3,
                misaligned: S
            }
        );
        assert_eq!(
            tl.keyframe(6 * S, Some((3, 5 * S)), false),
            cut(4),
            "due: records the 6 s boundary"
        );
    }

    #[test]
    fn forced_cuts_never_move_the_boundaries_of_renditions_in_step() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 1);
        tl.join(0, SystemTime::now());
        assert_eq!(tl.keyframe(0, None, false), cut(1));
        assert_eq!(tl.keyframe(2 * S, Some((1, 0)), false), cut(2));
        // An odd rung (segment began off the boundaries) forced at 2.5 s takes the boundary
        // the ladder passed at 2 s...
        assert_eq!(
            tl.keyframe(5 * S / 2, Some((1, 0)), true),
            Cut::At {
                seq: 2,
                misaligned: S / 2
            }
        );
        // ...and forced again at 3 s (its keyframe after the forced cut) cuts on its own,
        // recording nothing: the in-step rung still finds the 4 s boundary due.
        assert_eq!(
            tl.keyframe(3 * S, Some((2, 5 * S / 2)), true),
            Cut::At {
                seq: 3,
                misaligned: S / 2
            }
        );
        assert_eq!(tl.keyframe(4 * S, Some((2, 2 * S)), false), cut(3));
        // A rung in step, forced with no boundary passed (no keyframe within the longest
        // segment), records the boundary the others then find.
        assert_eq!(tl.keyframe(6 * S + S / 2, Some((3, 4 * S)), true), cut(4));
        assert_eq!(tl.keyframe(6 * S + S / 2, Some((3, 4 * S)), false), cut(4));
    }

    #[test]
    fn a_rung_back_after_a_drop_takes_the_boundary_number() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 1);
        let now = SystemTime::now();
        tl.join(0, now);
        // Rung A cuts 1..=3 and drops after segment 3; rung B goes on to 6 (10 s).
        for (i, t) in [0, 2, 4].into_iter().enumerate() {
            assert_eq!(
                tl.keyframe(t * S, (i > 0).then(|| (i as u64, (t - 2) * S)), false),
                cut(i as u64 + 1)
            );
        }
        for seq in 4..=6 {
            let t = (seq as i64 - 1) * 2 * S;
            assert_eq!(tl.keyframe(t, Some((seq - 1, t - 2 * S)), false), cut(seq));
        }
        // A comes back: its first keyframe, snapped to 10 s, is boundary 6: number 6, not 4.
        assert_eq!(tl.snap(10 * S + S / 3, Some(3)), -S / 3);
        assert_eq!(tl.rejoin(10 * S, 3, false), cut(6));
        // Off the boundaries (its snap failed): the boundary passed, reported misaligned.
        assert_eq!(
            tl.rejoin(10 * S + S / 2, 3, false),
            Cut::At {
                seq: 6,
                misaligned: S / 2
            }
        );
        // Ahead of B: A records boundary 7 itself, and B then finds it.
        assert_eq!(tl.rejoin(12 * S, 3, false), cut(7));
        assert_eq!(tl.keyframe(12 * S, Some((6, 10 * S)), false), cut(7));
    }

    #[test]
    fn a_rung_back_within_its_own_segment_waits_for_the_next_boundary() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 1);
        tl.join(0, SystemTime::now());
        assert_eq!(tl.keyframe(0, None, false), cut(1));
        assert_eq!(tl.keyframe(2 * S, Some((1, 0)), false), cut(2));
        // Dropped in segment 2 and back 0.5 s later (2.7 s): boundary 2 is already its own,
        // and snapping to it would overlap what it published.
        assert_eq!(tl.snap(27 * S / 10, Some(2)), 0);
        assert_eq!(tl.rejoin(27 * S / 10, 2, false), Cut::No);
        // Its next keyframe is due: a new boundary, number 3 (a lone rung stays contiguous).
        assert_eq!(tl.rejoin(47 * S / 10, 2, false), cut(3));
    }

    #[test]
    fn snap_reaches_the_boundary_no_rung_has_cut_yet() {
        let tl = LadderTimeline::new(Duration::from_secs(2), 1);
        tl.join(0, SystemTime::now());
        tl.keyframe(0, None, false);
        tl.keyframe(2 * S, Some((1, 0)), false);
        // 3.7 s: 4 s (predicted from the 2 s cadence) is nearer than 2 s.
        assert_eq!(tl.snap(37 * S / 10, None), 3 * S / 10);
        assert_eq!(tl.boundary_start(2), Some(2 * S));
        assert_eq!(tl.boundary_start(3), None);
        // 2.6 s: the recorded 2 s boundary is nearer.
        assert_eq!(tl.snap(26 * S / 10, None), -6 * S / 10);
        // 3 s GOPs with a 2 s target: the next boundary is one cadence on; a 26 ms longer
        // interval (timestamp jitter) still predicts one target on.
        assert_eq!(tl.keyframe(5 * S, Some((2, 2 * S)), false), cut(3));
        assert_eq!(tl.snap(75 * S / 10, None), S / 2);
        let jitter = 7 * S + 26 * S / 1000;
        assert_eq!(tl.keyframe(jitter, Some((3, 5 * S)), false), cut(4));
        assert_eq!(tl.snap(jitter + 17 * S / 10, None), 3 * S / 10);
    }

    /// Segment numbers a segmenter on `tl` cuts from 30 fps video with 2 s GOPs over
    /// `from_ms..to_ms` (ladder time).
    fn cut_video(
        tl: &Arc<LadderTimeline>,
        resume: Option<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<(u64, i64)> {
        use crate::media::{Frame, TrackKind};
        use crate::segment::{Output, Segmenter};
        let mut s = Segmenter::with_timeline(Duration::from_secs(2), tl.clone(), resume);
        s.set_track(TrackKind::Video, 90_000, None);
        let mut out = Vec::new();
        for i in 0..(to_ms - from_ms) * 30 / 1000 {
            let dts = (from_ms + i * 1000 / 30) * 90;
            out.extend(s.push(Frame {
                kind: TrackKind::Video,
                dts,
                pts: dts,
                keyframe: i % 60 == 0,
                data: bytes::Bytes::from_static(b"v"),
            }));
        }
        out.extend(s.finish());
        out.into_iter()
            .filter_map(Output::segment)
            .map(|c| (c.seq, c.media_start))
            .collect()
    }

    #[test]
    fn a_segmenter_resuming_on_the_ladder_takes_its_numbers() {
        let tl = Arc::new(LadderTimeline::new(Duration::from_secs(2), 1));
        tl.join(0, SystemTime::now());
        // Rung A: 0..7 s, then its encoder dies (segments 1..=4, the last one short).
        let a = cut_video(&tl, None, 0, 7_000);
        assert_eq!(a.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // Rung B goes on to 16 s.
        let b = cut_video(&tl, None, 0, 16_000);
        assert_eq!(b.last(), Some(&(8, 14 * S)));
        // A is back at 10 s: its first segment is number 6 (B's number for 10 s), not 5.
        let again = cut_video(&tl, Some(4), 10_000, 16_000);
        assert_eq!(again, vec![(6, 10 * S), (7, 12 * S), (8, 14 * S)]);
    }
}

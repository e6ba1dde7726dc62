//! Unwrapping RTMP's 32-bit millisecond timestamps into one 64-bit timeline, and
//! re-anchoring a stream whose timestamps jump.

/// Turns successive 32-bit millisecond timestamps into a continuous i64 timeline.
///
/// Each timestamp is placed relative to the previous one: the step is the 32-bit
/// difference read as signed, so a jump of less than half the range (~24.8 days) either
/// way is an ordinary step (a slightly late or reordered packet gives a small negative
/// one), and only a larger jump is a wrap past 2^32 (or a late packet from before it).
/// The timeline starts at the first timestamp, not at zero, so it matches the encoder's.
///
/// FLV muxers (ffmpeg's, OBS's) keep only 31 bits: their timestamps go from 2^31 - 1 back
/// to 0 after 24.86 days. A step that lands within an hour of ±2^31 is that wrap (or a
/// late packet from before it), not a jump of 24.8 days.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper {
    /// The previous raw timestamp and where it landed.
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    /// Maps `ts` onto the unwrapped timeline.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let value = match self.last {
            None => i64::from(ts),
            // Reinterpreting the wrapped difference as i32 is the "nearest way round".
            Some((raw, value)) => {
                let step = i64::from(ts.wrapping_sub(raw) as i32);
                value
                    + if step.abs() > HALF_WRAP - WRAP_SLACK {
                        step - step.signum() * HALF_WRAP
                    } else {
                        step
                    }
            }
        };
        self.last = Some((ts, value));
        value
    }
}

/// The 31-bit wrap of FLV muxers, ms.
const HALF_WRAP: i64 = 1 << 31;
/// How far from ±2^31 a step may be and still be read as the 31-bit wrap, ms.
const WRAP_SLACK: i64 = 3_600_000;

/// The default discontinuity threshold, [`MEDIA_CLOCK`](crate::media::MEDIA_CLOCK) ticks
/// (3 s, `segment.timestamp_jump`): more than any interleaving of audio ahead of video,
/// and short enough that a frame stretched over the step would not overrun a segment by
/// much more than the playlists allow.
pub const JUMP_TICKS: i64 = 3 * crate::media::MEDIA_CLOCK as i64;

/// Keeps a stream's timeline continuous across timestamp discontinuities.
///
/// When a frame's time jumps by more than the threshold from the previous frame of any
/// track, the whole stream is shifted so that the frame lands where its track's next frame
/// was expected (its previous frame plus its last step): durations stay true, the timeline
/// stays monotonic (DASH needs no new Period), and every track moves by the same amount
/// so lip sync is kept. The caller marks a discontinuity in the playlists.
#[derive(Debug, Clone)]
pub struct Reanchor {
    /// Steps larger than this (either way) are discontinuities, ticks.
    threshold: i64,
    /// Added to every incoming time.
    offset: i64,
    /// The previous incoming time, any track.
    last_in: Option<i64>,
    /// Per track: the previous outgoing time and the step that led to it.
    tracks: [Option<(i64, i64)>; 2],
}

/// What [`Reanchor::map`] did with a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The time on the continuous timeline.
    pub time: i64,
    /// The jump just removed (new minus previous incoming time), if this frame made one.
    pub jump: Option<i64>,
}

impl Default for Reanchor {
    fn default() -> Self {
        Reanchor::new(JUMP_TICKS)
    }
}

impl Reanchor {
    /// Treats steps of more than `threshold` media-clock ticks as discontinuities.
    pub fn new(threshold: i64) -> Self {
        Reanchor {
            threshold,
            offset: 0,
            last_in: None,
            tracks: [None; 2],
        }
    }

    /// Maps the decode time `t` (media clock) of a frame of track `track` (0 or 1).
    pub fn map(&mut self, track: usize, t: i64) -> Mapped {
        let jump = self
            .last_in
            .map(|prev| t - prev)
            .filter(|step| step.abs() > self.threshold);
        if jump.is_some() {
            let newest = self.tracks.iter().flatten().map(|&(out, _)| out).max();
            let expected = match self.tracks.get(track).copied().flatten() {
                Some((out, step)) => out + step,
                None => newest.unwrap_or(t + self.offset),
            };
            self.offset = expected - t;
        }
        self.last_in = Some(t);
        let time = t + self.offset;
        if let Some(slot) = self.tracks.get_mut(track) {
            let step = match *slot {
                Some((prev, _)) if time > prev => time - prev,
                Some((_, step)) => step,
                None => 0,
            };
            *slot = Some((time, step));
        }
        Mapped { time, jump }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRAP: i64 = 1 << 32;

    #[test]
    fn wraps_at_2_pow_32() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(u.unwrap(u32::MAX), i64::from(u32::MAX));
        assert_eq!(u.unwrap(0), WRAP);
        assert_eq!(u.unwrap(5), WRAP + 5);
        assert_eq!(
            u.unwrap(u32::MAX - 2),
            i64::from(u32::MAX - 2),
            "late packet from before the wrap"
        );
        assert_eq!(u.unwrap(40), WRAP + 40);
    }

    #[test]
    fn keeps_counting_over_many_wraps() {
        let mut u = Unwrapper::default();
        let step = 1u32 << 30; // a quarter of the range: never mistaken for a wrap
        let mut raw = 0u32;
        for i in 0..=20i64 {
            assert_eq!(u.unwrap(raw), i * i64::from(step));
            raw = raw.wrapping_add(step);
        }
    }

    #[test]
    fn small_backward_steps_stay_small() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(990), 990);
        assert_eq!(u.unwrap(2000), 2000);
        // A quarter of the range backwards is still a step back (a step near half the
        // range is the 31-bit wrap, below)...
        let mut u = Unwrapper::default();
        u.unwrap(u32::MAX);
        assert_eq!(
            u.unwrap(u32::MAX - (1 << 30)),
            i64::from(u32::MAX) - (1 << 30)
        );
        // ...and backwards from near zero it goes negative rather than wrapping forwards.
        let mut u = Unwrapper::default();
        u.unwrap(10);
        assert_eq!(u.unwrap(u32::MAX - 9), -10);
    }

    #[test]
    fn flv_muxers_wrap_at_2_pow_31() {
        let mut u = Unwrapper::default();
        let top = (1i64 << 31) - 20;
        assert_eq!(u.unwrap(top as u32), top);
        assert_eq!(u.unwrap((top + 19) as u32), top + 19);
        // ffmpeg's FLV muxer keeps 31 bits: 2^31 - 1 is followed by 0.
        assert_eq!(u.unwrap(13), (1 << 31) + 13);
        assert_eq!(u.unwrap((top + 15) as u32), top + 15, "late packet");
        assert_eq!(u.unwrap(46), (1 << 31) + 46);
        // A genuine jump of a day either way stays a jump (the re-anchor removes it).
        let mut u = Unwrapper::default();
        u.unwrap(1000);
        assert_eq!(u.unwrap(1000 + 86_400_000), 1000 + 86_400_000);
        assert_eq!(u.unwrap(1000), 1000);
    }

    const MS: i64 = 90;

    #[test]
    fn jumps_are_removed_and_durations_kept() {
        let mut r = Reanchor::default();
        let mut out = Vec::new();
        // Video every 33 ms, audio every 21 ms; at 1 s both jump back by an hour.
        let mut events: Vec<(usize, i64)> = (0..60).map(|i| (0, i * 33 * MS)).collect();
        events.extend((0..90).map(|i| (1, i * 21 * MS)));
        events.sort_by_key(|&(_, t)| t);
        let shift = |t: i64| {
            if t >= 1000 * MS {
                t - 3_600_000 * MS
            } else {
                t
            }
        };
        for (track, t) in events {
            out.push((track, r.map(track, shift(t))));
        }
        let jumps: Vec<_> = out.iter().filter(|(_, m)| m.jump.is_some()).collect();
        assert_eq!(jumps.len(), 1);
        let jump_s = jumps[0].1.jump.unwrap() as f64 / MS as f64 / 1000.0;
        assert!((jump_s + 3600.0).abs() < 1.0, "{jump_s}");
        for track in 0..2 {
            let times: Vec<i64> = out
                .iter()
                .filter(|(k, _)| *k == track)
                .map(|(_, m)| m.time)
                .collect();
            let step = if track == 0 { 33 * MS } else { 21 * MS };
            assert!(
                times.windows(2).all(|w| w[1] - w[0] == step),
                "track {track}: {times:?}"
            );
        }
    }

    #[test]
    fn a_far_future_frame_is_two_jumps() {
        let mut r = Reanchor::default();
        let mut times = Vec::new();
        for i in 0..10i64 {
            let t = if i == 5 { 86_400_000 * MS } else { i * 40 * MS };
            times.push(r.map(0, t).time);
        }
        assert!(
            times
                .windows(2)
                .all(|w| w[1] > w[0] && w[1] - w[0] <= 80 * MS),
            "{times:?}"
        );
        let mut r = Reanchor::default();
        assert_eq!(r.map(1, 5 * MS).jump, None);
        assert_eq!(r.map(1, 11 * MS).jump, None, "small steps are media time");
    }
}

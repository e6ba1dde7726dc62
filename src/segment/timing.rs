//! Per-track sample timing: frames on the 90 kHz media clock become samples in the
//! track's own timescale, each with a duration.
//!
//! A frame's duration is only known when the next frame arrives, so the newest frame is
//! held back. AAC frames carry a fixed number of PCM samples while RTMP timestamps are
//! rounded to milliseconds; audio time is therefore counted in samples and only
//! re-anchored to the RTMP clock when the two disagree by more than a frame (a real gap).
//!
//! Video frames that share a timestamp (a live encoder under load stamps two frames in the
//! same millisecond, or steps back one) are held together until a later timestamp arrives
//! and then spread evenly over the interval. Spacing them one clock tick apart instead kept
//! decode order but left frames 11 µs long, which players and ffmpeg (whose output time base
//! is the frame rate) read as non-monotonic timestamps.

use crate::media::{Frame, Sample, TrackKind, MEDIA_CLOCK};

/// Most video frames held back for sharing one timestamp; beyond it they are spaced by
/// the last duration (bounds the latency a stuck encoder clock can add).
const MAX_TIED: usize = 8;

/// Converts a track's frames into timed samples.
#[derive(Debug)]
pub struct SampleClock {
    kind: TrackKind,
    timescale: u32,
    /// Fixed samples per frame for audio (e.g. 1024 for AAC); `None` for video.
    frame_duration: Option<u32>,
    /// Frames held back with their track times: the newest, after any earlier video
    /// frames that share its timestamp.
    pending: Vec<(Frame, i64)>,
    last_duration: u32,
}

impl SampleClock {
    /// A clock for a track with the given timescale; `frame_duration` is set for audio.
    pub fn new(kind: TrackKind, timescale: u32, frame_duration: Option<u32>) -> Self {
        SampleClock {
            kind,
            timescale,
            frame_duration,
            pending: Vec::new(),
            last_duration: frame_duration.unwrap_or(timescale / 30),
        }
    }

    /// The track's timescale.
    pub fn timescale(&self) -> u32 {
        self.timescale
    }

    /// Fixed samples per frame (audio), if any.
    pub fn frame_duration(&self) -> Option<u32> {
        self.frame_duration
    }

    /// The duration of the latest finished sample, ticks.
    pub fn last_duration(&self) -> u32 {
        self.last_duration
    }

    /// Media-clock decode time of the first frame held back, if any.
    pub fn pending_dts(&self) -> Option<i64> {
        self.pending.first().map(|(f, _)| f.dts)
    }

    /// Converts media-clock ticks to this track's timescale, rounding to nearest.
    pub fn to_track_time(&self, media: i64) -> i64 {
        let ts = i128::from(self.timescale);
        let clock = i128::from(MEDIA_CLOCK);
        ((i128::from(media) * ts + clock / 2).div_euclid(clock)) as i64
    }

    /// Takes the next frame; returns the frames held back before it as finished samples.
    pub fn push(&mut self, mut frame: Frame) -> Vec<TimedSample> {
        debug_assert_eq!(frame.kind, self.kind);
        let Some((last, last_t)) = self.pending.last().map(|(f, t)| (f.dts, *t)) else {
            let t = self.to_track_time(frame.dts);
            self.pending.push((frame, t));
            return Vec::new();
        };
        if frame.dts <= last {
            // Tied with (or behind) the newest frame: keep decode order.
            let shift = last - frame.dts;
            frame.dts += shift;
            frame.pts += shift;
            if self.frame_duration.is_none() && self.pending.len() < MAX_TIED {
                self.pending.push((frame, last_t));
                return Vec::new();
            }
            let step = i64::from(self.last_duration.max(1));
            let media_step = self.to_media_time(step).max(1);
            let n = self.pending.len() as i64;
            frame.dts += media_step * n;
            frame.pts += media_step * n;
        }
        let mut t = self.to_track_time(frame.dts);
        if let Some(fd) = self.frame_duration {
            let expected = last_t + i64::from(fd);
            if (t - expected).abs() < i64::from(fd) {
                t = expected;
            }
        }
        let out = self.release(frame.dts, t);
        self.pending.push((frame, t));
        out
    }

    /// Releases the frames held back at end of stream, with the last known duration.
    pub fn flush(&mut self) -> Vec<TimedSample> {
        let Some((first, first_t)) = self.pending.first().map(|(f, t)| (f.dts, *t)) else {
            return Vec::new();
        };
        let n = self.pending.len() as i64;
        let step = i64::from(self.last_duration.max(1));
        self.release(first + self.to_media_time(step) * n, first_t + step * n)
    }

    /// Track ticks to media-clock ticks, rounding to nearest.
    fn to_media_time(&self, track: i64) -> i64 {
        let ts = i128::from(self.timescale);
        ((i128::from(track) * i128::from(MEDIA_CLOCK) + ts / 2).div_euclid(ts)) as i64
    }

    /// Finishes every held frame, spreading them evenly up to the next frame at media
    /// time `next_dts` (track time `next_t`).
    fn release(&mut self, next_dts: i64, next_t: i64) -> Vec<TimedSample> {
        let held = std::mem::take(&mut self.pending);
        let Some((base_dts, base_t)) = held.first().map(|(f, t)| (f.dts, *t)) else {
            return Vec::new();
        };
        let n = held.len() as i64;
        let (span_t, span_media) = ((next_t - base_t).max(n), (next_dts - base_dts).max(0));
        let at = |i: i64| base_t + span_t * i / n;
        let mut out = Vec::with_capacity(held.len());
        for (i, (mut frame, _)) in (0i64..).zip(held) {
            let offset = span_media * i / n;
            frame.dts += offset;
            frame.pts += offset;
            let duration = (at(i + 1) - at(i)).clamp(1, i64::from(u32::MAX)) as u32;
            self.last_duration = duration;
            out.push(self.finish(frame, at(i), duration));
        }
        out
    }

    fn finish(&self, frame: Frame, t: i64, duration: u32) -> TimedSample {
        let cts = self
            .to_track_time(frame.pts - frame.dts)
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        TimedSample {
            media_dts: frame.dts,
            sample: Sample {
                dts: t,
                duration,
                cts,
                keyframe: frame.keyframe,
                data: frame.data,
            },
        }
    }
}

/// A finished sample plus its decode time on the media clock, which decides its segment.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedSample {
    /// Decode time on the 90 kHz media clock.
    pub media_dts: i64,
    /// The sample in the track's timescale.
    pub sample: Sample,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(kind: TrackKind, ms: i64, cts_ms: i64, key: bool) -> Frame {
        Frame {
            kind,
            dts: ms * 90,
            pts: (ms + cts_ms) * 90,
            keyframe: key,
            data: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn video_durations_come_from_the_next_frame() {
        let mut c = SampleClock::new(TrackKind::Video, 90_000, None);
        assert!(c.push(frame(TrackKind::Video, 0, 66, true)).is_empty());
        let s = c
            .push(frame(TrackKind::Video, 33, -33, false))
            .pop()
            .unwrap();
        assert_eq!(
            (s.sample.dts, s.sample.duration, s.sample.cts),
            (0, 2970, 5940)
        );
        let s = c.push(frame(TrackKind::Video, 67, 0, false)).pop().unwrap();
        assert_eq!(
            (s.sample.dts, s.sample.duration, s.sample.cts),
            (2970, 3060, -2970)
        );
        let s = c.flush().pop().unwrap();
        assert_eq!((s.sample.dts, s.sample.duration), (6030, 3060));
        assert!(c.flush().is_empty());
    }

    #[test]
    fn audio_counts_samples_despite_millisecond_rounding() {
        let mut c = SampleClock::new(TrackKind::Audio, 44_100, Some(1024));
        let mut out = Vec::new();
        // 1024 samples at 44.1 kHz = 23.22 ms; RTMP rounds to 23 or 24.
        for i in 0..100i64 {
            let ms = (i * 1024 * 1000) / 44_100;
            out.extend(c.push(frame(TrackKind::Audio, ms, 0, true)));
        }
        assert_eq!(out.len(), 99);
        for (i, s) in out.iter().enumerate() {
            assert_eq!(s.sample.dts, i as i64 * 1024);
            assert_eq!(s.sample.duration, 1024);
        }
    }

    #[test]
    fn audio_gap_reanchors_to_the_rtmp_clock() {
        let mut c = SampleClock::new(TrackKind::Audio, 48_000, Some(1024));
        c.push(frame(TrackKind::Audio, 0, 0, true));
        let a = c
            .push(frame(TrackKind::Audio, 1000, 0, true))
            .pop()
            .unwrap();
        assert_eq!(a.sample.duration, 48_000);
        let b = c
            .push(frame(TrackKind::Audio, 1021, 0, true))
            .pop()
            .unwrap();
        assert_eq!(b.sample.dts, 48_000);
    }

    #[test]
    fn tied_timestamps_are_spread_over_the_interval() {
        let mut c = SampleClock::new(TrackKind::Video, 90_000, None);
        assert!(c.push(frame(TrackKind::Video, 0, 0, true)).is_empty());
        assert!(c.push(frame(TrackKind::Video, 100, 0, false)).len() == 1);
        // Two frames stamped 100 ms and one stepping back to 90: held until 200 arrives.
        assert!(c.push(frame(TrackKind::Video, 100, 0, false)).is_empty());
        assert!(c.push(frame(TrackKind::Video, 90, 0, false)).is_empty());
        let out = c.push(frame(TrackKind::Video, 200, 0, false));
        let got: Vec<_> = out
            .iter()
            .map(|s| (s.media_dts, s.sample.dts, s.sample.duration))
            .collect();
        assert_eq!(
            got,
            vec![
                (9000, 9000, 3000),
                (12000, 12000, 3000),
                (15000, 15000, 3000)
            ]
        );
        // Presentation follows decode time.
        assert!(out.iter().all(|s| s.sample.cts == 0));
        let s = c.flush().pop().unwrap();
        assert_eq!((s.media_dts, s.sample.duration), (18000, 3000));
    }

    #[test]
    fn an_endless_tie_is_spaced_by_the_last_duration() {
        let mut c = SampleClock::new(TrackKind::Video, 90_000, None);
        c.push(frame(TrackKind::Video, 0, 0, true));
        c.push(frame(TrackKind::Video, 40, 0, false));
        let mut out = Vec::new();
        for _ in 0..20 {
            out.extend(c.push(frame(TrackKind::Video, 40, 0, false)));
        }
        out.extend(c.flush());
        assert_eq!(out.len(), 21);
        for w in out.windows(2) {
            assert_eq!(w[1].sample.dts - w[0].sample.dts, 3600, "{w:?}");
            assert!(w[1].media_dts > w[0].media_dts);
        }
    }
}

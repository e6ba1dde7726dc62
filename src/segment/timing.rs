//! Per-track sample timing: frames on the 90 kHz media clock become samples in the
//! track's own timescale, each with a duration.
//!
//! A frame's duration is only known when the next frame arrives, so the newest frame is
//! held back. AAC frames carry a fixed number of PCM samples while RTMP timestamps are
//! rounded to milliseconds; audio time is therefore counted in samples and only
//! re-anchored to the RTMP clock when the two disagree by more than a frame (a real gap).

use crate::media::{Frame, Sample, TrackKind, MEDIA_CLOCK};

/// Converts a track's frames into timed samples.
#[derive(Debug)]
pub struct SampleClock {
    kind: TrackKind,
    timescale: u32,
    /// Fixed samples per frame for audio (e.g. 1024 for AAC); `None` for video.
    frame_duration: Option<u32>,
    pending: Option<(Frame, i64)>,
    last_duration: u32,
}

impl SampleClock {
    /// A clock for a track with the given timescale; `frame_duration` is set for audio.
    pub fn new(kind: TrackKind, timescale: u32, frame_duration: Option<u32>) -> Self {
        SampleClock {
            kind,
            timescale,
            frame_duration,
            pending: None,
            last_duration: frame_duration.unwrap_or(timescale / 30),
        }
    }

    /// The track's timescale.
    pub fn timescale(&self) -> u32 {
        self.timescale
    }

    /// Media-clock decode time of the frame held back, if any.
    pub fn pending_dts(&self) -> Option<i64> {
        self.pending.as_ref().map(|(f, _)| f.dts)
    }

    /// Converts media-clock ticks to this track's timescale, rounding to nearest.
    pub fn to_track_time(&self, media: i64) -> i64 {
        let ts = i128::from(self.timescale);
        let clock = i128::from(MEDIA_CLOCK);
        ((i128::from(media) * ts + clock / 2).div_euclid(clock)) as i64
    }

    /// Takes the next frame; returns the previously held frame as a finished sample.
    pub fn push(&mut self, mut frame: Frame) -> Option<TimedSample> {
        debug_assert_eq!(frame.kind, self.kind);
        let Some((prev, prev_t)) = self.pending.take() else {
            let t = self.to_track_time(frame.dts);
            self.pending = Some((frame, t));
            return None;
        };
        if frame.dts <= prev.dts {
            // Encoders occasionally repeat or step back a timestamp; keep decode order
            // strictly increasing so trun durations stay positive.
            let shift = prev.dts + 1 - frame.dts;
            frame.dts += shift;
            frame.pts += shift;
        }
        let mut t = self.to_track_time(frame.dts);
        if let Some(fd) = self.frame_duration {
            let expected = prev_t + i64::from(fd);
            if (t - expected).abs() < i64::from(fd) {
                t = expected;
            }
        }
        let duration = (t - prev_t).clamp(1, i64::from(u32::MAX)) as u32;
        self.pending = Some((frame, t));
        self.last_duration = duration;
        Some(self.finish(prev, prev_t, duration))
    }

    /// Releases the held-back frame at end of stream, with the last known duration.
    pub fn flush(&mut self) -> Option<TimedSample> {
        let (frame, t) = self.pending.take()?;
        Some(self.finish(frame, t, self.last_duration))
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
        assert!(c.push(frame(TrackKind::Video, 0, 66, true)).is_none());
        let s = c.push(frame(TrackKind::Video, 33, -33, false)).unwrap();
        assert_eq!(
            (s.sample.dts, s.sample.duration, s.sample.cts),
            (0, 2970, 5940)
        );
        let s = c.push(frame(TrackKind::Video, 67, 0, false)).unwrap();
        assert_eq!(
            (s.sample.dts, s.sample.duration, s.sample.cts),
            (2970, 3060, -2970)
        );
        let s = c.flush().unwrap();
        assert_eq!((s.sample.dts, s.sample.duration), (6030, 3060));
        assert!(c.flush().is_none());
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
        let a = c.push(frame(TrackKind::Audio, 1000, 0, true)).unwrap();
        assert_eq!(a.sample.duration, 48_000);
        let b = c.push(frame(TrackKind::Audio, 1021, 0, true)).unwrap();
        assert_eq!(b.sample.dts, 48_000);
    }

    #[test]
    fn backwards_timestamps_stay_increasing() {
        let mut c = SampleClock::new(TrackKind::Video, 90_000, None);
        c.push(frame(TrackKind::Video, 100, 0, true));
        let s = c.push(frame(TrackKind::Video, 90, 0, false)).unwrap();
        assert_eq!(s.sample.duration, 1);
        let s = c.flush().unwrap();
        assert_eq!(s.media_dts, 100 * 90 + 1);
    }
}

//! Ingest diagnostics: what a publisher's encoder really sends (GOP, B-frames, bitrate,
//! timestamp health, A/V drift, missing tracks), measured from the frames the publisher
//! already sees, and the warnings that follow from it.
//!
//! The [`Tracker`] lives in the publisher and is updated per frame with a few integer
//! operations and no allocation; it copies its [`IngestStats`] into the rendition's shared
//! slot only when a warning changes or a measurement window closes, so readers (the API)
//! take a short lock on a small `Copy` struct.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use tracing::{info, warn};

use crate::media::{Frame, TrackKind, MEDIA_CLOCK};

/// Ticks per millisecond of the media clock.
const TICKS_PER_MS: i64 = MEDIA_CLOCK as i64 / 1000;
/// Media time over which the input bitrate is measured.
const RATE_WINDOW: i64 = 2 * MEDIA_CLOCK as i64;
/// A/V drift (video time minus audio time at arrival) that raises the warning...
const DRIFT_ON: i64 = 1000 * TICKS_PER_MS;
/// ...and the drift below which it clears again (hysteresis: no flapping at the edge).
const DRIFT_OFF: i64 = 500 * TICKS_PER_MS;
/// Media time one track may run without the other before that one counts as missing.
const MISSING_AFTER: i64 = 5 * MEDIA_CLOCK as i64;
/// Media time a timestamp jump or a backwards step stays listed after it happened.
const EVENT_HOLD: i64 = 10 * MEDIA_CLOCK as i64;
/// Slack on the GOP target: a GOP this much over the segment target is not "too long".
const GOP_SLACK: i64 = 50 * TICKS_PER_MS;
/// GOP lengths remembered to judge regularity.
const GOP_HISTORY: usize = 4;

/// One condition an ingest can be in. The discriminant is its bit in [`Warnings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Keyframes further apart than the segment target duration.
    GopTooLong = 0,
    /// Recent GOP lengths differ by more than a quarter.
    GopIrregular = 1,
    /// Keyframes do not land on the ladder's shared segment boundaries.
    LadderMisaligned = 2,
    /// A timestamp jump was re-anchored recently.
    TimestampJump = 3,
    /// A track's timestamps went backwards recently.
    TimestampBackwards = 4,
    /// Video and audio timestamps are more than a second apart at arrival.
    AvDrift = 5,
    /// Video flows but audio has not for a while (or never came).
    MissingAudio = 6,
    /// Audio flows but video has not for a while (or never came).
    MissingVideo = 7,
    /// No keyframe for longer than `segment.max_keyframe_interval`.
    KeyframeOverdue = 8,
    /// Measured input bitrate above `rtmp.warn_bitrate`.
    BitrateOverLimit = 9,
}

impl Warning {
    /// Every warning, in bit order.
    pub const ALL: [Warning; 10] = [
        Warning::GopTooLong,
        Warning::GopIrregular,
        Warning::LadderMisaligned,
        Warning::TimestampJump,
        Warning::TimestampBackwards,
        Warning::AvDrift,
        Warning::MissingAudio,
        Warning::MissingVideo,
        Warning::KeyframeOverdue,
        Warning::BitrateOverLimit,
    ];

    /// Stable machine name (API `code`, metric label).
    pub fn code(self) -> &'static str {
        match self {
            Warning::GopTooLong => "gop_too_long",
            Warning::GopIrregular => "gop_irregular",
            Warning::LadderMisaligned => "ladder_misaligned",
            Warning::TimestampJump => "timestamp_jump",
            Warning::TimestampBackwards => "timestamp_backwards",
            Warning::AvDrift => "av_drift",
            Warning::MissingAudio => "missing_audio",
            Warning::MissingVideo => "missing_video",
            Warning::KeyframeOverdue => "keyframe_overdue",
            Warning::BitrateOverLimit => "bitrate_over_limit",
        }
    }

    /// What it means for the operator.
    pub fn message(self) -> &'static str {
        match self {
            Warning::GopTooLong => "keyframe interval longer than segment.target_duration: segments run long; set the encoder's GOP to the target (e.g. -g 2*fps)",
            Warning::GopIrregular => "keyframe interval varies: segment durations vary; disable scene-cut keyframes",
            Warning::LadderMisaligned => "keyframes not aligned with the other renditions of the ladder: players may stall when switching",
            Warning::TimestampJump => "timestamp jump in the last 10 s (re-anchored, EXT-X-DISCONTINUITY)",
            Warning::TimestampBackwards => "timestamps went backwards in the last 10 s",
            Warning::AvDrift => "audio and video timestamps more than 1 s apart",
            Warning::MissingAudio => "no audio for 5 s while video flows",
            Warning::MissingVideo => "no video for 5 s while audio flows",
            Warning::BitrateOverLimit => "input bitrate above rtmp.warn_bitrate",
            Warning::KeyframeOverdue => "no keyframe for longer than segment.max_keyframe_interval: segments are cut between keyframes",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of [`Warning`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warnings(u16);

impl Warnings {
    /// True if `w` is in the set.
    pub fn has(self, w: Warning) -> bool {
        self.0 & w.bit() != 0
    }

    /// The set with `w` in or out.
    pub fn with(self, w: Warning, on: bool) -> Warnings {
        Warnings(if on {
            self.0 | w.bit()
        } else {
            self.0 & !w.bit()
        })
    }

    /// The warnings in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Warning> {
        Warning::ALL.into_iter().filter(move |w| self.has(*w))
    }
}

/// What is known about a publish's input, as the API shows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestStats {
    /// When the current publish started.
    pub started: Option<Instant>,
    /// The publisher's IP address, when known.
    pub publisher_ip: Option<IpAddr>,
    /// Frames in the last complete GOP.
    pub gop_frames: Option<u32>,
    /// Media time of the last complete GOP, ms.
    pub gop_ms: Option<f64>,
    /// Video frames were seen out of presentation order (B-frames).
    pub b_frames: bool,
    /// Bits per second in over the last measurement window, per kind (video, audio).
    pub bitrate_in: [u64; 2],
    /// Payload bytes received, all tracks.
    pub bytes_in: u64,
    /// Video time minus audio time at the latest arrival, ms.
    pub av_drift_ms: Option<f64>,
    /// Timestamp jumps re-anchored in this publish.
    pub timestamp_jumps: u64,
    /// The current warnings (ladder alignment excepted: that one is judged per segment).
    pub warnings: Warnings,
}

/// The rendition's shared copy of its publisher's [`IngestStats`].
#[derive(Debug, Default)]
pub struct Shared(Mutex<IngestStats>);

impl Shared {
    /// The latest copy.
    pub fn get(&self) -> IngestStats {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, stats: IngestStats) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = stats;
    }
}

fn slot(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// Per-publish measurement state; see the module docs.
#[derive(Debug)]
pub struct Tracker {
    stats: IngestStats,
    published: Warnings,
    app: String,
    stream: String,
    /// GOP target plus slack, ticks.
    gop_limit: i64,
    /// `rtmp.warn_bitrate`, bits/s; 0 = none.
    bitrate_limit: u64,
    /// Raw (encoder) dts of each kind's previous frame.
    last_raw: [Option<i64>; 2],
    /// Re-anchored dts of each kind's first and previous frame.
    first: [Option<i64>; 2],
    last: [Option<i64>; 2],
    max_pts: i64,
    key_dts: Option<i64>,
    gop_count: u32,
    gops: [i64; GOP_HISTORY],
    gops_seen: usize,
    rate_start: [Option<i64>; 2],
    rate_bytes: [u64; 2],
    jump_at: Option<i64>,
    backwards_at: Option<i64>,
    drifting: bool,
}

impl Tracker {
    /// Starts measuring a publish of `app/stream` whose segments target `target_ms`; the
    /// API sees the publisher and its start in `shared` at once.
    pub fn new(
        app: &str,
        stream: &str,
        target_ms: f64,
        ip: Option<IpAddr>,
        shared: &Shared,
    ) -> Tracker {
        let tracker = Tracker {
            stats: IngestStats {
                started: Some(Instant::now()),
                publisher_ip: ip,
                ..IngestStats::default()
            },
            published: Warnings::default(),
            app: app.to_string(),
            stream: stream.to_string(),
            gop_limit: (target_ms as i64) * TICKS_PER_MS + GOP_SLACK,
            bitrate_limit: 0,
            last_raw: [None; 2],
            first: [None; 2],
            last: [None; 2],
            max_pts: i64::MIN,
            key_dts: None,
            gop_count: 0,
            gops: [0; GOP_HISTORY],
            gops_seen: 0,
            rate_start: [None; 2],
            rate_bytes: [0; 2],
            jump_at: None,
            backwards_at: None,
            drifting: false,
        };
        shared.set(tracker.stats);
        tracker
    }

    /// Warns when the input bitrate goes above `bits_per_second` (0 = never).
    pub fn with_bitrate_limit(mut self, bits_per_second: u64) -> Tracker {
        self.bitrate_limit = bits_per_second;
        self
    }

    /// The stats so far.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// A timestamp jump was re-anchored (call before [`Tracker::frame`] of that frame).
    pub fn jump(&mut self) {
        self.stats.timestamp_jumps += 1;
        self.jump_at = Some(i64::MIN); // placed at the next frame's time
    }

    /// One frame: `raw_dts` as the encoder sent it, `frame` on the continuous timeline.
    /// Returns true when `shared` was updated.
    pub fn frame(&mut self, raw_dts: i64, frame: &Frame, shared: &Shared) -> bool {
        let k = slot(frame.kind);
        let now = frame.dts;
        let mut window_closed = false;
        if self.last_raw[k].is_some_and(|prev| raw_dts < prev) {
            self.backwards_at = Some(now);
        }
        self.last_raw[k] = Some(raw_dts);
        if self.jump_at == Some(i64::MIN) {
            self.jump_at = Some(now);
        }
        self.first[k].get_or_insert(now);
        self.last[k] = Some(now);
        self.stats.bytes_in += frame.data.len() as u64;
        // Input bitrate over windows of media time; this frame opens the next window.
        let start = *self.rate_start[k].get_or_insert(now);
        if now - start >= RATE_WINDOW {
            let secs = (now - start) as f64 / f64::from(MEDIA_CLOCK);
            self.stats.bitrate_in[k] = (self.rate_bytes[k] as f64 * 8.0 / secs) as u64;
            self.rate_start[k] = Some(now);
            self.rate_bytes[k] = 0;
            window_closed = true;
        }
        self.rate_bytes[k] += frame.data.len() as u64;
        if frame.kind == TrackKind::Video {
            window_closed |= self.video(frame);
        }
        let warnings = self.judge(now);
        if warnings != self.published || window_closed {
            self.announce(warnings);
            self.stats.warnings = warnings;
            shared.set(self.stats);
            return true;
        }
        false
    }

    /// GOP and B-frame bookkeeping; true when a GOP completed.
    fn video(&mut self, frame: &Frame) -> bool {
        if frame.pts < self.max_pts {
            self.stats.b_frames = true;
        }
        self.max_pts = self.max_pts.max(frame.pts);
        let mut done = false;
        if frame.keyframe {
            if let Some(prev) = self.key_dts {
                let len = frame.dts - prev;
                if len > 0 {
                    self.stats.gop_frames = Some(self.gop_count);
                    self.stats.gop_ms = Some(len as f64 / TICKS_PER_MS as f64);
                    self.gops[self.gops_seen % GOP_HISTORY] = len;
                    self.gops_seen += 1;
                    done = true;
                }
            }
            self.key_dts = Some(frame.dts);
            self.gop_count = 0;
        }
        self.gop_count += 1;
        done
    }

    /// The warnings at media time `now`.
    fn judge(&mut self, now: i64) -> Warnings {
        let (v, a) = (slot(TrackKind::Video), slot(TrackKind::Audio));
        // The open GOP is measured on video time: audio running ahead at the end of a
        // stream is no missing keyframe.
        let open_gop = match (self.key_dts, self.last[v]) {
            (Some(k), Some(lv)) => lv - k,
            _ => 0,
        };
        let last_gop = self.stats.gop_ms.map_or(0, |ms| (ms as i64) * TICKS_PER_MS);
        let long = last_gop.max(open_gop) > self.gop_limit;
        let seen = self.gops_seen.min(GOP_HISTORY);
        let irregular = seen >= 2 && {
            let g = &self.gops[..seen];
            let (lo, hi) = (g.iter().min(), g.iter().max());
            matches!((lo, hi), (Some(lo), Some(hi)) if hi - lo > hi / 4)
        };
        let recent = |at: Option<i64>| at.is_some_and(|t| t != i64::MIN && now - t < EVENT_HOLD);
        let drift = match (self.last[v], self.last[a]) {
            (Some(lv), Some(la)) => {
                let d = lv - la;
                self.stats.av_drift_ms = Some(d as f64 / TICKS_PER_MS as f64);
                self.drifting = if self.drifting {
                    d.abs() > DRIFT_OFF
                } else {
                    d.abs() > DRIFT_ON
                };
                self.drifting
            }
            _ => false,
        };
        // A track is missing when the other has run MISSING_AFTER past its last frame
        // (or past the other's first frame, when it never came).
        let missing = |this: usize, other: usize| match self.last[other] {
            Some(lo) => self.last[this].is_some_and(|lt| lt - lo > MISSING_AFTER),
            None => match (self.first[this], self.last[this]) {
                (Some(f), Some(l)) => l - f > MISSING_AFTER,
                _ => false,
            },
        };
        Warnings::default()
            .with(Warning::GopTooLong, self.last[v].is_some() && long)
            .with(Warning::GopIrregular, irregular)
            .with(Warning::TimestampJump, recent(self.jump_at))
            .with(Warning::TimestampBackwards, recent(self.backwards_at))
            .with(Warning::AvDrift, drift)
            .with(Warning::MissingAudio, missing(v, a))
            .with(Warning::MissingVideo, missing(a, v))
            .with(
                Warning::BitrateOverLimit,
                self.bitrate_limit > 0
                    && self.stats.bitrate_in.iter().sum::<u64>() > self.bitrate_limit,
            )
    }

    /// Logs and counts each warning that came or went.
    fn announce(&mut self, now: Warnings) {
        let was = std::mem::replace(&mut self.published, now);
        for w in Warning::ALL {
            match (was.has(w), now.has(w)) {
                (false, true) => {
                    warned(w, true);
                    warn!(app = %self.app, stream = %self.stream, warning = w.code(),
                        gop_ms = self.stats.gop_ms, drift_ms = self.stats.av_drift_ms,
                        "ingest: {}", w.message());
                }
                (true, false) => {
                    warned(w, false);
                    info!(app = %self.app, stream = %self.stream, warning = w.code(), "ingest: condition cleared");
                }
                _ => {}
            }
        }
    }

    /// The publish ended: its warnings no longer apply (cleared in `shared` and in the
    /// active-warning gauges); the measurements stay for the API.
    pub fn finish(&mut self, shared: &Shared) {
        self.announce(Warnings::default());
        self.stats.warnings = Warnings::default();
        shared.set(self.stats);
    }
}

/// Counts a warning coming (`on`) or going in the metrics: a counter of occurrences
/// and a gauge of the renditions it currently applies to.
pub fn warned(w: Warning, on: bool) {
    let active = metrics::gauge!("packgate_ingest_warnings_active", "warning" => w.code());
    if on {
        metrics::counter!("packgate_ingest_warnings_total", "warning" => w.code()).increment(1);
        active.increment(1.0);
    } else {
        active.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const MS: i64 = TICKS_PER_MS;

    fn frame(kind: TrackKind, dts: i64, pts: i64, keyframe: bool) -> Frame {
        Frame {
            kind,
            dts,
            pts,
            keyframe,
            data: Bytes::from_static(&[0; 100]),
        }
    }

    /// 30 fps video with a keyframe every `gop` frames and B-frame reordering, plus
    /// 1024-sample 48 kHz audio, for `secs` seconds.
    fn feed(t: &mut Tracker, shared: &Shared, gop: i64, secs: i64, audio: bool) {
        let step = 3000; // 90 kHz / 30
        let frames = secs * 30;
        let mut next_audio = 0;
        for i in 0..frames {
            let dts = i * step;
            // I P B pattern: every third frame shown before its predecessor.
            let pts = dts + if i % 3 == 1 { 3 * step } else { step };
            t.frame(
                dts,
                &frame(TrackKind::Video, dts, pts, i % gop == 0),
                shared,
            );
            while audio && next_audio <= dts {
                t.frame(
                    next_audio,
                    &frame(TrackKind::Audio, next_audio, next_audio, true),
                    shared,
                );
                next_audio += 1920;
            }
        }
    }

    #[test]
    fn measures_gop_b_frames_and_bitrate() {
        let shared = Shared::default();
        let mut t = Tracker::new("live", "s", 2000.0, None, &shared);
        feed(&mut t, &shared, 60, 8, true);
        let s = shared.get();
        assert_eq!(s.gop_frames, Some(60));
        assert_eq!(s.gop_ms, Some(2000.0));
        assert!(s.b_frames);
        assert_eq!(s.bitrate_in[0], 30 * 100 * 8);
        assert!(s.warnings.iter().next().is_none(), "{:?}", s.warnings);
        let mut capped =
            Tracker::new("live", "s", 2000.0, None, &shared).with_bitrate_limit(20_000);
        feed(&mut capped, &shared, 60, 4, true);
        assert!(shared.get().warnings.has(Warning::BitrateOverLimit));
    }

    #[test]
    fn long_gop_and_missing_audio_are_warned() {
        let shared = Shared::default();
        let mut t = Tracker::new("live", "s", 2000.0, None, &shared);
        feed(&mut t, &shared, 120, 9, false);
        let s = shared.get();
        assert_eq!(s.gop_ms, Some(4000.0));
        assert!(s.warnings.has(Warning::GopTooLong));
        assert!(s.warnings.has(Warning::MissingAudio));
        assert!(!s.warnings.has(Warning::GopIrregular));
    }

    #[test]
    fn backwards_timestamps_and_drift_come_and_go() {
        let shared = Shared::default();
        let mut t = Tracker::new("live", "s", 2000.0, None, &shared);
        t.frame(0, &frame(TrackKind::Video, 0, 0, true), &shared);
        t.frame(0, &frame(TrackKind::Audio, 0, 0, true), &shared);
        t.frame(3000, &frame(TrackKind::Video, 3000, 3000, false), &shared);
        t.frame(1000, &frame(TrackKind::Video, 3001, 3001, false), &shared);
        assert!(shared.get().warnings.has(Warning::TimestampBackwards));
        t.frame(
            1500 * MS,
            &frame(TrackKind::Video, 1500 * MS, 1500 * MS, false),
            &shared,
        );
        assert!(shared.get().warnings.has(Warning::AvDrift));
        t.frame(
            1400 * MS,
            &frame(TrackKind::Audio, 1400 * MS, 1400 * MS, true),
            &shared,
        );
        assert!(!shared.get().warnings.has(Warning::AvDrift));
        t.frame(
            12_000 * MS,
            &frame(TrackKind::Audio, 12_000 * MS, 12_000 * MS, true),
            &shared,
        );
        let w = shared.get().warnings;
        assert!(!w.has(Warning::TimestampBackwards));
        assert!(w.has(Warning::MissingVideo));
        assert!(
            !w.has(Warning::GopTooLong),
            "audio time does not stretch the open GOP"
        );
        t.finish(&shared);
        assert_eq!(shared.get().warnings, Warnings::default());
    }
}

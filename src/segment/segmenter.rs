//! The keyframe-aligned segmenter.
//!
//! Video keyframes decide the segment boundaries on the stream's media clock: a segment is
//! cut at the first keyframe at or after the target duration. Audio is cut at the same
//! media times, so segment N of every track covers the same span. Because audio may run a
//! little ahead of video on the wire, audio frames wait until video has passed their
//! timestamp (bounded by `AUDIO_LEAD_LIMIT`, in case video stalls) before they are placed.
//! A stream without video is cut on audio time alone.
//!
//! A segment never grows past the longest duration the playlists allow (EXT-X-TARGETDURATION
//! is fixed for the whole publish, and every EXTINF must round to at most it): when no
//! keyframe comes in time, the segment is cut before a non-sync frame and the next one is
//! marked not independent; the first keyframe after such a cut starts a segment again, so
//! the stream gets back in step with its GOPs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::output::Output;
use super::part::{PartCutter, PartEnds};
use super::timeline::{Cut, LadderTimeline};
use super::timing::{SampleClock, TimedSample};
use super::track_cut::{Follow, TrackCut};
use crate::media::{Frame, TrackKind, MEDIA_CLOCK};

/// How far audio may run ahead of video before it is placed without waiting (media clock).
const AUDIO_LEAD_LIMIT: i64 = MEDIA_CLOCK as i64;
/// Boundaries remembered for placing late samples; older ones are dropped.
const BOUNDARY_MEMORY: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Boundary {
    seq: u64,
    start: i64,
    /// Cut at a keyframe after the target (not forced): the segment it ends had its
    /// usual length.
    natural: bool,
    /// The segment it opens starts with a sync sample.
    sync: bool,
}

/// Cuts one stream's frames into aligned per-track segments.
#[derive(Debug)]
pub struct Segmenter {
    target: i64,
    next_seq: u64,
    boundaries: VecDeque<Boundary>,
    video: Option<TrackCut>,
    audio: Option<TrackCut>,
    audio_queue: VecDeque<Frame>,
    latest_video_dts: Option<i64>,
    /// The ladder's shared timeline, when cut decisions are shared with other renditions.
    timeline: Option<Arc<LadderTimeline>>,
    /// Last sequence number of a previous publish of this rendition: a reconnect starts on
    /// a ladder boundary numbered above it, with that boundary's number.
    resume: Option<u64>,
    /// Distance of the latest cut from the ladder's boundary, media clock ticks.
    misalignment: i64,
    /// Part target on the media clock; `None` when parts are off.
    part_target: Option<i64>,
    /// Longest segment allowed, media clock; `None` for no limit.
    limit: Option<i64>,
    /// Longest wait for a keyframe before the stream is reported as overdue, media clock.
    keyframe_cap: Option<i64>,
    /// Decode time of the latest video keyframe.
    last_keyframe: Option<i64>,
    /// Distance between the latest two video keyframes (predicts the next one).
    gop: Option<i64>,
    /// Latest video frame interval, media clock (predicts where the next frame lands).
    video_step: i64,
    /// The next keyframe starts a segment whatever its distance from the last cut (set
    /// after a timestamp discontinuity).
    cut_next_keyframe: bool,
    /// Where recent video parts ended, for the audio parts to end with them.
    part_ends: PartEnds,
}

impl Segmenter {
    /// A segmenter cutting at `target`, numbering segments from `first_seq`.
    pub fn new(target: Duration, first_seq: u64) -> Self {
        Segmenter {
            target: (target.as_secs_f64() * f64::from(MEDIA_CLOCK)).round() as i64,
            next_seq: first_seq,
            boundaries: VecDeque::new(),
            video: None,
            audio: None,
            audio_queue: VecDeque::new(),
            latest_video_dts: None,
            timeline: None,
            resume: None,
            misalignment: 0,
            part_target: None,
            limit: None,
            keyframe_cap: None,
            last_keyframe: None,
            gop: None,
            video_step: 0,
            cut_next_keyframe: false,
            part_ends: PartEnds::default(),
        }
    }

    /// Never let a segment grow past `max` (cut before a non-sync frame if no keyframe
    /// comes), and report keyframes further apart than `keyframe_cap`.
    pub fn with_limits(mut self, max: Duration, keyframe_cap: Duration) -> Self {
        let ticks = |d: Duration| (d.as_secs_f64() * f64::from(MEDIA_CLOCK)).round() as i64;
        self.limit = Some(ticks(max));
        self.keyframe_cap = Some(ticks(keyframe_cap));
        self
    }

    /// The next keyframe starts a new segment (the stream's timestamps jumped). Returns
    /// the sequence number of the open video segment, if any: segments after it belong to
    /// the new timeline.
    pub fn break_at_next_keyframe(&mut self) -> Option<u64> {
        self.cut_next_keyframe = true;
        for track in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            track.parts.reset_timing();
        }
        self.video
            .as_ref()
            .or(self.audio.as_ref())
            .and_then(|t| t.seq)
            .or(self.boundaries.back().map(|b| b.seq))
    }

    /// The longest segment allowed, seconds (0 when unlimited).
    pub fn longest_segment_secs(&self) -> f64 {
        self.limit.unwrap_or(0) as f64 / f64::from(MEDIA_CLOCK)
    }

    /// How long (media clock) video has gone without a keyframe, when longer than the
    /// keyframe cap.
    pub fn keyframe_overdue(&self) -> Option<i64> {
        let (cap, last, now) = (
            self.keyframe_cap?,
            self.last_keyframe?,
            self.latest_video_dts?,
        );
        (now - last > cap).then_some(now - last)
    }

    /// Also cut every track's segments into parts of at most `target` (LL-HLS).
    pub fn with_parts(mut self, target: Option<Duration>) -> Self {
        self.part_target =
            target.map(|t| (t.as_secs_f64() * f64::from(MEDIA_CLOCK)).round() as i64);
        self
    }

    /// A segmenter whose cuts follow a ladder's shared timeline; `resume` is the last
    /// sequence number of this rendition's previous publish, if any.
    pub fn with_timeline(
        target: Duration,
        timeline: Arc<LadderTimeline>,
        resume: Option<u64>,
    ) -> Self {
        Segmenter {
            timeline: Some(timeline),
            resume,
            ..Segmenter::new(target, 0)
        }
    }

    /// True when segments are also cut into parts.
    pub fn has_parts(&self) -> bool {
        self.part_target.is_some()
    }

    /// The PART-TARGET the playlists advertise: the configured part target plus the
    /// millisecond video parts may take over it, raised (when the stream has audio and
    /// video) to the longest audio part that ends with a video part, whole audio frames
    /// covering it; rounded up to the millisecond. Audio parts end where video parts end
    /// (within an audio frame), so they are a frame longer or shorter than the video's.
    pub fn advertised_part_target(&self) -> Option<Duration> {
        let video_most = self.part_target? + i64::from(MEDIA_CLOCK) / 1000;
        let mut most = video_most as f64 / f64::from(MEDIA_CLOCK);
        if let (Some(_), Some(audio)) = (&self.video, &self.audio) {
            // Opus has no fixed frame size: its latest packet stands for it.
            let fd = audio
                .clock
                .frame_duration()
                .unwrap_or_else(|| audio.clock.last_duration());
            let frame = f64::from(fd) / f64::from(audio.clock.timescale().max(1));
            if frame > 0.0 {
                most = most.max((most / frame - 1e-9).ceil() * frame);
            }
        }
        Some(Duration::from_millis((most * 1000.0 - 1e-6).ceil() as u64))
    }

    /// How far (media clock ticks) the latest cut was from the ladder's boundary.
    pub fn misalignment(&self) -> i64 {
        self.misalignment
    }

    /// Whether a frame at `dts` opens a segment, and with which number: a keyframe when
    /// due, any frame when `force`d.
    fn cut_at(&mut self, dts: i64, force: bool) -> Option<u64> {
        let last = self.boundaries.back().map(|b| (b.seq, b.start));
        match &self.timeline {
            Some(tl) => {
                let cut = match (last, self.resume) {
                    // Back after a drop: rejoin the ladder's numbering.
                    (None, Some(resume)) => tl.rejoin(dts, resume, force),
                    (current, _) => tl.keyframe(dts, current, force),
                };
                match cut {
                    Cut::At { seq, misaligned } => {
                        self.misalignment = misaligned;
                        Some(seq)
                    }
                    Cut::No => None,
                }
            }
            None => last
                .is_none_or(|(_, start)| force || dts - start >= self.target)
                .then_some(self.next_seq),
        }
    }

    /// The sequence number the next new segment will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Declares (or re-declares, after a codec change) a track. Whatever the old track had
    /// buffered is returned as a final segment.
    pub fn set_track(
        &mut self,
        kind: TrackKind,
        timescale: u32,
        frame_duration: Option<u32>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if kind == TrackKind::Audio {
            self.drain_audio(true, &mut out);
        }
        let slot = self.slot(kind);
        if let Some(mut old) = slot.take() {
            for ts in old.clock.flush() {
                old.add(ts, None, &mut out);
            }
            old.close(false, &mut out);
        }
        let to_track = |t: i64| (t as u64 * u64::from(timescale)).div_ceil(u64::from(MEDIA_CLOCK));
        // Video parts may take a millisecond over the configured target: RTMP's rounding
        // makes six frames at 29.97 or 30 fps 200 or 201 ms.
        let slack = match kind {
            TrackKind::Video => i64::from(MEDIA_CLOCK) / 1000,
            TrackKind::Audio => 0,
        };
        let part_target = self.part_target.map(|t| to_track(t + slack));
        let segment_target = to_track(self.target);
        *self.slot(kind) = Some(TrackCut {
            kind,
            clock: SampleClock::new(kind, timescale, frame_duration),
            seq: None,
            media_start: 0,
            samples: Vec::new(),
            parts: PartCutter::new(part_target, segment_target, timescale),
            next_media: None,
        });
        let advertised = self.advertised_part_target();
        if let Some(video) = self.video.as_mut() {
            let ts = u128::from(video.clock.timescale());
            video.parts.set_advertised(
                advertised.map(|d| (d.as_nanos() * ts).div_ceil(1_000_000_000) as u64),
            );
        }
        out
    }

    /// Feeds one frame; returns the segments it completed.
    pub fn push(&mut self, frame: Frame) -> Vec<Output> {
        let mut out = Vec::new();
        match frame.kind {
            TrackKind::Video => {
                if self.video.is_none() {
                    return out;
                }
                let mut frame = frame;
                if let Some(prev) = self
                    .latest_video_dts
                    .filter(|&p| frame.keyframe && frame.dts <= p)
                {
                    // A keyframe tied with the frame before it: it opens a segment at its
                    // own time, so it cannot share a timestamp the sample clock would
                    // spread. Place it one frame on.
                    let shift = prev + self.video_step.max(1) - frame.dts;
                    frame.dts += shift;
                    frame.pts += shift;
                }
                if frame.keyframe {
                    self.keyframe(frame.dts);
                } else if self.boundaries.is_empty() {
                    // A segment must open with a keyframe; drop frames until the first one.
                    return out;
                } else {
                    self.non_sync(frame.dts);
                }
                if let Some(prev) = self.latest_video_dts {
                    if frame.dts > prev {
                        self.video_step = frame.dts - prev;
                    }
                }
                self.latest_video_dts = Some(frame.dts);
                self.feed(frame, &mut out);
                self.drain_audio(false, &mut out);
            }
            TrackKind::Audio => {
                if self.audio.is_none() {
                    return out;
                }
                if self.video.is_some() {
                    self.audio_queue.push_back(frame);
                    self.drain_audio(false, &mut out);
                } else {
                    let force = std::mem::take(&mut self.cut_next_keyframe);
                    if let Some(seq) = self.cut_at(frame.dts, force) {
                        self.add_boundary(seq, frame.dts, !force, true);
                    }
                    self.feed(frame, &mut out);
                }
            }
        }
        out
    }

    /// Ends the stream: everything buffered becomes final segments.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.drain_audio(true, &mut out);
        let most = self.audio_part_most();
        let has_video = self.video.is_some();
        for track in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            let follow = (track.kind == TrackKind::Audio && has_video).then_some(Follow {
                ends: &self.part_ends,
                most,
            });
            for ts in track.clock.flush() {
                Self::place(&self.boundaries, track, ts, follow, &mut out);
            }
            track.close(false, &mut out);
        }
        out
    }

    /// A video keyframe: cut when due, right after a discontinuity, when the open
    /// segment began on a non-sync frame (back in step with the GOPs), or early when the
    /// GOP says the next keyframe would come after the longest segment allowed. The early
    /// cut keeps a stream whose GOP does not divide the target (1.5 s GOPs, 2 s target)
    /// in whole-GOP segments that each start on a keyframe; without it every other
    /// segment was cut at the limit before a non-sync frame, and a player starting in
    /// such a segment has nothing it can decode.
    fn keyframe(&mut self, dts: i64) {
        if let Some(prev) = self.last_keyframe.filter(|&p| p < dts) {
            self.gop = Some(dts - prev);
        }
        self.last_keyframe = Some(dts);
        let resync = self.boundaries.back().is_some_and(|b| !b.sync);
        let jumped = std::mem::take(&mut self.cut_next_keyframe);
        let elapsed = self.boundaries.back().map(|b| dts - b.start);
        let early = match (elapsed, self.gop, self.limit) {
            (Some(e), Some(gop), Some(limit)) => e > 0 && e < self.target && e + gop > limit,
            _ => false,
        };
        let force = resync || jumped || early;
        if let Some(seq) = self.cut_at(dts, force) {
            let natural = !resync
                && !jumped
                && self
                    .boundaries
                    .back()
                    .is_some_and(|b| b.sync && (early || dts - b.start >= self.target));
            self.add_boundary(seq, dts, natural, true);
        }
    }

    /// A video frame that is not a keyframe: cut before it when the segment would
    /// otherwise outgrow the limit. When the GOP seen so far says no keyframe will come
    /// in time, the cut is made as soon as the segment reaches the target instead, so a
    /// long-GOP stream gets whole target-length segments tiled by whole parts, not a
    /// 2.47 s segment and a 1.53 s one, each ending in a sliver part players skip.
    fn non_sync(&mut self, dts: i64) {
        let (Some(limit), Some(last)) = (self.limit, self.boundaries.back()) else {
            return;
        };
        if dts == last.start {
            return;
        }
        let elapsed = dts - last.start;
        // One millisecond of slack: RTMP's rounding may make the next step that much longer.
        let next = self.video_step + i64::from(MEDIA_CLOCK) / 1000;
        let keyframe_in_time = match (self.last_keyframe, self.gop) {
            (Some(key), Some(gop)) => key + gop - last.start <= limit,
            // One keyframe so far: in time while it is recent (the first segment).
            (Some(key), None) => dts - key <= limit,
            (None, _) => true,
        };
        let at_target = elapsed >= self.target && !keyframe_in_time;
        if elapsed + next <= limit && !at_target {
            return;
        }
        if let Some(seq) = self.cut_at(dts, true) {
            self.add_boundary(seq, dts, false, false);
        }
    }

    fn slot(&mut self, kind: TrackKind) -> &mut Option<TrackCut> {
        match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    fn add_boundary(&mut self, seq: u64, start: i64, natural: bool, sync: bool) {
        self.boundaries.push_back(Boundary {
            seq,
            start,
            natural,
            sync,
        });
        self.next_seq = seq + 1;
        if self.boundaries.len() > BOUNDARY_MEMORY {
            self.boundaries.pop_front();
        }
    }

    fn drain_audio(&mut self, all: bool, out: &mut Vec<Output>) {
        while let Some(front) = self.audio_queue.front() {
            let ready = all
                || self.latest_video_dts.is_some_and(|v| front.dts <= v)
                || self
                    .audio_queue
                    .back()
                    .is_some_and(|b| b.dts - front.dts > AUDIO_LEAD_LIMIT);
            if !ready {
                break;
            }
            if let Some(frame) = self.audio_queue.pop_front() {
                self.feed(frame, out);
            }
        }
    }

    fn feed(&mut self, frame: Frame, out: &mut Vec<Output>) {
        let kind = frame.kind;
        let most = self.audio_part_most();
        let follow = (kind == TrackKind::Audio && self.video.is_some()).then_some(Follow {
            ends: &self.part_ends,
            most,
        });
        let boundaries = &self.boundaries;
        let track = match kind {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        };
        let Some(track) = track else { return };
        let first_new = out.len();
        for ts in track.clock.push(frame) {
            Self::place(boundaries, track, ts, follow, out);
        }
        // Close the segment as soon as the held-back frame is known to open the next one,
        // rather than one frame later.
        if let (Some(pending), Some(current)) = (track.clock.pending_dts(), track.seq) {
            if let Some(b) = seq_for(boundaries, pending).filter(|b| b.seq > current) {
                track.close(b.natural, out);
            }
        }
        if kind == TrackKind::Video {
            let mut new_ends = false;
            for o in &out[first_new..] {
                if let Output::Part(p) = o {
                    self.part_ends.record(p);
                    new_ends = true;
                }
            }
            if let (true, Some(audio)) = (new_ends, self.audio.as_mut()) {
                audio.poke(&self.part_ends, out);
            }
        }
    }

    /// The longest audio part, in audio ticks: the advertised part target.
    fn audio_part_most(&self) -> u64 {
        let (Some(audio), Some(pt)) = (&self.audio, self.advertised_part_target()) else {
            return u64::MAX;
        };
        (pt.as_nanos() * u128::from(audio.clock.timescale())).div_ceil(1_000_000_000) as u64
    }

    fn place(
        boundaries: &VecDeque<Boundary>,
        track: &mut TrackCut,
        ts: TimedSample,
        follow: Option<Follow>,
        out: &mut Vec<Output>,
    ) {
        let Some(b) = seq_for(boundaries, ts.media_dts) else {
            return; // before the first keyframe: nothing to align it with
        };
        match track.seq {
            Some(current) if current >= b.seq => {}
            _ => {
                track.close(b.natural, out);
                track.seq = Some(b.seq);
                track.media_start = b.start;
            }
        }
        track.add(ts, follow, out);
    }
}

fn seq_for(boundaries: &VecDeque<Boundary>, dts: i64) -> Option<Boundary> {
    boundaries.iter().rev().find(|b| b.start <= dts).copied()
}

#[cfg(test)]
#[path = "segmenter_tests.rs"]
mod tests;

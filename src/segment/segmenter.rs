//! The keyframe-aligned segmenter.
//!
//! Video keyframes decide the segment boundaries on the stream's media clock: a segment is
//! cut at the first keyframe at or after the target duration. Audio is cut at the same
//! media times, so segment N of every track covers the same span. Because audio may run a
//! little ahead of video on the wire, audio frames wait until video has passed their
//! timestamp (bounded by `AUDIO_LEAD_LIMIT`, in case video stalls) before they are placed.
//! A stream without video is cut on audio time alone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::part::{Head, Output, PartCutter};
use super::timeline::{Cut, LadderTimeline};
use super::timing::{SampleClock, TimedSample};
use crate::media::{Frame, Sample, TrackKind, MEDIA_CLOCK};

/// How far audio may run ahead of video before it is placed without waiting (media clock).
const AUDIO_LEAD_LIMIT: i64 = MEDIA_CLOCK as i64;
/// Boundaries remembered for placing late samples; older ones are dropped.
const BOUNDARY_MEMORY: usize = 8;

/// A finished segment of one track.
#[derive(Clone, Debug, PartialEq)]
pub struct CutSegment {
    /// Which track.
    pub kind: TrackKind,
    /// Sequence number, shared by all tracks of the stream.
    pub seq: u64,
    /// The segment's nominal start on the media clock (the cutting keyframe's dts).
    pub media_start: i64,
    /// The samples, in decode order, in the track's timescale.
    pub samples: Vec<Sample>,
    /// The track's timescale.
    pub timescale: u32,
}

impl CutSegment {
    /// Total duration in the track's timescale.
    pub fn duration(&self) -> u64 {
        crate::media::total_duration(&self.samples)
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.duration() as f64 / f64::from(self.timescale)
    }

    /// Decode time of the first sample in the track's timescale.
    pub fn start(&self) -> i64 {
        self.samples.first().map_or(0, |s| s.dts)
    }
}

#[derive(Debug, Clone, Copy)]
struct Boundary {
    seq: u64,
    start: i64,
}

#[derive(Debug)]
struct TrackCut {
    kind: TrackKind,
    clock: SampleClock,
    seq: Option<u64>,
    media_start: i64,
    samples: Vec<Sample>,
    parts: PartCutter,
}

impl TrackCut {
    fn head(&self) -> Head {
        Head {
            kind: self.kind,
            seq: self.seq.unwrap_or(0),
            timescale: self.clock.timescale(),
            media_start: self.media_start,
        }
    }

    /// Closes the open segment: its last part, then the segment itself.
    fn close(&mut self, out: &mut Vec<Output>) {
        let head = self.head();
        self.parts.close(&self.samples, head, out);
        let Some(seq) = self.seq.take() else { return };
        if self.samples.is_empty() {
            return;
        }
        out.push(Output::Segment(CutSegment {
            kind: self.kind,
            seq,
            media_start: self.media_start,
            samples: std::mem::take(&mut self.samples),
            timescale: self.clock.timescale(),
        }));
    }

    fn add(&mut self, sample: Sample, out: &mut Vec<Output>) {
        let head = self.head();
        self.parts.before(&self.samples, &sample, head, out);
        self.samples.push(sample);
        self.parts.after(&self.samples, head, out);
    }
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
    /// Last sequence number of a previous publish of this rendition (a reconnect keeps
    /// numbering contiguously).
    resume: Option<u64>,
    /// Distance of the latest cut from the ladder's boundary, media clock ticks.
    misalignment: i64,
    /// Part target on the media clock; `None` when parts are off.
    part_target: Option<i64>,
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
        }
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

    /// How far (media clock ticks) the latest cut was from the ladder's boundary.
    pub fn misalignment(&self) -> i64 {
        self.misalignment
    }

    /// Whether a sync frame at `dts` opens a segment, and with which number.
    fn cut_at(&mut self, dts: i64) -> Option<u64> {
        let last = self.boundaries.back().map(|b| (b.seq, b.start));
        match &self.timeline {
            Some(tl) => {
                let current = last.or(self.resume.map(|seq| (seq, i64::MIN / 2)));
                match tl.keyframe(dts, current) {
                    Cut::At { seq, misaligned } => {
                        self.misalignment = misaligned;
                        Some(seq)
                    }
                    Cut::No => None,
                }
            }
            None => last
                .is_none_or(|(_, start)| dts - start >= self.target)
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
            if let Some(ts) = old.clock.flush() {
                old.add(ts.sample, &mut out);
            }
            old.close(&mut out);
        }
        let part_target = self
            .part_target
            .map(|t| (t as u64 * u64::from(timescale)).div_ceil(u64::from(MEDIA_CLOCK)));
        *self.slot(kind) = Some(TrackCut {
            kind,
            clock: SampleClock::new(kind, timescale, frame_duration),
            seq: None,
            media_start: 0,
            samples: Vec::new(),
            parts: PartCutter::new(part_target),
        });
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
                if frame.keyframe {
                    if let Some(seq) = self.cut_at(frame.dts) {
                        self.add_boundary(seq, frame.dts);
                    }
                } else if self.boundaries.is_empty() {
                    // A segment must open with a keyframe; drop frames until the first one.
                    return out;
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
                    if let Some(seq) = self.cut_at(frame.dts) {
                        self.add_boundary(seq, frame.dts);
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
        for track in [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(ts) = track.clock.flush() {
                Self::place(&self.boundaries, track, ts, &mut out);
            }
            track.close(&mut out);
        }
        out
    }

    fn slot(&mut self, kind: TrackKind) -> &mut Option<TrackCut> {
        match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    fn add_boundary(&mut self, seq: u64, start: i64) {
        self.boundaries.push_back(Boundary { seq, start });
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
        let boundaries = &self.boundaries;
        let track = match kind {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        };
        let Some(track) = track else { return };
        if let Some(ts) = track.clock.push(frame) {
            Self::place(boundaries, track, ts, out);
        }
        // Close the segment as soon as the held-back frame is known to open the next one,
        // rather than one frame later.
        if let (Some(pending), Some(current)) = (track.clock.pending_dts(), track.seq) {
            if seq_for(boundaries, pending).is_some_and(|(s, _)| s > current) {
                track.close(out);
            }
        }
    }

    fn place(
        boundaries: &VecDeque<Boundary>,
        track: &mut TrackCut,
        ts: TimedSample,
        out: &mut Vec<Output>,
    ) {
        let Some((seq, start)) = seq_for(boundaries, ts.media_dts) else {
            return; // before the first keyframe: nothing to align it with
        };
        match track.seq {
            Some(current) if current >= seq => {}
            _ => {
                track.close(out);
                track.seq = Some(seq);
                track.media_start = start;
            }
        }
        track.add(ts.sample, out);
    }
}

fn seq_for(boundaries: &VecDeque<Boundary>, dts: i64) -> Option<(u64, i64)> {
    boundaries
        .iter()
        .rev()
        .find(|b| b.start <= dts)
        .map(|b| (b.seq, b.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::CutPart;
    use bytes::Bytes;

    fn v(ms: i64, key: bool) -> Frame {
        Frame {
            kind: TrackKind::Video,
            dts: ms * 90,
            pts: ms * 90,
            keyframe: key,
            data: Bytes::from_static(b"v"),
        }
    }
    fn a(ms: i64) -> Frame {
        Frame {
            kind: TrackKind::Audio,
            dts: ms * 90,
            pts: ms * 90,
            keyframe: true,
            data: Bytes::from_static(b"a"),
        }
    }

    fn av_segmenter() -> Segmenter {
        let mut s = Segmenter::new(Duration::from_secs(2), 1);
        assert!(s.set_track(TrackKind::Video, 90_000, None).is_empty());
        assert!(s.set_track(TrackKind::Audio, 48_000, Some(1024)).is_empty());
        s
    }

    /// 30 fps video with a keyframe every `gop_ms`, 48 kHz AAC, interleaved by time.
    fn segments(out: Vec<Output>) -> Vec<CutSegment> {
        out.into_iter().filter_map(Output::segment).collect()
    }

    fn run(s: &mut Segmenter, secs: i64, gop_ms: i64) -> Vec<CutSegment> {
        segments(run_all(s, secs, gop_ms))
    }

    fn run_all(s: &mut Segmenter, secs: i64, gop_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let (mut vi, mut ai) = (0i64, 0i64);
        loop {
            let vt = vi * 1000 / 30;
            let at = ai * 1024 * 1000 / 48_000;
            if vt >= secs * 1000 && at >= secs * 1000 {
                break;
            }
            if vt <= at {
                out.extend(s.push(v(vt, vt % gop_ms == 0)));
                vi += 1;
            } else {
                out.extend(s.push(a(at)));
                ai += 1;
            }
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn cuts_at_keyframes_after_target_and_aligns_audio() {
        let mut s = av_segmenter();
        let segs = run(&mut s, 10, 1000);
        let video: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Video).collect();
        let audio: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Audio).collect();
        assert_eq!(
            video.iter().map(|c| c.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            audio.iter().map(|c| c.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        for c in &video {
            assert!(c.samples[0].keyframe);
            assert!(
                (c.duration_secs() - 2.0).abs() < 0.04,
                "{}",
                c.duration_secs()
            );
        }
        for (vs, as_) in video.iter().zip(&audio) {
            assert_eq!(vs.media_start, as_.media_start);
            let audio_start = as_.start() as f64 / 48_000.0;
            let video_start = vs.start() as f64 / 90_000.0;
            // Audio's first frame is the first one at or after the video cut.
            assert!(audio_start >= video_start && audio_start - video_start < 0.0214);
        }
        // No audio sample lost or duplicated: contiguous timeline.
        let mut next = audio[0].start();
        for c in &audio {
            for smp in &c.samples {
                assert_eq!(smp.dts, next);
                next += i64::from(smp.duration);
            }
        }
    }

    #[test]
    fn long_gop_makes_long_segments() {
        let mut s = av_segmenter();
        let segs = run(&mut s, 12, 3000);
        let video: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Video).collect();
        assert_eq!(video.len(), 4);
        assert!((video[0].duration_secs() - 3.0).abs() < 0.04);
    }

    #[test]
    fn frames_before_first_keyframe_are_dropped() {
        let mut s = av_segmenter();
        assert!(s.push(v(0, false)).is_empty());
        assert!(s.push(a(0)).is_empty());
        assert!(s.push(v(33, true)).is_empty());
        let segs = segments(s.finish());
        let video = segs.iter().find(|c| c.kind == TrackKind::Video).unwrap();
        assert_eq!(video.samples.len(), 1);
        assert_eq!(video.media_start, 33 * 90);
    }

    #[test]
    fn audio_only_cuts_on_time() {
        let mut s = Segmenter::new(Duration::from_secs(2), 7);
        s.set_track(TrackKind::Audio, 48_000, Some(1024));
        let mut segs = Vec::new();
        for i in 0..(48_000 * 5 / 1024) {
            segs.extend(segments(s.push(a(i * 1024 * 1000 / 48_000))));
        }
        segs.extend(segments(s.finish()));
        assert_eq!(
            segs.iter().map(|c| c.seq).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
        assert!((segs[0].duration_secs() - 2.0).abs() < 0.03);
    }

    #[test]
    fn segment_closes_when_keyframe_arrives() {
        let mut s = Segmenter::new(Duration::from_secs(2), 1);
        s.set_track(TrackKind::Video, 90_000, None);
        for i in 0..60 {
            assert!(s.push(v(i * 1000 / 30, i == 0)).is_empty());
        }
        let out = segments(s.push(v(2000, true)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].samples.len(), 60);
    }

    #[test]
    fn parts_tile_each_segment_and_never_exceed_the_target() {
        let mut s =
            Segmenter::new(Duration::from_secs(2), 1).with_parts(Some(Duration::from_millis(200)));
        s.set_track(TrackKind::Video, 90_000, None);
        s.set_track(TrackKind::Audio, 48_000, Some(1024));
        let out = run_all(&mut s, 10, 1000);
        let mut parts: Vec<CutPart> = Vec::new();
        let mut checked = 0;
        for o in out {
            match o {
                Output::Part(p) => parts.push(p),
                Output::Segment(seg) => {
                    let mine: Vec<_> = parts
                        .iter()
                        .filter(|p| p.kind == seg.kind && p.seq == seg.seq)
                        .collect();
                    // Parts are numbered from 0 and concatenate to exactly the segment.
                    assert!(mine.iter().enumerate().all(|(i, p)| p.index as usize == i));
                    let joined: Vec<Sample> = mine.iter().flat_map(|p| p.samples.clone()).collect();
                    assert_eq!(joined, seg.samples);
                    let limit = u64::from(seg.timescale) / 5;
                    for p in &mine {
                        assert!(p.duration() <= limit, "part {} > 200 ms", p.duration());
                    }
                    // All but the last part are at least 85% of the target.
                    for p in &mine[..mine.len() - 1] {
                        assert!(
                            p.duration() * 100 >= limit * 85,
                            "short part {}",
                            p.duration()
                        );
                    }
                    if seg.kind == TrackKind::Video {
                        assert!(mine[0].independent());
                    }
                    parts.retain(|p| !(p.kind == seg.kind && p.seq == seg.seq));
                    checked += 1;
                }
            }
        }
        assert!(parts.is_empty(), "parts without a segment: {}", parts.len());
        assert_eq!(checked, 10);
    }
}

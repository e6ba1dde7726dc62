//! One track's open segment in the segmenter: the samples cut so far, their clock, and the
//! part cutter that turns them into LL-HLS parts as they arrive (an audio track following
//! where the video track's parts ended).

use super::output::{CutSegment, Output};
use super::part::{Head, PartCutter, PartEnds};
use super::timing::{SampleClock, TimedSample};
use crate::media::{Sample, TrackKind, MEDIA_CLOCK};

/// One track's open segment: its samples so far and the part cutter working on them.
#[derive(Debug)]
pub(super) struct TrackCut {
    pub(super) kind: TrackKind,
    pub(super) clock: SampleClock,
    pub(super) seq: Option<u64>,
    pub(super) media_start: i64,
    pub(super) samples: Vec<Sample>,
    pub(super) parts: PartCutter,
    /// Where the sample after the newest is expected to start, media clock.
    pub(super) next_media: Option<i64>,
}

/// How an audio track cuts its parts when the stream has video: it ends part N where
/// video part N ended, and never makes a part longer than `most` ticks.
#[derive(Clone, Copy)]
pub(super) struct Follow<'a> {
    pub(super) ends: &'a PartEnds,
    pub(super) most: u64,
}

impl TrackCut {
    pub(super) fn head(&self) -> Head {
        Head {
            kind: self.kind,
            seq: self.seq.unwrap_or(0),
            timescale: self.clock.timescale(),
            media_start: self.media_start,
        }
    }

    /// Closes the open segment: its last part, then the segment itself. `natural` tells the
    /// part cutter whether the segment had its usual length.
    pub(super) fn close(&mut self, natural: bool, out: &mut Vec<Output>) {
        let head = self.head();
        self.parts.close(&self.samples, head, natural, out);
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

    pub(super) fn add(&mut self, ts: TimedSample, follow: Option<Follow>, out: &mut Vec<Output>) {
        let TimedSample { media_dts, sample } = ts;
        let step = i64::from(sample.duration) * i64::from(MEDIA_CLOCK)
            / i64::from(self.clock.timescale().max(1));
        self.next_media = Some(media_dts + step);
        let head = self.head();
        let Some(f) = follow else {
            self.parts.before(&self.samples, &sample, head, out);
            self.samples.push(sample);
            self.parts.after(&self.samples, head, out);
            return;
        };
        let end = |parts: &PartCutter| f.ends.get(head.seq, parts.index());
        let e = end(&self.parts);
        self.parts
            .follow_before(&self.samples, &sample, media_dts, e, f.most, head, out);
        self.samples.push(sample);
        self.poke(f.ends, out);
    }

    /// Closes the open part if the other track's part with its index has ended before
    /// where this track's next sample will start.
    pub(super) fn poke(&mut self, ends: &PartEnds, out: &mut Vec<Output>) {
        let (Some(next), Some(seq)) = (self.next_media, self.seq) else {
            return;
        };
        let head = self.head();
        let e = ends.get(seq, self.parts.index());
        self.parts.follow_after(&self.samples, next, e, head, out);
    }
}

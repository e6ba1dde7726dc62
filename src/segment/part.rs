//! LL-HLS parts: each track's open segment is also cut into parts of at most the part
//! target, emitted as soon as their last sample is known, so a player can fetch media a
//! fraction of a segment after it was encoded.

use super::segmenter::CutSegment;
use crate::media::{total_duration, Sample, TrackKind};

/// A finished part of one track's open segment.
#[derive(Clone, Debug, PartialEq)]
pub struct CutPart {
    /// Which track.
    pub kind: TrackKind,
    /// Sequence number of the segment the part belongs to.
    pub seq: u64,
    /// Position within the segment, from 0 (what `_HLS_part` counts).
    pub index: u32,
    /// The segment's nominal start on the media clock.
    pub media_start: i64,
    /// The samples, in decode order, in the track's timescale.
    pub samples: Vec<Sample>,
    /// The track's timescale.
    pub timescale: u32,
}

impl CutPart {
    /// Duration in the track's timescale.
    pub fn duration(&self) -> u64 {
        total_duration(&self.samples)
    }

    /// True when the part starts with a sync sample (EXT-X-PART INDEPENDENT=YES).
    pub fn independent(&self) -> bool {
        self.samples.first().is_some_and(|s| s.keyframe)
    }
}

/// What the segmenter produces, in order: a segment's parts come before the segment.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A part of the open segment (only when parts are enabled).
    Part(CutPart),
    /// A finished segment; its parts (if any) were all emitted before it.
    Segment(CutSegment),
}

impl Output {
    /// The segment, if this is one.
    pub fn segment(self) -> Option<CutSegment> {
        match self {
            Output::Segment(s) => Some(s),
            Output::Part(_) => None,
        }
    }
}

/// What a part inherits from its segment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Head {
    pub(super) kind: TrackKind,
    pub(super) seq: u64,
    pub(super) timescale: u32,
    pub(super) media_start: i64,
}

/// Where the open part of one track begins, and when it must close.
#[derive(Debug, Default)]
pub(super) struct PartCutter {
    /// Part target in the track's timescale; `None` disables parts.
    target: Option<u64>,
    /// Index into the open segment's samples where the open part begins.
    from: usize,
    /// Index of the open part within its segment.
    index: u32,
}

impl PartCutter {
    /// A cutter for parts of `target` track-timescale ticks, or none.
    pub(super) fn new(target: Option<u64>) -> Self {
        PartCutter {
            target,
            ..Default::default()
        }
    }

    fn open_duration(&self, samples: &[Sample]) -> u64 {
        total_duration(samples.get(self.from..).unwrap_or_default())
    }

    /// Before `next` joins the segment: closes the open part if `next` would make it
    /// longer than the target.
    pub(super) fn before(
        &mut self,
        samples: &[Sample],
        next: &Sample,
        head: Head,
        out: &mut Vec<Output>,
    ) {
        let Some(target) = self.target else { return };
        if self.from < samples.len()
            && self.open_duration(samples) + u64::from(next.duration) > target
        {
            self.emit(samples, head, out);
        }
    }

    /// After a sample joined: closes the part at once when a next sample of the same
    /// duration would not fit, instead of waiting one more frame to find out.
    pub(super) fn after(&mut self, samples: &[Sample], head: Head, out: &mut Vec<Output>) {
        let Some(target) = self.target else { return };
        let Some(last) = samples.last() else { return };
        if self.open_duration(samples) + u64::from(last.duration) > target {
            self.emit(samples, head, out);
        }
    }

    /// The segment closes: its last part is emitted and the cutter resets.
    pub(super) fn close(&mut self, samples: &[Sample], head: Head, out: &mut Vec<Output>) {
        if self.target.is_some() && self.from < samples.len() {
            self.emit(samples, head, out);
        }
        self.from = 0;
        self.index = 0;
    }

    fn emit(&mut self, samples: &[Sample], head: Head, out: &mut Vec<Output>) {
        let Head {
            kind,
            seq,
            timescale,
            media_start,
        } = head;
        out.push(Output::Part(CutPart {
            kind,
            seq,
            index: self.index,
            media_start,
            samples: samples[self.from..].to_vec(),
            timescale,
        }));
        self.from = samples.len();
        self.index += 1;
    }
}

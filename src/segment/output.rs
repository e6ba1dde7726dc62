//! What the segmenter hands on: finished parts and segments of each track, in order
//! (a segment's parts before the segment), for the muxers and the store.

use crate::media::{total_duration, Sample, TrackKind};

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
        total_duration(&self.samples)
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

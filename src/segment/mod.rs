//! Cutting a stream's frames into keyframe-aligned segments on one shared timeline.
//!
//! Dependencies run one way: `timing` (sample durations) and `timeline` (ladder
//! boundaries) below `part` (LL-HLS parts) below `segmenter`; `output` holds the types
//! all of them hand on.

pub mod output;
pub mod part;
pub mod segmenter;
pub mod timeline;
pub mod timing;
mod track_cut;

pub use output::{CutPart, CutSegment, Output};
pub use segmenter::Segmenter;

//! Cutting a stream's frames into keyframe-aligned segments on one shared timeline.

pub mod part;
pub mod segmenter;
pub mod timeline;
pub mod timing;

pub use part::{CutPart, Output};
pub use segmenter::{CutSegment, Segmenter};

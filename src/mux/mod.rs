//! Containers: CMAF/fMP4 and MPEG-TS.

pub mod boxes;
pub mod fmp4;
pub mod ts;

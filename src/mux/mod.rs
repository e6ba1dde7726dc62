//! Containers: CMAF/fMP4 and MPEG-TS.

pub mod fmp4;
pub mod ts;

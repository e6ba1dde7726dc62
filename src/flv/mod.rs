//! FLV tag bodies (as carried in RTMP audio and video messages) → codec configurations and
//! frames on the stream's 90 kHz media clock.

pub mod demux;
pub mod file;
pub mod tag;
pub mod timestamp;

pub use demux::{DemuxEvent, TagDemuxer};
pub use tag::FlvError;

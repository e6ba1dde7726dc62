//! packgate: an RTMP ingest that packages live streams into CMAF/HLS without transcoding.

pub mod codec;
pub mod media;

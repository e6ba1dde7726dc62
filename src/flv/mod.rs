//! FLV tag bodies (as carried in RTMP audio and video messages) → codec configurations and
//! frames on the stream's 90 kHz media clock.
//!
//! - [`tag`]: one body → [`tag::VideoTag`] / [`tag::AudioTag`] (legacy H.264 + AAC).
//! - [`enhanced`]: Enhanced RTMP ExHeaders (packet types, ModEx, FourCC).
//! - [`error`]: [`FlvError`], shared by both parsers.
//! - [`exdemux`]: Enhanced RTMP bodies (HEVC, AV1, VP9, H.264, AAC, Opus) → events.
//! - [`multitrack`]: Enhanced RTMP multitrack messages → one event per track.
//! - [`timestamp`]: 32-bit RTMP milliseconds → one unwrapped i64 timeline.
//! - [`budget`]: size and change-rate budgets of sequence headers.
//! - [`demux`]: per-stream state (configurations, clock) → [`DemuxEvent`]s.
//! - [`file`]: FLV files, for benchmarks and load generation.

pub mod budget;
pub mod demux;
pub mod enhanced;
pub mod error;
mod exdemux;
pub mod file;
pub mod multitrack;
pub mod tag;
pub mod timestamp;

pub use demux::{DemuxEvent, TagDemuxer};
pub use error::FlvError;
pub use multitrack::TrackEvent;

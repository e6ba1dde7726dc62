//! Playlist and manifest writers.

pub mod dash;
pub mod hls;
pub mod media;

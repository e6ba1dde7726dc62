//! packgate: an RTMP ingest that packages live streams into CMAF/HLS without transcoding.
//!
//! The data path: `rtmp` (sans-IO protocol + tokio driver) → `flv` (tag bodies → frames)
//! → `hub` (streams, ladders, publish lifecycle) → `segment` (keyframe-aligned cuts) →
//! `mux` (CMAF) → `store` (in-memory windows) → `playlist` → `http`.

#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod drain;
pub mod fdlimit;
pub mod flv;
pub mod http;
pub mod hub;
pub mod limit;
pub mod load;
pub mod lograte;
pub mod media;
pub mod mux;
pub mod netlimit;
pub mod playlist;
pub mod record;
pub mod rtmp;
pub mod segment;
pub mod server;
pub mod store;
pub mod wallclock;

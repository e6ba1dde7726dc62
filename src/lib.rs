//! packgate: an RTMP ingest that packages live streams, without transcoding, into
//! HLS with CMAF (fMP4) segments, HLS with MPEG-TS segments cut at the same boundaries,
//! Low-Latency HLS (parts, blocking reload, delta updates), live DASH (also low latency)
//! over the same CMAF objects, and DVR windows and recordings served as VOD.
//!
//! The data path: `rtmp` (sans-IO protocol + tokio driver) → `flv` (tag bodies → frames)
//! → `hub` (streams, ladders, publish lifecycle) → `segment` (keyframe-aligned cuts and
//! parts) → `mux` (CMAF, MPEG-TS) → `store` (in-memory windows, disk spill) and `record`
//! (recordings) → `playlist` (HLS, DASH) → `http`, with every URL typed in `urls`.
//! ARCHITECTURE.md at the repository root has the whole picture.

#![warn(missing_docs)]

pub mod bucket;
pub mod clock;
pub mod cluster;
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
pub mod malloc;
pub mod media;
pub mod mux;
pub mod netlimit;
pub mod playlist;
pub mod record;
pub mod rtmp;
pub mod segment;
pub mod server;
pub mod store;
pub mod tls;
pub mod urls;
pub mod wallclock;
pub mod webhook;

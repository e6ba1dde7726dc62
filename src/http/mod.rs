//! HTTP output (warp): playlists, segments, the JSON API, metrics and the web page.
//!
//! Layers, top down: [`listen`] accepts connections (plain, or HTTPS where ALPN picks
//! [`http2`] or [`conn`], the HTTP/1.1 driver) and serves [`routes`] on each; [`observe`]
//! parses the path once into a [`crate::urls::ObjectPath`] and counts the request;
//! [`router`] dispatches on it to the handlers ([`master`], [`dash`], [`playlist`],
//! [`objects`], [`vod`], [`api_streams`], [`web`]); below them sit [`snapshot`] (what
//! they read from the hub), [`blocking`] (held requests) and [`response`].

pub mod api;
pub mod api_streams;
pub mod blocking;
pub mod conn;
pub mod dash;
pub mod encoding;
pub mod file_range;
pub mod http2;
pub mod lifetimes;
pub mod listen;
pub mod master;
pub mod media;
pub mod metrics;
pub mod objects;
pub mod observe;
pub mod playlist;
pub mod request;
pub mod response;
pub mod router;
pub mod routes;
pub mod snapshot;
pub mod validators;
pub mod vod;
pub mod web;
pub mod writer;

pub use listen::{serve, Listeners};

//! Building responses: content types, caching and CORS in one place.

use bytes::Bytes;
use warp::http::{header, Response, StatusCode};
use warp::reply::Reply;

/// How long a client or CDN may keep an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Immutable media (segment and init URLs are never reused).
    Immutable,
    /// A live playlist: changes every segment.
    Live,
    /// Never cache (API, errors, metrics).
    NoStore,
}

impl Caching {
    /// The Cache-Control value.
    pub fn header(self) -> &'static str {
        match self {
            Caching::Immutable => "public, max-age=31536000, immutable",
            // Shorter than any segment: a CDN shields the origin yet stays near the edge.
            Caching::Live => "public, max-age=1",
            Caching::NoStore => "no-store",
        }
    }
}

/// Content type of an HLS playlist.
pub const M3U8: &str = "application/vnd.apple.mpegurl";

/// A 200 response with `body`.
pub fn ok(body: impl Into<Bytes>, content_type: &str, caching: Caching) -> warp::reply::Response {
    with_status(StatusCode::OK, body, content_type, caching)
}

/// An error response whose body says why, for people reading curl output and logs.
pub fn error(status: StatusCode, reason: impl Into<String>) -> warp::reply::Response {
    let mut text = reason.into();
    text.push('\n');
    with_status(status, text, "text/plain; charset=utf-8", Caching::NoStore)
}

fn with_status(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &str,
    caching: Caching,
) -> warp::reply::Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, caching.header())
        .body(body.into())
        .map(Reply::into_response)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A 200 JSON response, never cached.
pub fn json(value: &impl serde::Serialize) -> warp::reply::Response {
    match serde_json::to_vec(value) {
        Ok(body) => ok(body, "application/json", Caching::NoStore),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

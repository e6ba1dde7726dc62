//! Building responses: content types, caching and CORS in one place.

use bytes::Bytes;
use warp::http::{header, HeaderValue, Response, StatusCode};
use warp::reply::Reply;

/// How long a client or CDN may keep an object. Lifetimes are said with `max-age` only
/// (never `Expires`), so a cache's `Age` counts against them and a response passed along
/// a chain of caches never lives longer than the origin meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Immutable media (segment, part and init URLs are never reused).
    Immutable,
    /// Fresh for this many seconds (playlists, manifests: see [`super::lifetimes`]).
    Fresh(u32),
    /// Never cache (API, errors, metrics).
    NoStore,
}

impl Caching {
    /// The Cache-Control value.
    pub fn header(self) -> HeaderValue {
        match self {
            Caching::Immutable => HeaderValue::from_static("public, max-age=31536000, immutable"),
            Caching::Fresh(secs) => HeaderValue::from_str(&format!("public, max-age={secs}"))
                .unwrap_or_else(|_| HeaderValue::from_static("no-store")),
            Caching::NoStore => HeaderValue::from_static("no-store"),
        }
    }
}

/// Content type of an HLS playlist.
pub const M3U8: &str = "application/vnd.apple.mpegurl";

/// Sets the Content-Type and Cache-Control of a response built elsewhere (streamed or
/// ranged bodies).
pub fn set_type(h: &mut warp::http::HeaderMap, content_type: &str, caching: Caching) {
    if let Ok(v) = warp::http::HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, caching.header());
}

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

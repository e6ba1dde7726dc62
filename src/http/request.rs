//! What the handlers read of a request besides its method and path: a few headers, parsed
//! from the request once.

use std::convert::Infallible;

use warp::http::{header, HeaderMap};
use warp::Filter;

/// The request headers a handler reads.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    /// `Authorization` (the API's bearer token).
    pub authorization: Option<String>,
    /// `Range` (recorded files, live media objects).
    pub range: Option<String>,
    /// `If-Range`: the Range applies only to this representation.
    pub if_range: Option<String>,
    /// `If-None-Match` (revalidation by ETag).
    pub if_none_match: Option<String>,
    /// `If-Modified-Since` (revalidation by date).
    pub if_modified_since: Option<String>,
    /// `Accept-Encoding` (gzip of playlists and manifests).
    pub accept_encoding: Option<String>,
    /// `X-Packgate-Hop`: forwarded by another cluster node, so never forwarded again.
    pub hop: Option<String>,
}

impl Headers {
    /// The headers of `map` a handler reads; the rest are not kept.
    pub fn from_map(map: &HeaderMap) -> Headers {
        let get = |name: header::HeaderName| {
            map.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Headers {
            authorization: get(header::AUTHORIZATION),
            range: get(header::RANGE),
            if_range: get(header::IF_RANGE),
            if_none_match: get(header::IF_NONE_MATCH),
            if_modified_since: get(header::IF_MODIFIED_SINCE),
            accept_encoding: get(header::ACCEPT_ENCODING),
            hop: get(header::HeaderName::from_static(
                crate::cluster::proxy::HOP_HEADER,
            )),
        }
    }
}

impl Headers {
    /// The headers a cluster node passes on when it proxies the request to the owner.
    pub fn forwarded(&self) -> Vec<(header::HeaderName, &str)> {
        [
            (header::RANGE, &self.range),
            (header::IF_RANGE, &self.if_range),
            (header::IF_NONE_MATCH, &self.if_none_match),
            (header::IF_MODIFIED_SINCE, &self.if_modified_since),
            (header::ACCEPT_ENCODING, &self.accept_encoding),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
        .collect()
    }
}

/// The filter that extracts [`Headers`] from a request.
pub fn headers() -> impl Filter<Extract = (Headers,), Error = Infallible> + Clone {
    warp::header::headers_cloned().map(|map: HeaderMap| Headers::from_map(&map))
}

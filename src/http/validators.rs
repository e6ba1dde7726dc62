//! Validators (RFC 9110 8.8): the strong ETag and, where a stable date exists, the
//! Last-Modified of a response, and the conditional requests they answer — `If-None-Match`
//! and `If-Modified-Since` (304 Not Modified), `If-Range` (whether a Range applies).
//!
//! ETags are computed from what identifies the bytes, never from where they sit in memory,
//! so the same object has the same tag on every request, after a move to the DVR disk tier,
//! and on every node. Playlists carry no Last-Modified: they change several times a second,
//! and a one-second date would let a cache revalidate a stale one as current.

use std::time::{SystemTime, UNIX_EPOCH};

use warp::http::{header, HeaderMap, HeaderValue, StatusCode};
use warp::reply::Reply;

use super::request::Headers;
use super::response::Caching;

/// The validators of one representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The strong entity tag, quoted.
    pub etag: String,
    /// When the representation came to be, if that is known and stable.
    pub modified: Option<SystemTime>,
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn epoch_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

impl Validators {
    /// Validators with the opaque tag `tag` (quoted here).
    pub fn new(tag: impl std::fmt::Display, modified: Option<SystemTime>) -> Validators {
        Validators {
            etag: format!("\"{tag}\""),
            modified,
        }
    }

    /// The Last-Modified date as sent: never later than now (RFC 9110 8.8.2.1).
    fn last_modified(&self) -> Option<SystemTime> {
        self.modified.map(|m| m.min(SystemTime::now()))
    }

    /// Adds ETag and Last-Modified to `h`.
    pub fn insert(&self, h: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(m) = self.last_modified() {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
                h.insert(header::LAST_MODIFIED, v);
            }
        }
    }

    /// True when the request's cached copy is current: `If-None-Match` lists this tag
    /// (weak comparison) or is `*`; without `If-None-Match`, `If-Modified-Since` is no
    /// earlier than Last-Modified (RFC 9110 13.2.2).
    pub fn not_modified(&self, req: &Headers) -> bool {
        if let Some(inm) = req.if_none_match.as_deref() {
            return inm
                .split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == self.etag.as_str());
        }
        match (req.if_modified_since.as_deref(), self.last_modified()) {
            (Some(ims), Some(modified)) => {
                httpdate::parse_http_date(ims).is_ok_and(|ims| whole_seconds(modified) <= ims)
            }
            _ => false,
        }
    }

    /// True when a `Range` of the request applies: no `If-Range`, or one naming this
    /// representation (strong comparison for a tag, an exact date otherwise; RFC 9110
    /// 13.1.5). Otherwise the whole representation is sent.
    pub fn range_applies(&self, req: &Headers) -> bool {
        let Some(if_range) = req.if_range.as_deref().map(str::trim) else {
            return true;
        };
        if if_range.starts_with('"') || if_range.starts_with("W/") {
            return if_range == self.etag;
        }
        match (httpdate::parse_http_date(if_range), self.last_modified()) {
            (Ok(date), Some(modified)) => whole_seconds(modified) == date,
            _ => false,
        }
    }

    /// The 304 answer: the validators and caching headers a cache refreshes its copy with.
    pub fn not_modified_response(&self, caching: Caching, vary: bool) -> warp::reply::Response {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        let h = resp.headers_mut();
        self.insert(h);
        h.insert(header::CACHE_CONTROL, caching.header());
        if vary {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        resp
    }
}

/// `t` cut to the whole second, as an HTTP date carries it.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn req(f: impl FnOnce(&mut Headers)) -> Headers {
        let mut h = Headers::default();
        f(&mut h);
        h
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let v = Validators::new("s1-0", Some(at));
        assert_eq!(v.etag, "\"s1-0\"");
        assert!(v.not_modified(&req(|h| h.if_none_match = Some("\"s1-0\"".into()))));
        assert!(v.not_modified(&req(|h| h.if_none_match = Some("\"x\", W/\"s1-0\"".into()))));
        assert!(v.not_modified(&req(|h| h.if_none_match = Some("*".into()))));
        assert!(!v.not_modified(&req(|h| h.if_none_match = Some("\"s1-1\"".into()))));
        let date = httpdate::fmt_http_date(at);
        assert!(v.not_modified(&req(|h| h.if_modified_since = Some(date.clone()))));
        let earlier = httpdate::fmt_http_date(at - Duration::from_secs(1));
        assert!(!v.not_modified(&req(|h| h.if_modified_since = Some(earlier))));
        // A tag that does not match is the answer even if the date would.
        assert!(!v.not_modified(&req(|h| {
            h.if_none_match = Some("\"other\"".into());
            h.if_modified_since = Some(date.clone());
        })));
        assert!(!v.not_modified(&req(|h| h.if_modified_since = Some("garbage".into()))));
        assert!(
            !Validators::new("t", None).not_modified(&req(|h| h.if_modified_since = Some(date)))
        );
        assert!(!v.not_modified(&Headers::default()));
    }

    #[test]
    fn if_range_compares_strongly() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = Validators::new("p7-100", Some(at));
        assert!(v.range_applies(&Headers::default()));
        assert!(v.range_applies(&req(|h| h.if_range = Some("\"p7-100\"".into()))));
        assert!(!v.range_applies(&req(|h| h.if_range = Some("W/\"p7-100\"".into()))));
        assert!(!v.range_applies(&req(|h| h.if_range = Some("\"p8-100\"".into()))));
        let date = httpdate::fmt_http_date(at);
        assert!(v.range_applies(&req(|h| h.if_range = Some(date))));
        let other = httpdate::fmt_http_date(at + Duration::from_secs(5));
        assert!(!v.range_applies(&req(|h| h.if_range = Some(other))));
    }

    #[test]
    fn last_modified_is_never_in_the_future() {
        let v = Validators::new("x", Some(SystemTime::now() + Duration::from_secs(3600)));
        let mut h = HeaderMap::new();
        v.insert(&mut h);
        let sent = httpdate::parse_http_date(h[header::LAST_MODIFIED].to_str().unwrap()).unwrap();
        assert!(sent <= SystemTime::now());
        assert_eq!(h[header::ETAG], "\"x\"");
    }

    #[test]
    fn not_modified_keeps_the_caching_headers() {
        let v = Validators::new("t", None);
        let r = v.not_modified_response(Caching::Fresh(1), true);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"t\"");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=1");
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        assert!(r.headers().get(header::LAST_MODIFIED).is_none());
    }
}

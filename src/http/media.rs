//! Responses for finished media objects (init segments, segments, parts): immutable bytes
//! with validators, answered 304 when a cache's copy is current and 206 for a single byte
//! range (CDNs fetch large objects in ranges, and seek within them), 416 when the range
//! lies past the end. The bytes are never copied: a range is a slice of the stored parts.

use std::convert::Infallible;
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Reply;

use super::file_range::{wanted, Wanted};
use super::request::Headers;
use super::response::{error, set_type, Caching};
use super::validators::{epoch_ms, Validators};
use crate::store::StoredSegment;

/// Validators of a segment, from what identifies it (not its bytes, which may be on disk):
/// its number, media time and wall clock. The same whether it is served from memory or
/// the DVR disk tier.
pub fn segment_validators(s: &StoredSegment) -> Validators {
    let tag = format!("s{}-{}-{:x}", s.seq, s.start, epoch_ms(s.wall_clock));
    Validators::new(tag, Some(s.wall_clock))
}

/// Validators of part `id` (part numbers are never reused, see `hub::part_ids`) of a
/// segment starting at `wall_clock`.
pub fn part_validators(id: u64, len: usize, wall_clock: SystemTime) -> Validators {
    Validators::new(format!("p{id}-{len:x}"), Some(wall_clock))
}

/// Validators of init segment `version`: its content digest (an init has no stable date
/// of its own, so no Last-Modified).
pub fn init_validators(version: u64, init: &[u8]) -> Validators {
    let digest = Sha256::digest(init);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Validators::new(format!("i{version}-{hex}"), None)
}

/// Answers a GET or HEAD for the immutable object made of `chunks`.
pub fn immutable(
    chunks: Vec<Bytes>,
    content_type: &str,
    validators: &Validators,
    req: &Headers,
) -> warp::reply::Response {
    if validators.not_modified(req) {
        return validators.not_modified_response(Caching::Immutable, false);
    }
    let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let range = req
        .range
        .as_deref()
        .filter(|_| validators.range_applies(req));
    let (status, body, content_range) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, chunks, None),
        Wanted::Part(start, end) => (
            StatusCode::PARTIAL_CONTENT,
            slice(&chunks, start, end),
            Some(format!("bytes {start}-{end}/{len}")),
        ),
        Wanted::Unsatisfiable => {
            let mut resp = error(StatusCode::RANGE_NOT_SATISFIABLE, "range past the end");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let mut resp = body_of(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    set_type(h, content_type, Caching::Immutable);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(v) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    validators.insert(h);
    resp
}

/// A body of `chunks` with its Content-Length, sent chunk by chunk without copying.
fn body_of(mut chunks: Vec<Bytes>) -> warp::reply::Response {
    if chunks.len() <= 1 {
        return warp::http::Response::new(chunks.pop().unwrap_or_default()).into_response();
    }
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let items: Vec<Result<Bytes, Infallible>> = chunks.into_iter().map(Ok).collect();
    let mut resp = warp::reply::stream(futures_util::stream::iter(items)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// Bytes `start..=end` of the concatenation of `chunks`, as slices of them.
fn slice(chunks: &[Bytes], start: u64, end: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for c in chunks {
        let next = at + c.len() as u64;
        if next > start && at <= end {
            let a = start.saturating_sub(at) as usize;
            let b = ((end + 1).min(next) - at) as usize;
            out.push(c.slice(a..b));
        }
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn chunks() -> Vec<Bytes> {
        ["abc", "defg", "", "hij"]
            .iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect()
    }

    async fn body(resp: warp::reply::Response) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[test]
    fn slices_span_chunks() {
        let join = |v: Vec<Bytes>| v.concat();
        assert_eq!(join(slice(&chunks(), 0, 9)), b"abcdefghij");
        assert_eq!(join(slice(&chunks(), 2, 4)), b"cde");
        assert_eq!(join(slice(&chunks(), 7, 7)), b"h");
        assert_eq!(join(slice(&chunks(), 9, 9)), b"j");
        assert_eq!(
            slice(&chunks(), 3, 6).len(),
            1,
            "within one chunk: one slice"
        );
    }

    #[tokio::test]
    async fn whole_range_not_modified_and_past_the_end() {
        let v = Validators::new("p1-a", None);
        let get = |f: &dyn Fn(&mut Headers)| {
            let mut h = Headers::default();
            f(&mut h);
            immutable(chunks(), "video/mp4", &v, &h)
        };
        let whole = get(&|_| {});
        assert_eq!(whole.status(), StatusCode::OK);
        let h = whole.headers();
        assert_eq!(h[header::ACCEPT_RANGES], "bytes");
        assert_eq!(h[header::ETAG], "\"p1-a\"");
        assert_eq!(h[header::CONTENT_LENGTH], "10");
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(h.get(header::VARY).is_none(), "media never varies");
        assert_eq!(body(whole).await, "abcdefghij");

        let part = get(&|h| h.range = Some("bytes=2-5".into()));
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()[header::CONTENT_RANGE], "bytes 2-5/10");
        assert_eq!(part.headers()[header::CONTENT_LENGTH], "4");
        assert_eq!(body(part).await, "cdef");

        let tail = get(&|h| h.range = Some("bytes=-3".into()));
        assert_eq!(body(tail).await, "hij");

        let past = get(&|h| h.range = Some("bytes=10-".into()));
        assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(past.headers()[header::CONTENT_RANGE], "bytes */10");
        assert_eq!(past.headers()[header::CACHE_CONTROL], "no-store");

        let stale_range = get(&|h| {
            h.range = Some("bytes=0-1".into());
            h.if_range = Some("\"other\"".into());
        });
        assert_eq!(
            stale_range.status(),
            StatusCode::OK,
            "If-Range mismatch: whole"
        );

        let cached = get(&|h| h.if_none_match = Some("\"p1-a\"".into()));
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(cached.headers()[header::ETAG], "\"p1-a\"");
        assert!(body(cached).await.is_empty());
    }

    #[test]
    fn validators_identify_objects() {
        let seg = |seq, wall: u64| StoredSegment {
            seq,
            start: 180_000,
            duration: 180_000,
            timescale: 90_000,
            wall_clock: std::time::UNIX_EPOCH + std::time::Duration::from_secs(wall),
            init_version: 0,
            discontinuity: false,
            parts: Vec::new(),
        };
        assert_eq!(
            segment_validators(&seg(5, 10)),
            segment_validators(&seg(5, 10))
        );
        assert_ne!(
            segment_validators(&seg(5, 10)),
            segment_validators(&seg(6, 10))
        );
        // The same number in a later publish is another object.
        assert_ne!(
            segment_validators(&seg(5, 10)),
            segment_validators(&seg(5, 99))
        );
        assert_ne!(init_validators(0, b"a"), init_validators(0, b"b"));
        assert_eq!(init_validators(0, b"a").modified, None);
    }
}

//! A whole file from disk, streamed, with single byte ranges (`Range: bytes=a-b`) so a
//! `<video>` element can seek in a recording of any length without it ever being held in
//! memory: read in chunks on the blocking pool as the client takes them.

use std::convert::Infallible;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Reply;

use super::response::{error, Caching};

/// Bytes read from disk per chunk sent.
const CHUNK: u64 = 256 * 1024;

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// No range, or one this server does not do (several ranges): the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A range wholly past the end (416).
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 14.2) for a file of `len` bytes.
pub fn wanted(range: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>(), b.parse::<u64>()) {
        // bytes=-n: the last n bytes.
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 || len == 0 {
                return Wanted::Unsatisfiable;
            }
            (len.saturating_sub(n), len - 1)
        }
        (Ok(s), Err(_)) if b.is_empty() => (s, len.saturating_sub(1)),
        (Ok(s), Ok(e)) if e >= s => (s, e.min(len.saturating_sub(1))),
        _ => return Wanted::Whole,
    };
    if start >= len {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(start, end)
}

/// Streams `path` (or the part of it `range` asks for) as `content_type`.
pub async fn serve(
    path: PathBuf,
    range: Option<&str>,
    content_type: &str,
) -> warp::reply::Response {
    let opened = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let len = file.metadata()?.len();
        Ok::<_, std::io::Error>((file, len))
    })
    .await;
    let (file, len) = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(StatusCode::NOT_FOUND, "no such file in the recording")
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the recording: {e}"),
            )
        }
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "read task failed"),
    };
    let (status, start, end) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
        Wanted::Unsatisfiable => {
            let mut resp = error(StatusCode::RANGE_NOT_SATISFIABLE, "range past the end");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let file = Arc::new(file);
    let chunks = futures_util::stream::unfold(start, move |at| {
        let file = file.clone();
        async move {
            if at >= end {
                return None;
            }
            let n = CHUNK.min(end - at);
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                file.read_exact_at(&mut buf, at).map(|()| buf)
            })
            .await;
            match read {
                // A failed read ends the body early; the length tells the client it is short.
                Ok(Ok(buf)) => Some((Ok::<_, Infallible>(Bytes::from(buf)), at + n)),
                _ => None,
            }
        }
    });
    let mut resp = warp::reply::stream(chunks).into_response();
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, Caching::Immutable.header());
    let mut set = |name, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, content_type.to_string());
    set(header::CONTENT_LENGTH, (end - start).to_string());
    set(header::ACCEPT_RANGES, "bytes".to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-"), 100), Wanted::Part(0, 99));
        assert_eq!(wanted(Some("bytes=10-19"), 100), Wanted::Part(10, 19));
        assert_eq!(wanted(Some("bytes=90-200"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-500"), 100), Wanted::Part(0, 99));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        // Not understood: the whole file (a server may ignore Range).
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=5-2"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::Whole);
    }
}

//! Writing responses on an HTTP/1.x connection: framing (Content-Length, chunked, or the
//! end of the connection for HTTP/1.0) and writes that must make progress within the
//! write timeout.

use std::io::IoSlice;
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use warp::http::{header, StatusCode};

/// Bodies up to this size are written in one syscall together with the head.
const COALESCE: usize = 16 * 1024;

/// How a response is framed for its request.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    /// A HEAD request: headers only.
    pub head_only: bool,
    /// The client speaks HTTP/1.0: no chunked transfer, keep-alive only when asked for.
    pub http10: bool,
    /// The connection closes after this response.
    pub close: bool,
}

/// The socket (TCP, or TLS over TCP) with the write deadline every write goes through.
pub struct Writer<'a, W> {
    /// The connection.
    pub stream: &'a mut W,
    /// How long one write may make no progress.
    pub timeout: Duration,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    /// Writes all of `parts` with as few syscalls as the kernel allows, without copying.
    /// Each syscall must make progress within the write timeout (a slow reader that keeps
    /// reading is served; one that stopped is cut off).
    pub async fn write_all(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        while !parts.is_empty() {
            let slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let mut n =
                match tokio::time::timeout(self.timeout, self.stream.write_vectored(&slices)).await
                {
                    Ok(r) => r?,
                    Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                if n >= parts[0].len() {
                    n -= parts[0].len();
                    parts.remove(0);
                } else {
                    parts[0] = &parts[0][n..];
                    n = 0;
                }
            }
        }
        // TLS may hold encrypted bytes back until flushed (a no-op for plain TCP).
        match tokio::time::timeout(self.timeout, self.stream.flush()).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// A short plain-text error response that closes the connection.
pub async fn write_error<W: AsyncWrite + Unpin>(
    stream: &mut W,
    status: StatusCode,
    why: &str,
    timeout: Duration,
) -> std::io::Result<()> {
    let body = format!("{why}\n");
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let mut out = Writer { stream, timeout };
    out.write_all(&[head.as_bytes()]).await
}

/// Writes one response; returns whether the connection must close after it.
///
/// A body of unknown length (a growing LL-DASH segment) is chunked for HTTP/1.1 and, since
/// HTTP/1.0 has no chunked coding, delimited by closing the connection for HTTP/1.0.
pub async fn write_response<W: AsyncWrite + Unpin>(
    out: &mut Writer<'_, W>,
    response: warp::reply::Response,
    framing: Framing,
) -> std::io::Result<bool> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodyless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| http_body::Body::size_hint(&body).exact());
    let unknown_length = length.is_none() && !bodyless;
    let chunked = unknown_length && !framing.http10;
    let close = framing.close || (unknown_length && framing.http10);
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"date: ");
    head.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n");
    match (bodyless, length) {
        (true, _) => {}
        (false, Some(n)) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        (false, None) if chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        (false, None) => {} // HTTP/1.0: the body ends where the connection does
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    } else if framing.http10 {
        // An HTTP/1.0 connection persists only if both sides say so.
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if framing.head_only || bodyless {
        out.write_all(&[&head]).await?;
        return Ok(close);
    }
    let mut pending_head = Some(head);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() else {
            continue; // trailers: none of our bodies have them
        };
        if data.is_empty() {
            continue;
        }
        let prefix = if chunked {
            format!("{:x}\r\n", data.len()).into_bytes()
        } else {
            Vec::new()
        };
        let suffix: &[u8] = if chunked { b"\r\n" } else { b"" };
        match pending_head.take() {
            Some(mut head) if data.len() <= COALESCE => {
                head.extend_from_slice(&prefix);
                head.extend_from_slice(&data);
                head.extend_from_slice(suffix);
                out.write_all(&[&head]).await?;
            }
            head => {
                let head = head.unwrap_or_default();
                out.write_all(&[&head, &prefix, &data, suffix]).await?;
            }
        }
    }
    if let Some(head) = pending_head {
        out.write_all(&[&head]).await?;
    }
    if chunked {
        out.write_all(&[b"0\r\n\r\n"]).await?;
    }
    Ok(close)
}

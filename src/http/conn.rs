//! A lean HTTP/1.1 connection driver in front of the warp routes.
//!
//! Why not hyper's: a hyper 1 connection allocates 8 KiB for response headers up front and
//! keeps an 8 KiB read buffer while a request is being answered, about 17 KiB per
//! connection in all. LL-HLS parks thousands of blocking playlist requests at once (10,000
//! cost 174 MiB that way); here a parked request keeps no buffer at all, only its
//! route's future. Routing, filters and replies stay warp's (`warp::service`).
//!
//! Requests are GET/HEAD/OPTIONS without bodies; responses use Content-Length when the
//! length is known and chunked transfer otherwise (a growing LL-DASH segment).

use std::convert::Infallible;
use std::io::IoSlice;
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower_service::Service;
use warp::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Version};

/// Largest request head accepted; more is a 431.
const MAX_HEAD: usize = 16 * 1024;
/// Headers per request.
const MAX_HEADERS: usize = 64;
/// A keep-alive connection with no new request for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Bodies up to this size are written in one syscall together with the head.
const COALESCE: usize = 16 * 1024;

/// What a request head parsed into.
enum Head {
    /// A request, and whether the client wants the connection closed after it.
    Request(Box<Request<Empty<Bytes>>>, bool),
    /// More bytes are needed.
    Partial,
    /// A malformed head: answer with this status and close.
    Bad(StatusCode, &'static str),
}

fn parse(buf: &mut BytesMut) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Head::Bad(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many headers",
            )
        }
        Err(_) => return Head::Bad(StatusCode::BAD_REQUEST, "malformed request"),
    };
    let http11 = req.version == Some(1);
    let mut builder = Request::builder()
        .method(req.method.unwrap_or("GET"))
        .uri(req.path.unwrap_or("/"))
        .version(if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        });
    let mut close = !http11;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Head::Bad(StatusCode::BAD_REQUEST, "malformed header");
        };
        if name == header::CONNECTION {
            let v = value.to_str().unwrap_or("").to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
        let has_body = (name == header::CONTENT_LENGTH && value.as_bytes() != b"0")
            || name == header::TRANSFER_ENCODING;
        if has_body {
            // Nothing we serve takes a body; refusing keeps the framing simple and safe.
            return Head::Bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request bodies are not accepted",
            );
        }
        builder = builder.header(name, value);
    }
    buf.advance(len);
    match builder.body(Empty::new()) {
        Ok(r) => Head::Request(Box::new(r), close),
        Err(_) => Head::Bad(StatusCode::BAD_REQUEST, "malformed request line"),
    }
}

/// Serves one connection until the client closes it, it idles out, or an error occurs.
pub async fn serve<S>(mut stream: TcpStream, mut service: S)
where
    S: Service<Request<Empty<Bytes>>, Response = warp::reply::Response, Error = Infallible>,
{
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::new();
    loop {
        let (request, close) = loop {
            match parse(&mut buf) {
                Head::Request(r, close) => break (r, close),
                Head::Bad(status, why) => {
                    let _ = write_error(&mut stream, status, why).await;
                    return;
                }
                Head::Partial if buf.len() >= MAX_HEAD => {
                    let _ = write_error(
                        &mut stream,
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request head too large",
                    )
                    .await;
                    return;
                }
                Head::Partial => {}
            }
            buf.reserve(1024);
            match tokio::time::timeout(IDLE, stream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        };
        // A parked request keeps no read buffer (pipelined bytes, if any, stay).
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        let head_only = request.method() == Method::HEAD;
        let Ok(response) = service.call(*request).await;
        if write_response(&mut stream, response, head_only, close)
            .await
            .is_err()
            || close
        {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn write_error(stream: &mut TcpStream, status: StatusCode, why: &str) -> std::io::Result<()> {
    let body = format!("{why}\n");
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    stream.write_all(head.as_bytes()).await
}

async fn write_response(
    stream: &mut TcpStream,
    response: warp::reply::Response,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
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
    let chunked = length.is_none() && !bodyless;
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
        (false, None) => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if head_only || bodyless {
        return stream.write_all(&head).await;
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
                stream.write_all(&head).await?;
            }
            head => {
                let head = head.unwrap_or_default();
                write_all_vectored(stream, &[&head, &prefix, &data, suffix]).await?;
            }
        }
    }
    if let Some(head) = pending_head {
        stream.write_all(&head).await?;
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// Writes all of `parts` with as few syscalls as the kernel allows, without copying.
async fn write_all_vectored(stream: &mut TcpStream, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    while !parts.is_empty() {
        let slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut n = stream.write_vectored(&slices).await?;
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
    Ok(())
}

/// Parses one request head from `bytes` as a connection does, for the fuzz targets:
/// `Ok(Some((uri, close, bytes left over)))`, `Ok(None)` while the head is incomplete, or
/// `Err(status)` for a head that is answered with that status.
#[doc(hidden)]
pub fn parse_head(bytes: &[u8]) -> Result<Option<(String, bool, usize)>, u16> {
    let mut buf = BytesMut::from(bytes);
    match parse(&mut buf) {
        Head::Request(r, close) => Ok(Some((r.uri().to_string(), close, buf.len()))),
        Head::Partial => Ok(None),
        Head::Bad(status, _) => Err(status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_refuses_bodies() {
        let mut buf = BytesMut::from(&b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /c"[..]);
        let Head::Request(r, close) = parse(&mut buf) else {
            panic!("not parsed")
        };
        assert_eq!(r.uri().path(), "/a/b");
        assert_eq!(r.uri().query(), Some("x=1"));
        assert!(!close);
        assert_eq!(&buf[..], b"GET /c", "pipelined bytes stay");
        assert!(matches!(parse(&mut buf), Head::Partial));
        let mut old = BytesMut::from(&b"GET / HTTP/1.0\r\n\r\n"[..]);
        assert!(matches!(parse(&mut old), Head::Request(_, true)));
        let mut body = BytesMut::from(&b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"[..]);
        assert!(matches!(
            parse(&mut body),
            Head::Bad(StatusCode::PAYLOAD_TOO_LARGE, _)
        ));
        let mut junk = BytesMut::from(&b"\x01\x02 garbage\r\n\r\n"[..]);
        assert!(matches!(
            parse(&mut junk),
            Head::Bad(StatusCode::BAD_REQUEST, _)
        ));
    }
}

//! A lean HTTP/1.1 connection driver in front of the warp routes.
//!
//! Why not hyper's: a hyper 1 connection allocates 8 KiB for response headers up front and
//! keeps an 8 KiB read buffer while a request is being answered, about 17 KiB per
//! connection in all. LL-HLS parks thousands of blocking playlist requests at once (10,000
//! cost 174 MiB that way); here a parked request keeps no buffer at all, only its
//! route's future. Routing, filters and replies stay warp's (`warp::service`).
//!
//! Requests are GET/HEAD/OPTIONS without bodies; responses use Content-Length when the
//! length is known and otherwise chunked transfer (HTTP/1.1) or the end of the connection
//! (HTTP/1.0, which has no chunked coding: nginx's proxy_pass speaks it by default).
//!
//! Every wait has a deadline: the request head (slowloris), the keep-alive pause, and
//! each response write (a client that stopped reading). A held request (LL-HLS blocking
//! reload) is not a write; its own deadline bounds it.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::Empty;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;
use warp::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Version};

use super::writer::{write_error, write_response, Framing, Writer};

/// Largest request head accepted; more is a 431.
const MAX_HEAD: usize = 16 * 1024;
/// Headers per request.
const MAX_HEADERS: usize = 64;

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

/// Deadlines of one connection (from `[http]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A whole request head must arrive within this, counted from its first byte (or,
    /// for a connection's first request, from accept): trickling bytes does not extend it.
    pub head: Duration,
    /// A keep-alive connection waits this long for the first byte of its next request.
    pub keepalive: Duration,
    /// A response write that makes no progress for this long closes the connection.
    pub write: Duration,
}

impl Timeouts {
    /// The deadlines in `config`.
    pub fn new(config: &crate::config::HttpConfig) -> Timeouts {
        Timeouts {
            head: Duration::from_secs_f64(config.head_timeout),
            keepalive: Duration::from_secs_f64(config.keepalive_timeout),
            write: Duration::from_secs_f64(config.write_timeout),
        }
    }
}

/// Why a connection ended, for logs and `packgate_http_closed_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it, or asked to (`Connection: close`, HTTP/1.0), or a response of
    /// unknown length was delimited by closing.
    Normal,
    /// A keep-alive connection sent nothing for `keepalive_timeout`.
    Idle,
    /// The request head did not arrive within `head_timeout`.
    HeadTimeout,
    /// A write made no progress for `write_timeout`.
    WriteTimeout,
    /// A malformed or oversized head, answered with an error.
    BadRequest,
    /// A read or write failed (reset by the peer, usually).
    IoError,
    /// The server is shutting down.
    Draining,
    /// The TLS handshake failed or missed `tls.handshake_timeout` (HTTPS only).
    TlsHandshake,
}

impl Closed {
    /// A short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Normal => "normal",
            Closed::Idle => "idle",
            Closed::HeadTimeout => "head_timeout",
            Closed::WriteTimeout => "write_timeout",
            Closed::BadRequest => "bad_request",
            Closed::IoError => "io_error",
            Closed::Draining => "draining",
            Closed::TlsHandshake => "tls_handshake",
        }
    }
}

/// Serves one connection (TCP, or TLS over TCP) from `peer` until the client closes it, a
/// deadline passes, an error occurs, or (between requests) `draining` turns true.
pub async fn serve<IO, S>(
    mut stream: IO,
    peer: std::net::IpAddr,
    mut service: S,
    timeouts: Timeouts,
    mut draining: watch::Receiver<bool>,
) -> Closed
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service<Request<Empty<Bytes>>, Response = warp::reply::Response, Error = Infallible>,
{
    let peer = super::observe::PeerIp(peer);
    let mut buf = BytesMut::new();
    let mut first = true;
    loop {
        // The first request's head is due within head_timeout of accept; a later one's
        // within head_timeout of its first byte, after up to keepalive_timeout of quiet.
        let now = Instant::now();
        let idle_deadline = now + timeouts.keepalive;
        let head_deadline = (first || !buf.is_empty()).then(|| now + timeouts.head);
        first = false;
        let (request, close) = match read_head(
            &mut stream,
            &mut buf,
            &mut draining,
            head_deadline,
            idle_deadline,
            timeouts.head,
        )
        .await
        {
            Ok(head) => head,
            Err((closed, answer)) => {
                if let Some((status, why)) = answer {
                    let _ = write_error(&mut stream, status, why, timeouts.write).await;
                }
                return closed;
            }
        };
        // A parked request keeps no read buffer (pipelined bytes, if any, stay).
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        let framing = Framing {
            head_only: request.method() == Method::HEAD,
            http10: request.version() == Version::HTTP_10,
            close,
        };
        let mut request = *request;
        request.extensions_mut().insert(peer);
        let Ok(response) = service.call(request).await;
        // Decided after the response is ready: a request answered during a drain is the
        // connection's last.
        let draining_now = *draining.borrow();
        let framing = Framing {
            close: framing.close || draining_now,
            ..framing
        };
        let mut out = Writer {
            stream: &mut stream,
            timeout: timeouts.write,
        };
        match write_response(&mut out, response, framing).await {
            Ok(false) => {}
            Ok(true) => {
                let _ = tokio::time::timeout(timeouts.write, stream.shutdown()).await;
                return if draining_now {
                    Closed::Draining
                } else {
                    Closed::Normal
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Closed::WriteTimeout,
            Err(_) => return Closed::IoError,
        }
    }
}

/// Why no request came, and the error to answer with, if any.
type NoHead = (Closed, Option<(StatusCode, &'static str)>);

/// Reads until `buf` holds a whole request head, by `head_deadline` (once set; the first
/// byte sets it) or, while nothing has arrived, by `idle_deadline`.
async fn read_head<IO: AsyncRead + Unpin>(
    stream: &mut IO,
    buf: &mut BytesMut,
    draining: &mut watch::Receiver<bool>,
    mut head_deadline: Option<Instant>,
    idle_deadline: Instant,
    head_timeout: Duration,
) -> Result<(Box<Request<Empty<Bytes>>>, bool), NoHead> {
    loop {
        match parse(buf) {
            Head::Request(r, close) => return Ok((r, close)),
            Head::Bad(status, why) => return Err((Closed::BadRequest, Some((status, why)))),
            Head::Partial if buf.len() >= MAX_HEAD => {
                let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                return Err((Closed::BadRequest, Some((status, "request head too large"))));
            }
            Head::Partial => {}
        }
        buf.reserve(1024);
        let deadline = head_deadline.unwrap_or(idle_deadline);
        let waiting_idle = buf.is_empty();
        tokio::select! {
            // Only a connection between requests is closed by draining; one sending a
            // head is answered (bounded by the head deadline and the drain timeout).
            _ = drained(draining), if waiting_idle => return Err((Closed::Draining, None)),
            read = tokio::time::timeout_at(deadline, stream.read_buf(buf)) => match read {
                Ok(Ok(n)) if n > 0 => {
                    head_deadline.get_or_insert_with(|| Instant::now() + head_timeout);
                }
                Ok(Ok(_)) => return Err((Closed::Normal, None)),
                Ok(Err(_)) => return Err((Closed::IoError, None)),
                Err(_) if head_deadline.is_none() => return Err((Closed::Idle, None)),
                Err(_) if buf.is_empty() => return Err((Closed::HeadTimeout, None)),
                Err(_) => {
                    let why = "request head not received in time";
                    return Err((Closed::HeadTimeout, Some((StatusCode::REQUEST_TIMEOUT, why))));
                }
            },
        }
    }
}

/// Resolves once the server drains (the watch's guard never lives across an await).
async fn drained(draining: &mut watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await;
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
    use std::io::{Read, Write};
    use warp::reply::Reply;
    use warp::Filter;

    const T: Timeouts = Timeouts {
        head: Duration::from_millis(400),
        keepalive: Duration::from_secs(5),
        write: Duration::from_millis(400),
    };

    /// Serves one connection with test routes: `/stream` (unknown length, two chunks),
    /// `/big` (1 MiB, known length), anything else "ok". Returns the client socket and
    /// the server's verdict.
    async fn one_connection(
        timeouts: Timeouts,
        draining: watch::Receiver<bool>,
    ) -> (std::net::TcpStream, tokio::task::JoinHandle<Closed>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let routes = warp::path::full().map(|p: warp::path::FullPath| match p.as_str() {
            "/stream" => {
                let chunks: Vec<Result<Bytes, Infallible>> = vec![
                    Ok(Bytes::from_static(b"hello ")),
                    Ok(Bytes::from_static(b"world")),
                ];
                warp::reply::stream(futures_util::stream::iter(chunks)).into_response()
            }
            "/big" => vec![7u8; 1 << 20].into_response(),
            _ => "ok".into_response(),
        });
        let service = warp::service(routes);
        let served = tokio::spawn(serve(stream, peer.ip(), service, timeouts, draining));
        (client, served)
    }

    fn no_drain() -> watch::Receiver<bool> {
        // The sender is leaked so the receiver never sees it close.
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        rx
    }

    /// Reads until the server closes; the bytes and whether it closed cleanly.
    fn read_to_close(client: &mut std::net::TcpStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).expect("server closes");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn http10_unknown_length_is_close_delimited_never_chunked() {
        let (mut client, served) = one_connection(T, no_drain()).await;
        client
            .write_all(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let text = tokio::task::spawn_blocking(move || read_to_close(&mut client))
            .await
            .unwrap();
        let lower = text.to_ascii_lowercase();
        assert!(!lower.contains("transfer-encoding"), "{text}");
        assert!(!lower.contains("content-length"), "{text}");
        assert!(lower.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello world"), "{text}");
        assert_eq!(served.await.unwrap(), Closed::Normal);
    }

    #[tokio::test]
    async fn http11_unknown_length_is_chunked() {
        let (mut client, served) = one_connection(T, no_drain()).await;
        client
            .write_all(b"GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let text = tokio::task::spawn_blocking(move || read_to_close(&mut client))
            .await
            .unwrap();
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
            "{text}"
        );
        assert_eq!(served.await.unwrap(), Closed::Normal);
    }

    #[tokio::test]
    async fn http10_keep_alive_with_known_length_stays_open() {
        let (mut client, served) = one_connection(T, no_drain()).await;
        let text = tokio::task::spawn_blocking(move || {
            client
                .write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut first = [0u8; 512];
            let n = client.read(&mut first).unwrap();
            let first = String::from_utf8_lossy(&first[..n]).into_owned();
            // The same connection answers a second request.
            client.write_all(b"GET /b HTTP/1.0\r\n\r\n").unwrap();
            first + &read_to_close(&mut client)
        })
        .await
        .unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
        assert!(text.contains("connection: keep-alive\r\n"), "{text}");
        assert!(text.contains("content-length: 2\r\n"), "{text}");
        assert_eq!(served.await.unwrap(), Closed::Normal);
    }

    #[tokio::test]
    async fn a_trickled_head_is_cut_at_the_head_deadline() {
        let (mut client, served) = one_connection(T, no_drain()).await;
        let started = std::time::Instant::now();
        let trickle = tokio::task::spawn_blocking(move || {
            // One byte every 100 ms: each read is quick, the whole head never arrives.
            for b in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa".iter() {
                if client.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let closed = tokio::time::timeout(Duration::from_secs(3), served)
            .await
            .expect("closed well before the trickle ends")
            .unwrap();
        assert_eq!(closed, Closed::HeadTimeout);
        assert!(started.elapsed() < Duration::from_secs(2));
        let _ = trickle.await;
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_closed_at_the_write_deadline() {
        let (mut client, served) = one_connection(T, no_drain()).await;
        // 64 pipelined requests for 1 MiB each: far more than the socket buffers hold.
        let requests = b"GET /big HTTP/1.1\r\n\r\n".repeat(64);
        client.write_all(&requests).unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("closed")
            .unwrap();
        assert_eq!(closed, Closed::WriteTimeout);
        drop(client);
    }

    #[tokio::test]
    async fn draining_closes_idle_keep_alive_connections() {
        let (tx, rx) = watch::channel(false);
        let (mut client, served) = one_connection(T, rx).await;
        let first = tokio::task::spawn_blocking(move || {
            client.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
            let mut buf = [0u8; 512];
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let n = client.read(&mut buf).unwrap();
            (client, String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        let (_client, text) = first.await.unwrap();
        assert!(!text.contains("connection: close"), "{text}");
        tx.send_replace(true);
        let closed = tokio::time::timeout(Duration::from_secs(2), served)
            .await
            .expect("closed on drain")
            .unwrap();
        assert_eq!(closed, Closed::Draining);
    }

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

//! A small HTTP/1.1 keep-alive client for the load generator: one connection per viewer
//! stream of requests, GET only, every read under a deadline and a byte budget. Hand-rolled
//! (httparse for the head) so that the time of the last body byte is measured where it
//! arrives, and chunked bodies can be inspected while they stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes a response head may take.
const HEAD_BUDGET: usize = 16 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connect, read or write failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The response was not HTTP/1.1 as we read it.
    #[error("bad response: {0}")]
    Bad(&'static str),
    /// The body grew past the byte budget.
    #[error("body over budget")]
    Budget,
}

/// One response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (empty when a sink consumed it).
    pub body: Bytes,
    /// When the last body byte arrived.
    pub done: Instant,
}

/// A keep-alive connection to one server, reopened after any failure.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
    buf: BytesMut,
    /// Most body bytes one response may carry.
    pub budget: usize,
}

impl Client {
    /// A client of `addr`; connects on the first request.
    pub fn new(addr: SocketAddr) -> Self {
        Client {
            addr,
            conn: None,
            buf: BytesMut::new(),
            budget: 32 << 20,
        }
    }

    /// GET `path`, the whole body collected, within `limit`.
    pub async fn get(&mut self, path: &str, limit: Duration) -> Result<Response, HttpError> {
        let mut body = BytesMut::new();
        let mut r = self
            .get_with(path, limit, |data, _| body.extend_from_slice(data))
            .await?;
        r.body = body.freeze();
        Ok(r)
    }

    /// GET `path`, handing each piece of body to `sink` with the time it arrived.
    pub async fn get_with(
        &mut self,
        path: &str,
        limit: Duration,
        sink: impl FnMut(&[u8], Instant),
    ) -> Result<Response, HttpError> {
        let r = tokio::time::timeout(limit, self.exchange(path, sink)).await;
        match r {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.reset();
                Err(e)
            }
            Err(_) => {
                self.reset();
                Err(HttpError::Timeout)
            }
        }
    }

    fn reset(&mut self) {
        self.conn = None;
        self.buf.clear();
    }

    async fn exchange(
        &mut self,
        path: &str,
        mut sink: impl FnMut(&[u8], Instant),
    ) -> Result<Response, HttpError> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.conn = Some(s);
            self.buf.clear();
        }
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        let conn = self.conn.as_mut().expect("connected");
        conn.write_all(req.as_bytes()).await?;
        // Head.
        let (status, framing, keep_alive, head_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut framing = Framing::Close;
                    let mut keep_alive = true;
                    for h in resp.headers.iter() {
                        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = v.parse().map_err(|_| HttpError::Bad("length"))?;
                            framing = Framing::Length(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && v.eq_ignore_ascii_case("chunked")
                        {
                            framing = Framing::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && v.eq_ignore_ascii_case("close")
                        {
                            keep_alive = false;
                        }
                    }
                    break (resp.code.unwrap_or(0), framing, keep_alive, n);
                }
                Ok(httparse::Status::Partial) if self.buf.len() < HEAD_BUDGET => {
                    read_more(conn, &mut self.buf).await?;
                }
                Ok(httparse::Status::Partial) => return Err(HttpError::Bad("head too long")),
                Err(_) => return Err(HttpError::Bad("head")),
            }
        };
        self.buf.advance(head_len);
        let mut total = 0usize;
        let mut done = Instant::now();
        let budget = self.budget;
        let mut deliver = |data: &[u8], at: Instant| -> Result<(), HttpError> {
            total += data.len();
            if total > budget {
                return Err(HttpError::Budget);
            }
            sink(data, at);
            Ok(())
        };
        match framing {
            Framing::Length(len) => {
                done = pass(conn, &mut self.buf, len, &mut deliver)
                    .await?
                    .unwrap_or(done);
            }
            Framing::Chunked => loop {
                // Chunk size line.
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    if self.buf.len() > 1024 {
                        return Err(HttpError::Bad("chunk size line"));
                    }
                    read_more(conn, &mut self.buf).await?;
                };
                let line = std::str::from_utf8(&self.buf[..line_end]).unwrap_or("");
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| HttpError::Bad("chunk size"))?;
                self.buf.advance(line_end + 2);
                if size == 0 {
                    // Trailers end with an empty line; we send none and expect none.
                    while self.buf.len() < 2 {
                        read_more(conn, &mut self.buf).await?;
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(HttpError::Bad("trailers"));
                    }
                    self.buf.advance(2);
                    done = Instant::now();
                    break;
                }
                done = pass(conn, &mut self.buf, size, &mut deliver)
                    .await?
                    .unwrap_or(done);
                while self.buf.len() < 2 {
                    read_more(conn, &mut self.buf).await?;
                }
                self.buf.advance(2);
            },
            Framing::Close => loop {
                if !self.buf.is_empty() {
                    done = Instant::now();
                    deliver(&self.buf, done)?;
                    self.buf.clear();
                }
                match conn.read_buf(&mut self.buf).await? {
                    0 => break,
                    _ => continue,
                }
            },
        }
        if !keep_alive || matches!(framing, Framing::Close) {
            self.reset();
        }
        Ok(Response {
            status,
            body: Bytes::new(),
            done,
        })
    }
}

#[derive(Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Hands the next `len` body bytes to `deliver` as they arrive; the time of the last.
async fn pass(
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    mut len: usize,
    deliver: &mut impl FnMut(&[u8], Instant) -> Result<(), HttpError>,
) -> Result<Option<Instant>, HttpError> {
    let mut last = None;
    while len > 0 {
        if buf.is_empty() {
            read_more(conn, buf).await?;
        }
        let n = len.min(buf.len());
        let now = Instant::now();
        deliver(&buf[..n], now)?;
        last = Some(now);
        buf.advance(n);
        len -= n;
    }
    Ok(last)
}

async fn read_more(conn: &mut TcpStream, buf: &mut BytesMut) -> Result<(), HttpError> {
    buf.reserve(16 * 1024);
    match conn.read_buf(buf).await? {
        0 => Err(HttpError::Bad("connection closed")),
        _ => Ok(()),
    }
}

/// Resolves `uri` (absolute path, full http URL or relative) against the URL path `base`.
pub fn resolve(base: &str, uri: &str) -> String {
    if let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        return rest.find('/').map_or("/".into(), |i| rest[i..].to_string());
    }
    if uri.starts_with('/') {
        return uri.to_string();
    }
    let base = base.split('?').next().unwrap_or(base);
    let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
    format!("{dir}{uri}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_uris() {
        assert_eq!(
            resolve("/live/a/index.m3u8", "src/v.m3u8"),
            "/live/a/src/v.m3u8"
        );
        assert_eq!(
            resolve("/live/a/v.m3u8?_HLS_msn=1", "p.m4s"),
            "/live/a/p.m4s"
        );
        assert_eq!(resolve("/x/y", "/z"), "/z");
        assert_eq!(resolve("/x/y", "http://h:1/q/r"), "/q/r");
    }
}

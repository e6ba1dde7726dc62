//! The webhook call: one HTTP/1.1 POST of a JSON body over a plain TCP connection
//! (`http://` only; there is no TLS client), bounded by one deadline for connect, write and
//! read, and by a byte budget on the response, of which only the status line is used.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::WebhookUrl;

/// Bytes of response read at most while looking for the status line.
pub const RESPONSE_BUDGET: usize = 8 * 1024;

/// One request to send.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookCall {
    /// Where to.
    pub url: WebhookUrl,
    /// JSON body.
    pub body: Vec<u8>,
    /// The whole exchange's deadline.
    pub timeout: Duration,
}

/// Why the webhook could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer is not an HTTP response.
    #[error("bad response: {0}")]
    BadResponse(&'static str),
}

impl WebhookCall {
    /// Sends the request and returns the response's status code.
    pub async fn send(&self) -> Result<u16, WebhookError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .map_err(|_| WebhookError::Timeout(self.timeout))?
    }

    async fn exchange(&self) -> Result<u16, WebhookError> {
        let url = &self.url;
        let mut socket = TcpStream::connect((url.host.as_str(), url.port)).await?;
        let _ = socket.set_nodelay(true);
        socket.write_all(&self.head()).await?;
        socket.write_all(&self.body).await?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
                return status_code(&buf[..end]);
            }
            if buf.len() >= RESPONSE_BUDGET {
                return Err(WebhookError::BadResponse("status line too long"));
            }
            let room = (RESPONSE_BUDGET - buf.len()).min(chunk.len());
            let n = socket.read(&mut chunk[..room]).await?;
            if n == 0 {
                return Err(WebhookError::BadResponse("closed before a status line"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn head(&self) -> Vec<u8> {
        let url = &self.url;
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let host = if url.port == 80 {
            host
        } else {
            format!("{host}:{}", url.port)
        };
        format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: packgate\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            url.path,
            self.body.len()
        )
        .into_bytes()
    }
}

/// The code of a status line such as `HTTP/1.1 204 No Content`.
fn status_code(line: &[u8]) -> Result<u16, WebhookError> {
    let bad = WebhookError::BadResponse("not an HTTP status line");
    let line = std::str::from_utf8(line).map_err(|_| WebhookError::BadResponse("not text"))?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad);
    }
    parts
        .next()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn call(port: u16, timeout_ms: u64) -> WebhookCall {
        WebhookCall {
            url: WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hook?x=1")).unwrap(),
            body: b"{\"a\":1}".to_vec(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// A one-shot server that answers `reply` and returns what it received.
    fn serve(reply: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"{\"a\":1}") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(reply);
            got
        });
        (port, handle)
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content").unwrap(), 204);
        assert_eq!(status_code(b"HTTP/1.0 403").unwrap(), 403);
        assert!(status_code(b"SSH-2.0-OpenSSH").is_err());
        assert!(status_code(b"HTTP/1.1 2000 x").is_err());
        assert!(status_code(b"HTTP/1.1 099 x").is_err());
    }

    #[tokio::test]
    async fn posts_and_reads_the_status() {
        let (port, server) = serve(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(call(port, 5000).send().await.unwrap(), 403);
        let got = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(got.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "{got}");
        assert!(
            got.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{got}"
        );
        assert!(got.contains("Content-Length: 7\r\n"), "{got}");
    }

    #[tokio::test]
    async fn garbage_silence_and_refusal_are_errors() {
        let (port, _s) = serve(&[b'x'; 9000]);
        assert!(matches!(
            call(port, 5000).send().await,
            Err(WebhookError::BadResponse(_))
        ));
        // Accepts but never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(matches!(
            call(port, 200).send().await,
            Err(WebhookError::Timeout(_))
        ));
        drop(listener);
        assert!(matches!(
            call(port, 2000).send().await,
            Err(WebhookError::Io(_))
        ));
    }
}

//! Raw RTMP clients and log capture for the tests that play a bad client against the
//! ingest (bad_input.rs, limits_rtmp.rs): plain TCP, the sans-IO client session for a real
//! publish, and a check that the server closed the socket.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use packgate::rtmp::client::{ClientEvent, ClientSession};

use crate::common::http::get;
use crate::common::poll;

/// Everything logged in this test process, also echoed to stderr.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per process and returns the capture.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_env_filter("info")
            .init();
        logs
    })
}

impl Logs {
    /// Everything so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines containing every one of `words`.
    pub fn lines_with(&self, words: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_string)
            .collect()
    }

    /// Waits for a log line mentioning `peer` and containing every one of `words`.
    pub fn wait_line(&self, peer: SocketAddr, words: &[&str]) -> String {
        let peer = format!("peer={peer}");
        poll(Duration::from_secs(10), || {
            self.text()
                .lines()
                .find(|l| l.contains(&peer) && words.iter().all(|w| l.contains(w)))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no log line with {peer} and {words:?}:\n{}", self.text()))
    }
}

/// True once the server has closed `s` (read gives EOF or a reset) within `limit`.
pub fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// The number after the newest segment of a media playlist, if it answers.
pub fn last_sequence(http: SocketAddr, path: &str) -> Option<u64> {
    let r = get(http, path).ok().filter(|r| r.status == 200)?;
    let text = r.text();
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .parse()
        .ok()?;
    let n = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    Some(first + n)
}

/// A plain handshake (C0+C1, read S0+S1+S2, C2) on a new connection.
pub fn handshake(s: &mut TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 8]);
    c0c1.extend((0..1528).map(|i| (i * 7 % 251) as u8));
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut s0s1s2).unwrap();
    s.write_all(&s0s1s2[1..1537]).unwrap(); // C2 echoes S1
}

/// A connection that has completed the handshake.
pub fn handshaken(rtmp: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(rtmp).unwrap();
    handshake(&mut s);
    s
}

/// A connection publishing `app/name` (accepted), with the session to make its messages.
pub fn publisher(rtmp: SocketAddr, app: &str, name: &str) -> (TcpStream, ClientSession) {
    let mut s = TcpStream::connect(rtmp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut client, c0c1) = ClientSession::new(app, name, false, 65_536);
    s.write_all(&c0c1).unwrap();
    let mut buf = vec![0u8; 65_536];
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let n = s.read(&mut buf).expect("server answers the publish");
        assert!(n > 0, "server closed before the publish was accepted");
        for ev in client.handle_input(&buf[..n]).unwrap() {
            match ev {
                ClientEvent::Send(b) => s.write_all(&b).unwrap(),
                ClientEvent::PublishAccepted => return (s, client),
                ClientEvent::PublishRejected(code) => panic!("publish refused: {code}"),
                ClientEvent::Connected => {}
            }
        }
    }
    panic!("publish of {app}/{name} not accepted in time");
}

/// An FLV video tag body holding an AVC sequence header around `record`.
pub fn avc_sequence_header(record: &[u8]) -> Bytes {
    let mut b = vec![0x17, 0, 0, 0, 0];
    b.extend_from_slice(record);
    Bytes::from(b)
}

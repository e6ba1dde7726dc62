//! A publisher with rewritten timestamps: plays an FLV file in real time over a real RTMP
//! connection, looping it on one continuous media clock, and stamps each message with
//! whatever timestamp the caller wants (jumps, wraps, a far-future keyframe). ffmpeg cannot
//! send those: its muxer clamps a backwards DTS step to the previous one. The timestamp
//! tests and the soak (`packgate-load --retime`) use it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::flv::file::{read_tags, FileTag};
use crate::flv::FlvError;
use crate::rtmp::client::{ClientEvent, ClientSession};
use crate::rtmp::session::SessionError;

/// Why a retimed publish could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RetimeError {
    /// Reading the file or the socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The file is no FLV.
    #[error("FLV: {0}")]
    Flv(#[from] FlvError),
    /// The server spoke RTMP we could not follow.
    #[error("RTMP: {0}")]
    Session(#[from] SessionError),
    /// The server refused the publish (its status code).
    #[error("publish rejected: {0}")]
    Rejected(String),
    /// No answer to the publish within the handshake deadline.
    #[error("publish not accepted within {0:?}")]
    Timeout(Duration),
}

/// One message about to be sent: what the caller's `stamp` function decides from.
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    /// Media time since the start of the publish, ms (continuous across loops).
    pub media_ms: u64,
    /// 8 audio, 9 video.
    pub kind: u8,
    /// A video keyframe.
    pub keyframe: bool,
}

/// A running retimed publish; stops (and closes the connection) when dropped.
pub struct Retimed {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), RetimeError>>>,
}

impl Retimed {
    /// True while the publishing thread runs.
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Waits for the publish to end (its media ran out or the server closed).
    pub fn join(mut self) -> Result<(), RetimeError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for Retimed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_header(t: &FileTag) -> bool {
    (t.kind == 8 || t.kind == 9) && t.body.len() > 1 && t.body[1] == 0
}

/// How long the handshake, connect and publish may take.
const ACCEPT_DEADLINE: Duration = Duration::from_secs(10);

/// Publishes `file` to `rtmp://addr/app/name` in real time for at most `secs` seconds of
/// media, looping it; every message gets the timestamp `stamp` returns (None: the message
/// is not sent). Codec headers are sent once, at timestamp 0.
pub fn publish_retimed(
    addr: SocketAddr,
    app: &str,
    name: &str,
    file: &std::path::Path,
    secs: u64,
    stamp: impl Fn(Tag) -> Option<u32> + Send + 'static,
) -> Result<Retimed, RetimeError> {
    publish_retimed_at(addr, app, name, file, secs, 1.0, stamp)
}

/// As [`publish_retimed`], at `speed` times real time (a DVR window filled in minutes
/// rather than hours, still paced like an encoder).
pub fn publish_retimed_at(
    addr: SocketAddr,
    app: &str,
    name: &str,
    file: &std::path::Path,
    secs: u64,
    speed: f64,
    stamp: impl Fn(Tag) -> Option<u32> + Send + 'static,
) -> Result<Retimed, RetimeError> {
    let speed = speed.max(0.01);
    let tags = read_tags(Bytes::from(std::fs::read(file)?))?;
    let last = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    // One loop lasts until the last tag plus a video frame.
    let loop_ms = u64::from(last) + 33;
    let sock = TcpStream::connect(addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (app, name) = (app.to_string(), name.to_string());
    let thread = std::thread::spawn(move || {
        let (mut client, sock) = accept(sock, &app, &name)?;
        let pace = Pace { secs, speed };
        send_loop(&mut client, sock, &tags, loop_ms, pace, &flag, stamp)
    });
    Ok(Retimed {
        stop,
        thread: Some(thread),
    })
}

/// Handshake, connect and publish; then whatever the server says (acks, pings) is read and
/// dropped by a second thread.
fn accept(
    mut sock: TcpStream,
    app: &str,
    name: &str,
) -> Result<(ClientSession, TcpStream), RetimeError> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let (mut client, c0c1) = ClientSession::new(app, name, false, 4096);
    sock.write_all(&c0c1)?;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + ACCEPT_DEADLINE;
    while Instant::now() < deadline {
        let n = match sock.read(&mut buf) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let mut accepted = false;
        for e in client.handle_input(&buf[..n])? {
            match e {
                ClientEvent::Send(b) => sock.write_all(&b)?,
                ClientEvent::PublishAccepted => accepted = true,
                ClientEvent::PublishRejected(why) => return Err(RetimeError::Rejected(why)),
                ClientEvent::Connected => {}
            }
        }
        if accepted {
            let mut reader = sock.try_clone()?;
            reader.set_read_timeout(None)?;
            std::thread::spawn(
                move || while matches!(reader.read(&mut [0u8; 4096]), Ok(n) if n > 0) {},
            );
            return Ok((client, sock));
        }
    }
    Err(RetimeError::Timeout(ACCEPT_DEADLINE))
}

/// How much media to send, how fast.
struct Pace {
    secs: u64,
    speed: f64,
}

fn send_loop(
    client: &mut ClientSession,
    mut sock: TcpStream,
    tags: &[FileTag],
    loop_ms: u64,
    pace: Pace,
    stop: &AtomicBool,
    stamp: impl Fn(Tag) -> Option<u32>,
) -> Result<(), RetimeError> {
    let start = Instant::now();
    for round in 0u64.. {
        for t in tags {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if (t.kind != 8 && t.kind != 9) || (round > 0 && is_header(t)) {
                continue;
            }
            let media_ms = round * loop_ms + u64::from(t.timestamp);
            if media_ms > pace.secs * 1000 {
                return Ok(());
            }
            let due = Duration::from_millis(media_ms).div_f64(pace.speed);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
            let keyframe = t.kind == 9 && t.body.first().is_some_and(|b| b >> 4 == 1);
            let tag = Tag {
                media_ms,
                kind: t.kind,
                keyframe: keyframe && !is_header(t),
            };
            let ts = if is_header(t) { Some(0) } else { stamp(tag) };
            let Some(ts) = ts else { continue };
            let msg = if t.kind == 8 {
                client.audio(ts, t.body.clone())
            } else {
                client.video(ts, t.body.clone())
            };
            sock.write_all(&msg)?;
        }
    }
    Ok(())
}

/// The timestamp rules `packgate-load --retime` offers: what encoders send when their clock
/// jumps or wraps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stamps {
    /// First timestamp, ms (e.g. 2^31 − 60 000 to cross the 31-bit wrap after a minute).
    pub start_ms: u64,
    /// Every `every_ms` of media the clock steps back by `back_ms` (0: never).
    pub every_ms: u64,
    /// How far each step goes back, ms.
    pub back_ms: u64,
    /// Timestamps wrap at 2^bits ms: 31 as ffmpeg's and OBS's FLV muxers write them, 32 as
    /// RTMP allows.
    pub wrap_bits: u32,
}

impl Stamps {
    /// The timestamp of a message at `media_ms`.
    pub fn stamp(&self, media_ms: u64) -> u32 {
        let steps = media_ms.checked_div(self.every_ms).unwrap_or(0);
        let ts = (self.start_ms + media_ms).saturating_sub(steps * self.back_ms);
        (ts % (1u64 << self.wrap_bits.min(32))) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Stamps;

    #[test]
    fn steps_back_and_wraps() {
        let back = Stamps {
            start_ms: 0,
            every_ms: 120_000,
            back_ms: 60_000,
            wrap_bits: 32,
        };
        assert_eq!(back.stamp(119_999), 119_999);
        assert_eq!(back.stamp(120_000), 60_000);
        assert_eq!(back.stamp(240_000), 120_000);
        let wrap = Stamps {
            start_ms: (1 << 31) - 60_000,
            every_ms: 0,
            back_ms: 0,
            wrap_bits: 31,
        };
        assert_eq!(wrap.stamp(59_999), (1 << 31) - 1);
        assert_eq!(wrap.stamp(60_000), 0);
        assert_eq!(wrap.stamp(61_000), 1_000);
    }
}

//! A publisher with rewritten timestamps: plays an FLV file (made by ffmpeg) in real time
//! over a real RTMP connection, looping it on one continuous media clock, and stamps each
//! message with whatever timestamp a test wants (jumps, wraps, a far-future keyframe).
//! ffmpeg cannot send those: its muxer clamps a backwards DTS step to the previous one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use packgate::flv::file::{read_tags, FileTag};
use packgate::rtmp::client::{ClientEvent, ClientSession};

/// One message about to be sent: what the test's `stamp` function decides from.
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
    thread: Option<JoinHandle<()>>,
}

impl Retimed {
    /// True while the publishing thread runs.
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
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

/// Publishes `file` to `rtmp://addr/app/name` for at most `secs` seconds of media, looping
/// it; every message gets the timestamp `stamp` returns (None: the message is not sent).
pub fn publish_retimed(
    addr: SocketAddr,
    app: &str,
    name: &str,
    file: &std::path::Path,
    secs: u64,
    stamp: impl Fn(Tag) -> Option<u32> + Send + 'static,
) -> Retimed {
    let data = Bytes::from(std::fs::read(file).expect("read FLV"));
    let tags = read_tags(data).expect("parse FLV");
    let last = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    // One loop lasts until the last tag plus a video frame.
    let loop_ms = u64::from(last) + 33;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (app, name) = (app.to_string(), name.to_string());
    let thread = std::thread::spawn(move || {
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).ok();
        sock.set_read_timeout(Some(Duration::from_millis(20))).ok();
        let (mut client, c0c1) = ClientSession::new(&app, &name, false, 4096);
        sock.write_all(&c0c1).expect("send C0C1");
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut accepted = false;
        while !accepted && Instant::now() < deadline {
            let n = match sock.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(_) => continue,
            };
            for e in client.handle_input(&buf[..n]).expect("client session") {
                match e {
                    ClientEvent::Send(b) => sock.write_all(&b).expect("send"),
                    ClientEvent::PublishAccepted => accepted = true,
                    ClientEvent::PublishRejected(why) => panic!("publish rejected: {why}"),
                    ClientEvent::Connected => {}
                }
            }
        }
        assert!(accepted, "publish not accepted");
        // Whatever the server says from now on (acks, pings) is read and dropped.
        if let Ok(mut reader) = sock.try_clone() {
            reader.set_read_timeout(None).ok();
            std::thread::spawn(
                move || while matches!(reader.read(&mut [0u8; 4096]), Ok(n) if n > 0) {},
            );
        }
        let start = Instant::now();
        for round in 0u64.. {
            for t in &tags {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                if (t.kind != 8 && t.kind != 9) || (round > 0 && is_header(t)) {
                    continue;
                }
                let media_ms = round * loop_ms + u64::from(t.timestamp);
                if media_ms > secs * 1000 {
                    return;
                }
                let wait = Duration::from_millis(media_ms).saturating_sub(start.elapsed());
                std::thread::sleep(wait);
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
                if sock.write_all(&msg).is_err() {
                    return;
                }
            }
        }
    });
    Retimed {
        stop,
        thread: Some(thread),
    }
}

//! One RTMP publisher: packgate's own sans-IO client session over a tokio socket, sending a
//! shared sample's tags paced by their timestamps and looping with a continuous timeline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::stats::{bump, Stats};
use crate::flv::file::{read_tags, FileTag};
use crate::rtmp::client::{ClientEvent, ClientSession};

/// Deadline of connect + handshake + publish, and of each write.
const IO_LIMIT: Duration = Duration::from_secs(10);
/// Frames a timeline remembers (about two minutes at 30 fps).
const TIMELINE_CAP: usize = 4096;

/// A sample FLV parsed once and shared by every publisher of it.
#[derive(Debug)]
pub struct Sample {
    /// Audio and video tags (script data dropped), in file order.
    pub tags: Vec<FileTag>,
    /// Length of one loop in milliseconds.
    pub loop_ms: u32,
    /// Timestamp of the first video frame: media time zero on the server.
    pub zero_ms: u32,
    /// Media bits per second (tag bodies).
    pub bitrate: f64,
}

impl Sample {
    /// Parses an FLV file's bytes.
    pub fn parse(data: Bytes) -> Result<Self, crate::flv::error::FlvError> {
        let tags: Vec<FileTag> = read_tags(data)?
            .into_iter()
            .filter(|t| t.kind == 8 || (t.kind == 9 && !is_end_of_sequence(t)))
            .collect();
        let last = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
        // One nominal frame after the last tag, so that loops do not overlap.
        let loop_ms = last + 33;
        let zero_ms = tags
            .iter()
            .find(|t| t.kind == 9 && !is_header(t))
            .map_or(0, |t| t.timestamp);
        let bytes: usize = tags.iter().map(|t| t.body.len()).sum();
        let bitrate = bytes as f64 * 8.0 / (f64::from(loop_ms.max(1)) / 1000.0);
        Ok(Sample {
            tags,
            loop_ms,
            zero_ms,
            bitrate,
        })
    }
}

fn is_header(t: &FileTag) -> bool {
    t.body.len() > 1 && t.body[1] == 0 && (t.kind == 8 || (t.kind == 9 && t.body[0] & 0x0F == 7))
}

fn is_end_of_sequence(t: &FileTag) -> bool {
    t.body.len() > 1 && t.body[0] & 0x0F == 7 && t.body[1] == 2
}

/// When each video frame of one publisher went out: media milliseconds (from the first
/// frame, as the server's timeline counts) → the instant its bytes were written.
#[derive(Debug, Default)]
pub struct Timeline(Mutex<VecDeque<(u64, Instant)>>);

impl Timeline {
    fn push(&self, ms: u64, at: Instant) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == TIMELINE_CAP {
            q.pop_front();
        }
        q.push_back((ms, at));
    }

    /// When the frame at media time `ms` (within a frame) was sent.
    pub fn sent_at(&self, ms: u64) -> Option<Instant> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = q.partition_point(|(m, _)| *m <= ms);
        let (m, at) = *q.get(i.checked_sub(1)?)?;
        (ms - m <= 50).then_some(at)
    }
}

/// One publisher's parameters.
#[derive(Debug)]
pub struct Publisher {
    /// The RTMP server.
    pub addr: SocketAddr,
    /// RTMP app.
    pub app: String,
    /// Stream key.
    pub name: String,
    /// What to send.
    pub sample: Arc<Sample>,
    /// Where to record frame send times.
    pub timeline: Arc<Timeline>,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// End of the run.
    pub until: Instant,
}

/// Publishes until the end of the run; sends the instant the publish was accepted to
/// `accepted`.
pub async fn run(p: Publisher, accepted: Option<tokio::sync::oneshot::Sender<Instant>>) {
    let Publisher {
        addr,
        app,
        name,
        sample,
        timeline,
        stats,
        until,
    } = p;
    let (app, name) = (app.as_str(), name.as_str());
    let (mut stream, at) = match timeout(IO_LIMIT, connect(addr, app, name)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::warn!(%name, error = %e, "publish failed");
            bump(&stats.publish_errors, 1);
            return;
        }
        Err(_) => {
            tracing::warn!(%name, "publish timed out");
            bump(&stats.publish_errors, 1);
            return;
        }
    };
    bump(&stats.published, 1);
    if let Some(tx) = accepted {
        let _ = tx.send(at);
    }
    let (mut rd, mut wr) = stream.0.split();
    let mut client = stream.1;
    // The server's acks and pings are read and dropped so its writes never block.
    let drain = async {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let send = async {
        let start = Instant::now();
        let mut pending = BytesMut::new();
        let mut frames: Vec<u64> = Vec::new();
        let mut n: u32 = 0;
        'outer: loop {
            for t in &sample.tags {
                if n > 0 && is_header(t) {
                    continue;
                }
                let ts = t.timestamp.wrapping_add(n.wrapping_mul(sample.loop_ms));
                let media_ms = u64::from(n) * u64::from(sample.loop_ms) + u64::from(t.timestamp)
                    - u64::from(sample.zero_ms);
                let due = start + Duration::from_millis(media_ms);
                if due > Instant::now() {
                    if !flush(&mut wr, &mut pending, &mut frames, &timeline, &stats).await {
                        return;
                    }
                    if due >= until {
                        break 'outer;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let bytes = if t.kind == 9 {
                    if !is_header(t) {
                        frames.push(media_ms);
                    }
                    client.video(ts, t.body.clone())
                } else {
                    client.audio(ts, t.body.clone())
                };
                pending.extend_from_slice(&bytes);
            }
            n += 1;
        }
        let _ = flush(&mut wr, &mut pending, &mut frames, &timeline, &stats).await;
        let bye = client.unpublish();
        let _ = timeout(IO_LIMIT, wr.write_all(&bye)).await;
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = send => {}
        _ = drain => {
            if Instant::now() < until {
                tracing::warn!(%name, "server closed the publish");
                bump(&stats.publish_errors, 1);
            }
        }
    }
}

/// Writes what is pending; records the frames in it as sent now. False on failure.
async fn flush(
    wr: &mut tokio::net::tcp::WriteHalf<'_>,
    pending: &mut BytesMut,
    frames: &mut Vec<u64>,
    timeline: &Timeline,
    stats: &Stats,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let ok = matches!(timeout(IO_LIMIT, wr.write_all(pending)).await, Ok(Ok(())));
    let now = Instant::now();
    for f in frames.drain(..) {
        timeline.push(f, now);
    }
    bump(&stats.publish_bytes, pending.len() as u64);
    pending.clear();
    if !ok {
        bump(&stats.publish_errors, 1);
    }
    ok
}

/// Connects, handshakes and publishes; returns the socket, the session and when the
/// publish was accepted.
async fn connect(
    addr: SocketAddr,
    app: &str,
    name: &str,
) -> std::io::Result<((TcpStream, ClientSession), Instant)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let (mut client, c0c1) = ClientSession::new(app, name, false, 4096);
    s.write_all(&c0c1).await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before publish"));
        }
        let events = client
            .handle_input(&buf[..n])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut accepted = false;
        for e in events {
            match e {
                ClientEvent::Send(b) => s.write_all(&b).await?,
                ClientEvent::PublishAccepted => accepted = true,
                ClientEvent::PublishRejected(code) => {
                    return Err(std::io::Error::other(format!("refused: {code}")))
                }
                ClientEvent::Connected => {}
            }
        }
        if accepted {
            return Ok(((s, client), Instant::now()));
        }
    }
}

//! Bad clients for the chaos test. Each one connects from a loopback source address of its
//! own (127.0.0.2 and up) so per-IP caps never touch the good clients on 127.0.0.1, misbehaves
//! in one way, and reports how long the server took to close it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use packgate::rtmp::amf0::Amf0Value;
use packgate::rtmp::chunk::{ChunkEncoder, RawMessage};
use packgate::rtmp::client::{ClientEvent, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// What became of one bad client.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The attack.
    pub name: String,
    /// When the server closed it, counted from the attack's reference point; `None` if it
    /// was still open when the attacker gave up.
    pub closed_after: Option<Duration>,
    /// By when it had to be closed.
    pub deadline: Duration,
}

impl Verdict {
    /// Closed within the deadline.
    pub fn ok(&self) -> bool {
        self.closed_after.is_some_and(|t| t <= self.deadline)
    }
}

/// Loopback source address `127.0.0.n`.
pub fn source(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Connects to `to` from `from` (port chosen by the kernel); `recv_buffer` shrinks the
/// receive buffer before connecting, so a client that never reads stalls the server soon.
pub async fn connect(
    from: IpAddr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::new(from, 0))?;
    timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Reads (and drops) whatever the server sends until it closes the connection or `until`
/// passes; returns when it closed, measured from `since`.
pub async fn wait_closed(s: &mut TcpStream, since: Instant, until: Instant) -> Option<Duration> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Writes `bytes` one per second, as a slowloris does, until the server closes the
/// connection or `deadline` (plus slack) passes.
pub async fn trickle(
    s: &mut TcpStream,
    bytes: &[u8],
    since: Instant,
    deadline: Duration,
) -> Option<Duration> {
    let give_up = since + deadline + Duration::from_secs(3);
    for b in bytes.iter().cycle() {
        if s.write_all(&[*b]).await.is_err() {
            return Some(since.elapsed());
        }
        let next = (Instant::now() + Duration::from_secs(1)).min(give_up);
        if let Some(t) = wait_closed(s, since, next).await {
            return Some(t);
        }
        if Instant::now() >= give_up {
            return None;
        }
    }
    None
}

/// A deterministic byte soup (xorshift), so a failure reproduces.
pub fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Does the RTMP handshake (simple form) and returns the stream ready for chunks.
pub async fn rtmp_handshake(s: &mut TcpStream) -> io::Result<()> {
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    s.write_all(&c0c1).await?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    timeout(Duration::from_secs(5), s.read_exact(&mut s0s1s2))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no S0 S1 S2"))??;
    s.write_all(&s0s1s2[1..1 + 1536]).await // C2 echoes S1
}

/// Chunks of one message, as an encoder at `chunk_size` sends them.
pub fn chunks(
    csid: u32,
    type_id: u8,
    stream_id: u32,
    payload: Bytes,
    chunk_size: usize,
) -> BytesMut {
    let mut encoder = ChunkEncoder::default();
    encoder.set_chunk_size(chunk_size);
    let mut out = BytesMut::new();
    encoder.encode(
        &RawMessage {
            csid,
            timestamp: 0,
            type_id,
            stream_id,
            payload,
        },
        &mut out,
    );
    out
}

/// Set Chunk Size to `size`, on the protocol control chunk stream.
pub fn set_chunk_size(size: u32) -> BytesMut {
    chunks(2, 1, 0, Bytes::copy_from_slice(&size.to_be_bytes()), 128)
}

/// The first chunk of a message that declares `length` bytes, with `body` bytes of it.
pub fn partial_message(csid: u32, length: u32, body: usize) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(csid as u8); // format 0, csid 2..63
    out.put_uint(0, 3); // timestamp
    out.put_uint(u64::from(length.min(0xFF_FFFF)), 3);
    out.put_u8(9); // video
    out.put_u32_le(1);
    out.put_bytes(0x27, body);
    out
}

/// An AMF0 command message: `connect`, transaction 1, then a strict array that declares
/// `declared` items and carries `nulls` null items.
pub fn strict_array_command(declared: u32, nulls: usize) -> Bytes {
    let mut out = BytesMut::new();
    Amf0Value::String("connect".into()).encode(&mut out);
    Amf0Value::Number(1.0).encode(&mut out);
    out.put_u8(0x0A);
    out.put_u32(declared);
    out.put_bytes(0x05, nulls);
    out.freeze()
}

/// A publisher that speaks RTMP through packgate's own client session: handshake, connect,
/// publish `app/key`; returns once the publish is accepted.
pub struct Publisher {
    /// The connection.
    pub stream: TcpStream,
    /// The session.
    pub session: ClientSession,
}

impl Publisher {
    /// Connects from `from` and publishes.
    pub async fn start(
        from: IpAddr,
        rtmp: SocketAddr,
        app: &str,
        key: &str,
    ) -> io::Result<Publisher> {
        let mut stream = connect(from, rtmp, None).await?;
        let (mut session, c0c1) = ClientSession::new(app, key, false, 60_000);
        stream.write_all(&c0c1).await?;
        let mut buf = vec![0u8; 64 * 1024];
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let left = end
                .checked_duration_since(Instant::now())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "publish not accepted"))?;
            let n = timeout(left, stream.read(&mut buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "publish not accepted"))??;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before publish",
                ));
            }
            let events = session
                .handle_input(&buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let mut accepted = false;
            for e in events {
                match e {
                    ClientEvent::Send(b) => stream.write_all(&b).await?,
                    ClientEvent::PublishAccepted => accepted = true,
                    ClientEvent::PublishRejected(code) => {
                        return Err(io::Error::new(io::ErrorKind::PermissionDenied, code))
                    }
                    ClientEvent::Connected => {}
                }
            }
            if accepted {
                return Ok(Publisher { stream, session });
            }
        }
    }

    /// Sends one video tag body; an error means the server closed the connection.
    pub async fn video(&mut self, timestamp: u32, body: Bytes) -> io::Result<()> {
        let bytes = self.session.video(timestamp, body);
        self.stream.write_all(&bytes).await
    }
}

/// A real AVC sequence header (FLV video tag body) with `padding` bytes appended after its
/// PPS list: the record keeps them, so they count against the config budget. `variant`
/// changes the first padding byte so that consecutive headers differ.
pub fn padded_sequence_header(real: &[u8], padding: usize, variant: u8) -> Bytes {
    let mut out = BytesMut::from(real);
    out.put_bytes(variant, padding.min(1));
    out.put_bytes(0, padding.saturating_sub(1));
    out.freeze()
}

/// An AVC coded frame body of `len` NAL bytes (one length-prefixed slice NAL).
pub fn avc_frame(keyframe: bool, len: usize) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 0x01, 0, 0, 0]);
    out.put_u32(len as u32);
    out.put_u8(if keyframe { 0x65 } else { 0x41 });
    out.put_bytes(0x88, len.saturating_sub(1));
    out.freeze()
}

/// Peak VmRSS of this process, sampled every 200 ms on a thread until the returned guard
/// is stopped.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<u64>>>,
}

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

impl RssSampler {
    /// Starts sampling.
    pub fn start() -> RssSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                samples.push(rss_kib());
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        });
        RssSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns the samples (KiB).
    pub fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default()
    }
}

/// Raises this process's open-file soft limit to its hard limit (1000 idle connections
/// plus the server's own sockets need more than the usual 1024); returns the new limit.
pub fn raise_nofile_limit() -> u64 {
    #[repr(C)]
    struct RLimit {
        cur: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: i32, rlim: *mut RLimit) -> i32;
        fn setrlimit(resource: i32, rlim: *const RLimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7; // Linux
    let mut l = RLimit { cur: 0, max: 0 };
    // SAFETY: plain libc calls on a local struct laid out as `struct rlimit` on 64-bit Linux.
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut l) == 0 && l.cur < l.max {
            let raised = RLimit {
                cur: l.max,
                max: l.max,
            };
            if setrlimit(RLIMIT_NOFILE, &raised) == 0 {
                l.cur = l.max;
            }
        }
    }
    l.cur
}

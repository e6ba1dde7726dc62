//! Load generator for LL-HLS blocking playlist requests: holds N (default 10,000)
//! concurrent `_HLS_msn` requests against a real packgate process, reports the server's
//! RSS before and while they are held, then unpublishes and times their release.
//!
//! `cargo bench --bench held_requests [-- N] [--proto h1|https1|h2] [--conns C]`:
//! `h1` (the default) is plain HTTP/1.1, one connection per request; `https1` is HTTP/1.1
//! over TLS, one connection per request; `h2` is HTTP/2 over TLS, the requests spread
//! over C connections (default 300; at most 256 streams each). Needs ffmpeg 9 (`pip
//! install imageio-ffmpeg`) and a file descriptor limit above N (`ulimit -n`).

#[path = "../tests/common/tls.rs"]
mod tls_client;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How the held requests reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    /// Plain HTTP/1.1, a connection per request.
    H1,
    /// HTTP/1.1 over TLS, a connection per request.
    Https1,
    /// HTTP/2 over TLS, many requests per connection.
    H2,
}

struct Args {
    n: usize,
    proto: Proto,
    conns: usize,
}

fn args() -> Args {
    let mut out = Args {
        n: 10_000,
        proto: Proto::H1,
        conns: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--proto" => {
                out.proto = match it.next().as_deref() {
                    Some("h1") => Proto::H1,
                    Some("https1") => Proto::Https1,
                    Some("h2") => Proto::H2,
                    other => panic!("--proto h1|https1|h2, not {other:?}"),
                }
            }
            "--conns" => out.conns = it.next().and_then(|c| c.parse().ok()).expect("--conns C"),
            other => {
                if let Ok(n) = other.parse() {
                    out.n = n;
                }
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

/// One held request over `proto`: its status and body.
type Held = tokio::task::JoinHandle<Option<(u16, String)>>;

fn main() {
    let Args { n, proto, conns } = args();
    let (rtmp, http, https) = (free_port(), free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("packgate-held-{}", std::process::id()));
    let (cert, key) = tls_client::self_signed(&dir, "bench");
    let cfg = dir.join("packgate.toml");
    // A long target duration keeps requests held (3 × target) while they are opened; the
    // connection caps (8192, 1024 per IP by default) are raised above N, all from loopback.
    let cap = n + 100;
    std::fs::write(
        &cfg,
        format!(
            "[rtmp]
listen = \"127.0.0.1:{rtmp}\"
[http]
listen = \"127.0.0.1:{http}\"
max_connections = {cap}
max_connections_per_ip = {cap}
[segment]
target_duration = 10.0
linger = 0.5
[tls]
cert = {cert:?}
key = {key:?}
https_listen = \"127.0.0.1:{https}\"
"
        ),
    )
    .expect("write config");
    let server = Kill(
        Command::new(env!("CARGO_BIN_EXE_packgate"))
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start packgate"),
    );
    let ffmpeg = String::from_utf8(
        Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())",
            ])
            .output()
            .expect("python3")
            .stdout,
    )
    .expect("utf8");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/h264_aac_640x360.flv");
    let publisher = Kill(
        Command::new(ffmpeg.trim())
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i", sample])
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{rtmp}/live/held"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg (pip install imageio-ffmpeg)"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], http).into();
    let tls_addr: SocketAddr = ([127, 0, 0, 1], https).into();
    let pid = server.0.id();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let playlist = "/live/held/src/video.m3u8";
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok((200, t)) = get(addr, playlist).await {
                break t;
            }
            assert!(Instant::now() < deadline, "stream never came up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Freeze the encoder: nothing new comes, so every request below stays held.
        let _ = Command::new("kill")
            .args(["-STOP", &publisher.0.id().to_string()])
            .status();
        let msn: u64 = text
            .lines()
            .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .filter_map(|l| l.rsplit('/').next()?.strip_suffix(".m4s")?.parse().ok())
            .max()
            .expect("a segment");
        let before = rss_kib(pid);
        let path = format!("{playlist}?_HLS_msn={}", msn + 2);
        let opened = Instant::now();
        let tasks = match proto {
            Proto::H1 => open_h1(addr, &path, n),
            Proto::Https1 => open_https1(tls_addr, &path, n),
            Proto::H2 => {
                let connections = connect_h2(tls_addr, conns).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                let connected = rss_kib(pid);
                println!(
                    "{conns} HTTP/2 connections idle: server RSS {:+.1} MiB ({:.1} KiB per connection)",
                    (connected as f64 - before as f64) / 1024.0,
                    (connected as f64 - before as f64) / conns as f64
                );
                open_h2(&connections, &path, n)
            }
        };
        // Let every request reach the server and park (TLS handshakes take a while).
        let parked = parked(addr, n, Duration::from_secs(25)).await;
        let took = opened.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let held = rss_kib(pid);
        println!(
            "{n} requests ({proto:?}{}) opened, {parked} held after {took:.2} s; server RSS {:.1} MiB before, {:.1} MiB while held ({:+.1} MiB, {:.1} KiB per request)",
            if proto == Proto::H2 { format!(" on {conns} connections") } else { String::new() },
            before as f64 / 1024.0,
            held as f64 / 1024.0,
            (held as f64 - before as f64) / 1024.0,
            (held as f64 - before as f64) / n as f64
        );
        // Unpublish: the encoder dies, its connection closes, the stream ends once the
        // 0.5 s linger passes without a reconnect (included in the time printed).
        let released = Instant::now();
        drop(publisher);
        let mut ok = 0;
        let mut ended = 0;
        for t in tasks {
            if let Ok(Some((status, text))) = t.await {
                ok += usize::from(status == 200);
                ended += usize::from(text.contains("#EXT-X-ENDLIST"));
            }
        }
        println!(
            "unpublish released them in {:.2} s (incl. the 0.5 s linger): {ok} answered 200, {ended} with EXT-X-ENDLIST",
            released.elapsed().as_secs_f64()
        );
    });
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits until the server holds `n` requests (its `packgate_http_held_requests` gauge) or
/// `limit` passes; returns how many it holds.
async fn parked(addr: SocketAddr, n: usize, limit: Duration) -> usize {
    let end = Instant::now() + limit;
    loop {
        let held = match get(addr, "/metrics").await {
            Ok((_, text)) => text
                .lines()
                .find_map(|l| l.strip_prefix("packgate_http_held_requests "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as usize,
            Err(_) => 0,
        };
        if held >= n || Instant::now() >= end {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn open_h1(addr: SocketAddr, path: &str, n: usize) -> Vec<Held> {
    (0..n)
        .map(|_| {
            let path = path.to_string();
            tokio::spawn(async move { get(addr, &path).await.ok() })
        })
        .collect()
}

fn open_https1(addr: SocketAddr, path: &str, n: usize) -> Vec<Held> {
    (0..n)
        .map(|_| {
            let path = path.to_string();
            tokio::spawn(async move {
                let (status, body) = match tls_client::h1_get(addr, &path).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("HTTPS/1.1 request failed: {e}");
                        return None;
                    }
                };
                Some((status, String::from_utf8_lossy(&body).into_owned()))
            })
        })
        .collect()
}

async fn connect_h2(addr: SocketAddr, conns: usize) -> Vec<h2::client::SendRequest<bytes::Bytes>> {
    let mut out = Vec::with_capacity(conns);
    for _ in 0..conns {
        out.push(tls_client::h2_connect(addr).await);
    }
    out
}

fn open_h2(
    connections: &[h2::client::SendRequest<bytes::Bytes>],
    path: &str,
    n: usize,
) -> Vec<Held> {
    (0..n)
        .map(|i| {
            let mut send = connections[i % connections.len()].clone();
            let path = path.to_string();
            tokio::spawn(async move {
                let (status, body) = tls_client::h2_get(&mut send, &path).await.ok()?;
                Some((status, String::from_utf8_lossy(&body).into_owned()))
            })
        })
        .collect()
}

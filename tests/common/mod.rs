//! Shared helpers for the end-to-end tests: a running gateway on free loopback ports,
//! real ffmpeg publishers, and a minimal HTTP client.
#![allow(dead_code)]

pub mod binary;
pub mod browser;
pub mod http;
pub mod mp4;
pub mod nginx;
pub mod retime;
pub mod sources;
pub mod tls;
pub mod tools;
pub mod watch;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use packgate::config::Config;
use packgate::server::Server;

/// A loopback port free now, for a server the test starts as a child process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config on free loopback ports with a short linger, for tests.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c
}

/// Starts the gateway on a fresh runtime thread pool and returns it with the runtime.
pub fn start(config: Config) -> (tokio::runtime::Runtime, Server) {
    start_with_workers(config, 2)
}

/// Like [`start`], on a runtime of `workers` threads (for concurrency tests).
pub fn start_with_workers(config: Config, workers: usize) -> (tokio::runtime::Runtime, Server) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = rt.block_on(Server::start(config)).expect("server starts");
    (rt, server)
}

/// Path of a file in `samples/`.
pub fn sample(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    assert!(p.exists(), "missing sample {}", p.display());
    p
}

/// A continuous H.264 (with B-frames, 2 s GOP) + AAC FLV of `secs` seconds, made once per
/// build directory with ffmpeg: long enough to publish without `-stream_loop`, whose loop
/// points carry timestamp jumps that are the encoder's artefact, not the stream under test.
pub fn long_sample(secs: u32) -> PathBuf {
    long_sample_sized(secs, (640, 360), "800k")
}

/// Like [`long_sample`], at `size` and video bitrate `bitrate` (ladder rungs).
pub fn long_sample_sized(secs: u32, size: (u32, u32), bitrate: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (w, h) = size;
    let name = if size == (640, 360) && bitrate == "800k" {
        format!("long_{secs}s")
    } else {
        format!("long_{secs}s_{h}p_{bitrate}")
    };
    let path = dir.join(format!("{name}.flv"));
    if path.exists() {
        return path;
    }
    // Unique per thread too: tests of one binary may make the same sample at once.
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("{name}.{}.{n}.tmp.flv", std::process::id()));
    let status = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={w}x{h}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-bf",
            "2",
            "-b:v",
            bitrate,
        ])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&partial)
        .status()
        .expect("run ffmpeg to make a long sample");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    std::fs::rename(&partial, &path).expect("rename long sample");
    path
}

/// A child process that is killed when dropped, so a failing test never leaks ffmpeg.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends `signal` (e.g. `STOP`, `CONT`) with kill(1); returns whether it was delivered.
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits up to `limit` for the process to exit; returns its success.
    pub fn wait_for(&mut self, limit: Duration) -> Option<bool> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Publishes `sample` to `rtmp://addr/app/name` in real time with ffmpeg 9, copying codecs.
/// `loops` = -1 loops forever (until the returned guard is dropped).
pub fn publish(
    rtmp: std::net::SocketAddr,
    app: &str,
    name: &str,
    sample: &std::path::Path,
    loops: i32,
) -> Proc {
    let ffmpeg = tools::ffmpeg();
    let child = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-stream_loop", &loops.to_string()])
        .arg("-i")
        .arg(sample)
        .args(["-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/{app}/{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    Proc(child)
}

/// Publishes like [`publish`] and waits (20 s at most) until `path` answers 200.
pub fn publish_and_wait(
    server: &Server,
    name: &str,
    sample_file: &str,
    loops: i32,
    path: &str,
) -> Proc {
    let p = publish(server.rtmp_addr, "live", name, &sample(sample_file), loops);
    let http = server.http_addr;
    poll(Duration::from_secs(20), || {
        http::get(http, path).ok().filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("{path} never became available"));
    p
}

/// Polls `f` every 100 ms until it returns `Some` or `limit` passes.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

//! Load generator for LL-HLS blocking playlist requests: holds N (default 10,000)
//! concurrent `_HLS_msn` requests against a real packgate process, reports the server's
//! RSS before and while they are held, then unpublishes and times their release.
//!
//! `cargo bench --bench held_requests [-- N]`. Needs ffmpeg 9 (`pip install
//! imageio-ffmpeg`) and a file descriptor limit above N (`ulimit -n`).

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

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let (rtmp, http) = (free_port(), free_port());
    let cfg = std::env::temp_dir().join(format!("packgate-held-{}.toml", std::process::id()));
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
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let path = path.clone();
            tasks.push(tokio::spawn(async move { get(addr, &path).await }));
        }
        // Let every request reach the server and park.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let held = rss_kib(pid);
        println!(
            "{n} requests opened in {:.2} s; server RSS {:.1} MiB before, {:.1} MiB while held ({:+.1} MiB, {:.1} KiB per request)",
            opened.elapsed().as_secs_f64() - 3.0,
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
            if let Ok(Ok((status, text))) = t.await {
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
    let _ = std::fs::remove_file(cfg);
}

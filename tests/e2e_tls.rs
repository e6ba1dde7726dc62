//! Issue 15 part 0 end to end: RTMPS ingest from ffmpeg, HTTPS with HTTP/2 and HTTP/1.1
//! chosen by ALPN (checked with our client and with curl), an LL-HLS blocking reload held
//! over HTTP/2, the certificate swapped by SIGHUP on the real binary (a broken file keeps
//! the old one), TLS handshake deadlines, and plain HTTP/1.1 beside it all.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::get;
use common::tls::{self as client, h1_get, h2_connect, h2_get, pem_fingerprint, self_signed};
use common::{binary, poll, sample, start, test_config, tools, Proc};
use packgate::config::Config;

/// A fresh directory for one test's certificates.
fn cert_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e_tls_{test}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test config with RTMPS and HTTPS on free ports and a new self-signed certificate.
fn tls_config(dir: &Path) -> Config {
    let mut c = test_config();
    let (cert, key) = self_signed(dir, "server");
    c.tls.cert = cert;
    c.tls.key = key;
    c.tls.rtmps_listen = Some("127.0.0.1:0".parse().unwrap());
    c.tls.https_listen = Some("127.0.0.1:0".parse().unwrap());
    c
}

/// ffmpeg publishing the sample in a loop to `rtmps://localhost:port/live/{name}`. ffmpeg 9
/// verifies the server's certificate: it is given the self-signed one as its CA.
fn publish_rtmps(addr: SocketAddr, config: &Config, name: &str) -> Proc {
    let child = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(sample("h264_aac_640x360.flv"))
        .args(["-c", "copy", "-ca_file"])
        .arg(&config.tls.cert)
        .args(["-f", "flv"])
        .arg(format!("rtmps://localhost:{}/live/{name}", addr.port()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    Proc(child)
}

/// Waits (20 s at most) until `path` answers 200 over plain HTTP.
fn wait_for(http: SocketAddr, path: &str) {
    poll(Duration::from_secs(20), || {
        get(http, path).ok().filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("{path} never became available over plain HTTP"));
}

/// Full segment URIs (`N.m4s`) of a media playlist with their sequence numbers.
fn segments(playlist: &str) -> Vec<(u64, String)> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && l.ends_with(".m4s"))
        .filter_map(|l| {
            let n = l.rsplit('/').next()?.strip_suffix(".m4s")?.parse().ok()?;
            Some((n, l.to_string()))
        })
        .collect()
}

/// `curl -k` over HTTPS with `flag` (`--http2`, `--http1.1`): the HTTP version it used.
fn curl_version(https: SocketAddr, flag: &str, path: &str) -> String {
    let out = Command::new(tools::curl())
        .args(["-k", "-s", "-f", "--max-time", "10", flag])
        .args(["-o", "/dev/null", "-w", "%{http_version}"])
        .arg(format!("https://127.0.0.1:{}{path}", https.port()))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {flag} {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rtmps_publish_plays_over_https_h2_and_http11_and_plain_http() {
    let dir = cert_dir("play");
    let config = tls_config(&dir);
    let (rt, server) = start(config.clone());
    let (http, https) = (server.http_addr, server.https_addr.expect("HTTPS bound"));
    let _encoder = publish_rtmps(server.rtmps_addr.expect("RTMPS bound"), &config, "show");
    let media = "/live/show/src/video.m3u8";
    // Plain HTTP/1.1 is unchanged beside the TLS listeners.
    wait_for(http, media);
    let plain_master = get(http, "/live/show/index.m3u8").unwrap();
    assert_eq!(plain_master.status, 200);
    assert!(plain_master.text().contains("#EXT-X-STREAM-INF"));
    // Independent clients: curl negotiates h2 by ALPN, or HTTP/1.1 when told to.
    assert_eq!(curl_version(https, "--http2", "/live/show/index.m3u8"), "2");
    assert_eq!(
        curl_version(https, "--http1.1", "/live/show/index.m3u8"),
        "1.1"
    );
    rt.block_on(async {
        let mut h2 = h2_connect(https).await;
        let (status, master) = h2_get(&mut h2, "/live/show/index.m3u8").await.unwrap();
        assert_eq!(status, 200);
        let master = String::from_utf8_lossy(&master).into_owned();
        assert!(master.contains("#EXT-X-STREAM-INF"), "{master}");
        assert!(master.contains("src/video.m3u8"), "{master}");
        let (status, playlist) = h2_get(&mut h2, media).await.unwrap();
        assert_eq!(status, 200);
        let playlist = String::from_utf8_lossy(&playlist).into_owned();
        let (_, uri) = segments(&playlist).pop().expect("a segment listed");
        let path = format!("/live/show/src/{uri}");
        let (status, over_h2) = h2_get(&mut h2, &path).await.unwrap();
        assert_eq!(status, 200);
        assert!(
            over_h2.len() > 10_000,
            "a segment of {} bytes",
            over_h2.len()
        );
        assert!(
            matches!(&over_h2[4..8], b"styp" | b"moof"),
            "a CMAF segment"
        );
        // The same bytes over HTTPS with HTTP/1.1 and over plain HTTP.
        let (status, over_h1) = h1_get(https, &path).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(over_h1, over_h2.to_vec());
        let plain = tokio::task::spawn_blocking(move || get(http, &path).unwrap())
            .await
            .unwrap();
        assert_eq!(plain.body, over_h2.to_vec());
        // Many requests multiplexed on the one HTTP/2 connection.
        let answers = futures_util::future::join_all((0..32).map(|_| {
            let mut h2 = h2.clone();
            async move { h2_get(&mut h2, "/live/show/index.m3u8").await }
        }))
        .await;
        assert!(answers.iter().all(|a| matches!(a, Ok((200, _)))));
    });
}

#[test]
fn ll_hls_blocking_reload_over_h2_is_held_until_the_segment_arrives() {
    let dir = cert_dir("blocking");
    let config = tls_config(&dir);
    let (rt, server) = start(config.clone());
    let https = server.https_addr.unwrap();
    let _encoder = publish_rtmps(server.rtmps_addr.unwrap(), &config, "ll");
    let media = "/live/ll/src/video.m3u8";
    wait_for(server.http_addr, media);
    rt.block_on(async {
        let mut h2 = h2_connect(https).await;
        let (_, now) = h2_get(&mut h2, media).await.unwrap();
        let now = String::from_utf8_lossy(&now).into_owned();
        let (last, _) = segments(&now).pop().expect("a segment");
        let next = last + 1;
        // Segment `next` does not exist yet: the request is held until it is complete.
        // Twenty of them share the one connection.
        let asked = Instant::now();
        let path = format!("{media}?_HLS_msn={next}");
        let held = futures_util::future::join_all((0..20).map(|_| {
            let (mut h2, path) = (h2.clone(), path.clone());
            async move {
                let answer = h2_get(&mut h2, &path).await;
                (answer, asked.elapsed())
            }
        }));
        // Meanwhile the connection still answers other requests at once.
        let quick = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t = Instant::now();
            let (status, _) = h2_get(&mut h2.clone(), "/live/ll/index.m3u8")
                .await
                .unwrap();
            (status, t.elapsed())
        };
        let (held, (status, quick_took)) = tokio::join!(held, quick);
        assert_eq!(status, 200);
        assert!(quick_took < Duration::from_millis(500), "{quick_took:?}");
        let mut longest = Duration::ZERO;
        for (answer, took) in held {
            longest = longest.max(took);
            let (status, body) = answer.expect("answered");
            assert_eq!(status, 200);
            let text = String::from_utf8_lossy(&body);
            assert!(
                segments(&text).iter().any(|(n, _)| *n == next),
                "the answer lists segment {next}:\n{text}"
            );
            assert!(
                took > Duration::from_millis(50) && took < Duration::from_secs(6),
                "held for {took:?}"
            );
        }
        eprintln!("20 blocking reloads for segment {next} answered over h2 within {longest:?}");
        // Drain: a request held on an HTTP/2 connection is answered at once with what exists.
        let (_, now) = h2_get(&mut h2, media).await.unwrap();
        let (last, _) = segments(&String::from_utf8_lossy(&now)).pop().unwrap();
        let path = format!("{media}?_HLS_msn={}", last + 2);
        let held = tokio::spawn(async move {
            let answer = h2_get(&mut h2, &path).await;
            (answer, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let draining = Instant::now();
        server.shutdown().await;
        let (answer, at) = held.await.unwrap();
        let (status, _) = answer.expect("held request answered during the drain");
        assert_eq!(status, 200);
        let took = at.duration_since(draining);
        assert!(
            took < Duration::from_secs(1),
            "answered {took:?} into the drain"
        );
    });
}

#[test]
fn h2_connections_without_requests_are_closed() {
    let dir = cert_dir("idle");
    let mut config = tls_config(&dir);
    config.http.head_timeout = 0.5;
    config.http.keepalive_timeout = 1.0;
    let (rt, server) = start(config);
    let https = server.https_addr.unwrap();
    rt.block_on(async {
        // A connection that never sends a request: closed at the head timeout.
        let tls = client::connect(https, &[b"h2"]).await.unwrap();
        let (_send, connection) = h2::client::handshake(tls).await.unwrap();
        let t = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
        assert!(closed.is_ok(), "still open after 5 s");
        let took = t.elapsed();
        assert!(took < Duration::from_secs(2), "closed after {took:?}");
        // One that made a request: closed a keep-alive timeout after it was answered.
        let tls = client::connect(https, &[b"h2"]).await.unwrap();
        let (send, connection) = h2::client::handshake(tls).await.unwrap();
        let connection = tokio::spawn(connection);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _) = h2_get(&mut send.clone(), "/time").await.unwrap();
        assert_eq!(status, 200);
        let t = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
        assert!(closed.is_ok(), "idle connection still open after 5 s");
        let took = t.elapsed();
        assert!(
            took > Duration::from_millis(700) && took < Duration::from_millis(2500),
            "closed {took:?} after its last request"
        );
    });
    poll(Duration::from_secs(3), || {
        (server.http_connections() == 0).then_some(())
    })
    .expect("connection slots released");
}

/// The real binary with `config`, its HTTPS address, and its later log lines.
fn spawn_binary(dir: &Path, config: &str) -> (Proc, SocketAddr, mpsc::Receiver<String>) {
    let file = dir.join("packgate.toml");
    std::fs::write(&file, config).unwrap();
    let (proc, logs) = binary::spawn(&file);
    let seen = binary::until_listening(&logs);
    let https = binary::addr(seen.last().unwrap(), "https_addr").expect("HTTPS address logged");
    (proc, https, logs)
}

/// Waits (5 s at most) for a log line containing `text`.
fn wait_log(logs: &mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(line) = logs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains(text) {
            return line;
        }
    }
    panic!("no log line with {text:?}");
}

#[test]
fn sighup_swaps_the_certificate_and_a_broken_file_keeps_the_old_one() {
    let dir = cert_dir("sighup");
    let (cert, key) = self_signed(&dir, "live");
    let config = format!(
        "[rtmp]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = {cert:?}\nkey = {key:?}\nhttps_listen = \"127.0.0.1:0\"\n"
    );
    let (server, https, logs) = spawn_binary(&dir, &config);
    let first = pem_fingerprint(&cert);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let tls = client::connect(https, &[b"h2"]).await.expect("TLS connect");
            client::peer_fingerprint(&tls)
        })
    };
    assert_eq!(seen(&rt), first);
    // An HTTP/2 connection made before the swap.
    let mut before = rt.block_on(h2_connect(https));
    // New files in place (renamed over, as certificate tools do), then SIGHUP.
    let (new_cert, new_key) = self_signed(&dir, "next");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    let second = pem_fingerprint(&cert);
    assert_ne!(first, second);
    assert!(server.signal("HUP"), "kill -HUP");
    let line = wait_log(&logs, "TLS certificate reloaded");
    assert!(line.contains(&second), "{line}");
    assert_eq!(
        seen(&rt),
        second,
        "a new connection gets the new certificate"
    );
    // The old connection goes on.
    let (status, _) = rt.block_on(h2_get(&mut before, "/time")).unwrap();
    assert_eq!(status, 200);
    // A broken certificate file: the reload fails, logs why, and the last good one stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    assert!(server.signal("HUP"), "kill -HUP");
    let line = wait_log(&logs, "reload failed");
    assert!(line.contains("ERROR"), "{line}");
    assert_eq!(seen(&rt), second, "the old certificate is kept");
    // A key that is not the certificate's: refused the same way.
    let (other_cert, _) = self_signed(&dir, "other");
    std::fs::copy(&other_cert, &cert).unwrap();
    assert!(server.signal("HUP"), "kill -HUP");
    wait_log(&logs, "reload failed");
    assert_eq!(seen(&rt), second);
    // Still serving, and SIGTERM still stops it.
    let (status, _) = rt.block_on(h1_get(https, "/time")).unwrap();
    assert_eq!(status, 200);
    let mut server = server;
    assert!(server.signal("TERM"));
    assert_eq!(server.wait_for(Duration::from_secs(10)), Some(true));
}

#[test]
fn tls_handshakes_have_a_deadline_and_plain_bytes_are_refused() {
    use std::io::{Read, Write};
    let dir = cert_dir("deadline");
    let mut config = tls_config(&dir);
    config.tls.handshake_timeout = 0.5;
    let (_rt, server) = start(config);
    for addr in [server.rtmps_addr.unwrap(), server.https_addr.unwrap()] {
        // Silent after connecting: closed at the handshake deadline.
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let t = Instant::now();
        let mut buf = [0u8; 64];
        assert!(matches!(silent.read(&mut buf), Ok(0) | Err(_)));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{addr}: closed after {took:?}"
        );
        // Plain bytes where TLS is expected: closed at once.
        let mut plain = std::net::TcpStream::connect(addr).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let t = Instant::now();
        let mut rest = Vec::new();
        let _ = plain.read_to_end(&mut rest);
        assert!(t.elapsed() < Duration::from_millis(400), "{addr}");
        assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"));
    }
    // The caps still count: connections are released (nothing leaks past the deadline).
    poll(Duration::from_secs(3), || {
        (server.http_connections() == 0).then_some(())
    })
    .expect("HTTPS connections released");
    let metrics = get(server.http_addr, "/metrics").unwrap().text();
    assert!(
        metrics.contains(
            "packgate_tls_handshake_failures_total{listener=\"https\",reason=\"timeout\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("listener=\"rtmps\",reason=\"failed\""),
        "{metrics}"
    );
}

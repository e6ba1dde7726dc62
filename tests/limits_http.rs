//! Issue 10 on the HTTP port: connection caps (global and per IP), the request-head
//! deadline against slowloris, the write deadline against clients that never read,
//! HTTP/1.0 framing of a response of unknown length, app names reserved for routes, and
//! the SIGTERM drain of the real binary.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::get;
use common::{binary, poll, publish, publish_and_wait, sample, start, test_config, Proc};

/// A TCP connection to `to` from the local address `from` (any of 127.0.0.0/8 is this
/// host), so one test can be several client IPs.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the addresses are
    // valid sockaddr_in values that outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(from, 0);
        let r = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*to.ip(), to.port());
        let r = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "connect {to}: {}", std::io::Error::last_os_error());
        stream
    }
}

/// Everything the server sends until it closes (or 5 s pass).
fn read_all(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One request and its whole response (`Connection: close`).
fn exchange(s: &mut TcpStream, path: &str) -> String {
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_all(s)
}

#[test]
fn caps_refuse_at_once_and_another_ip_still_gets_in() {
    let mut config = test_config();
    config.http.max_connections = 12;
    config.http.max_connections_per_ip = 5;
    let (_rt, server) = start(config);
    let http = server.http_addr;
    let local = Ipv4Addr::new(127, 0, 0, 1);
    // Five idle connections take 127.0.0.1's share.
    let idle: Vec<TcpStream> = (0..5).map(|_| connect_from(local, http)).collect();
    poll(Duration::from_secs(5), || {
        (server.http_connections() == 5).then_some(())
    })
    .expect("five connections held");
    let t = Instant::now();
    let refused = read_all(&mut connect_from(local, http));
    let refused_in = t.elapsed();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("per-IP connection limit"), "{refused}");
    assert!(refused_in < Duration::from_secs(2), "took {refused_in:?}");
    // Another address is served meanwhile.
    let other = exchange(
        &mut connect_from(Ipv4Addr::new(127, 0, 0, 2), http),
        "/time",
    );
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    // The global cap: 5 + 7 from other addresses fill it; the next is refused.
    let more: Vec<TcpStream> = (0..7u8)
        .map(|i| connect_from(Ipv4Addr::new(127, 0, 1, i + 1), http))
        .collect();
    poll(Duration::from_secs(5), || {
        (server.http_connections() == 12).then_some(())
    })
    .expect("twelve connections held");
    let full = read_all(&mut connect_from(Ipv4Addr::new(127, 0, 2, 1), http));
    assert!(full.starts_with("HTTP/1.1 503"), "{full}");
    assert!(full.contains("connection limit reached (12)"), "{full}");
    // Closing connections frees their slots: 127.0.0.1 gets in again.
    drop(idle);
    drop(more);
    poll(Duration::from_secs(5), || {
        (server.http_connections() == 0).then_some(())
    })
    .expect("slots released");
    let again = exchange(&mut connect_from(local, http), "/time");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    let metrics = get(http, "/metrics").unwrap().text();
    assert!(
        metrics.contains("packgate_http_refused_total{reason=\"max_connections_per_ip\"}"),
        "{metrics}"
    );
}

#[test]
fn slowloris_connections_are_cut_at_the_head_deadline_and_gets_are_served() {
    // Each connection is two descriptors in this process (client and server side).
    let raised = packgate::fdlimit::raise().expect("raise the open-file limit");
    let n = 2000.min((raised.after.saturating_sub(256) / 2) as usize);
    assert!(
        n >= 500,
        "the open-file hard limit ({}) is too low for this test",
        raised.after
    );
    let mut config = test_config();
    config.http.head_timeout = 1.0;
    config.http.max_connections_per_ip = 0; // all from 127.0.0.1: the deadline is under test
    let (_rt, server) = start(config);
    let http = server.http_addr;
    let opened = Instant::now();
    // One that sends a request line and then nothing: it gets a 408 at the deadline.
    let mut stalled = TcpStream::connect(http).unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut peak = 0;
    let mut slow: Vec<TcpStream> = (0..n)
        .map(|i| {
            let mut s = TcpStream::connect(http).expect("connect");
            s.write_all(b"G").unwrap();
            if i % 100 == 99 {
                peak = peak.max(server.http_connections());
            }
            s
        })
        .collect();
    eprintln!(
        "{n} slow connections opened in {:?}; at most {peak} open on the server at once",
        opened.elapsed(),
    );
    assert!(
        peak >= n / 4,
        "only {peak} of {n} slow connections held at once"
    );
    // One header byte per second per connection, for longer than the head deadline.
    let (done_tx, done_rx) = mpsc::channel();
    let trickle = std::thread::spawn(move || {
        let head = b"ET / HTTP/1.1\r\nX-A: b";
        for byte in head.iter().take(4) {
            std::thread::sleep(Duration::from_secs(1));
            for s in &mut slow {
                let _ = s.write_all(&[*byte]);
            }
        }
        let _ = done_tx.send(());
        slow
    });
    // Meanwhile a normal request is answered.
    let t = Instant::now();
    let r = get(http, "/time").expect("GET during the slowloris");
    assert_eq!(r.status, 200);
    eprintln!("GET /time under {n} slow connections: {:?}", t.elapsed());
    // All slow connections are closed by the server, long before their heads could end.
    let closed = poll(Duration::from_secs(8), || {
        (server.http_connections() == 0).then(|| opened.elapsed())
    });
    done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    drop(trickle.join().unwrap());
    let closed = closed.unwrap_or_else(|| {
        panic!(
            "{} connections still open after 8 s",
            server.http_connections()
        )
    });
    eprintln!("{n} slowloris connections closed {closed:?} after opening");
    let text = read_all(&mut stalled);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // Every one of them was accepted and cut by the head deadline (no other test in this
    // binary makes head timeouts).
    let metrics = get(http, "/metrics").unwrap().text();
    let cut: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("packgate_http_closed_total{reason=\"head_timeout\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no head_timeout count in {metrics}"));
    assert!(
        cut >= (n + 1) as f64,
        "only {cut} closed at the head deadline"
    );
}

#[test]
fn a_client_that_never_reads_is_closed_after_the_write_timeout() {
    let mut config = test_config();
    config.http.write_timeout = 1.0;
    let (_rt, server) = start(config);
    let http = server.http_addr;
    let size = get(http, "/vendor/hls.min.js").unwrap().body.len();
    // Pipelined requests for the player script, never read: far more than socket buffers.
    let mut client = TcpStream::connect(http).unwrap();
    let count = 40;
    let requests = "GET /vendor/hls.min.js HTTP/1.1\r\nHost: t\r\n\r\n".repeat(count);
    client.write_all(requests.as_bytes()).unwrap();
    let sent = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.http_connections(), 1, "held while writing");
    let gone = poll(Duration::from_secs(10), || {
        (server.http_connections() == 0).then(|| sent.elapsed())
    })
    .expect("the server closes the connection");
    eprintln!("never-reading client closed {gone:?} after its requests (write_timeout 1 s)");
    // What the client then gets is cut short: the connection ended before all responses.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(
        received < count * size,
        "all {count} responses arrived ({received} bytes): the server never gave up"
    );
    let metrics = get(http, "/metrics").unwrap().text();
    assert!(
        metrics.contains("packgate_http_closed_total{reason=\"write_timeout\"}"),
        "{metrics}"
    );
}

/// The number of the last finished segment a media playlist lists.
fn last_segment(playlist: &str) -> u64 {
    playlist
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.is_empty())
        .and_then(|l| l.rsplit('/').next())
        .and_then(|f| f.strip_suffix(".m4s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no segment in {playlist}"))
}

#[test]
fn http10_gets_the_growing_segment_close_delimited_not_chunked() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _p = publish_and_wait(
        &server,
        "old",
        "h264_aac_640x360.flv",
        -1,
        "/live/old/src/video.m3u8",
    );
    let playlist = get(http, "/live/old/src/video.m3u8").unwrap().text();
    let growing = last_segment(&playlist) + 1;
    let path = format!("/live/old/src/video/{growing}.m4s");
    // What nginx's proxy_pass sends by default.
    let mut s = TcpStream::connect(http).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the server closes after the body");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split..];
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    // The body is the finished segment, byte for byte (no chunk framing inside it).
    let done = get(http, &path).unwrap();
    assert_eq!(done.status, 200);
    assert_eq!(body.len(), done.body.len());
    assert!(body == done.body.as_slice(), "HTTP/1.0 body differs");
    assert!(common::mp4::find(body, b"moof").is_some());
    // HTTP/1.0 asking for keep-alive on a known length keeps the connection.
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /time HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    let mut first = [0u8; 1024];
    let n = s.read(&mut first).unwrap();
    let first = String::from_utf8_lossy(&first[..n]).to_ascii_lowercase();
    assert!(first.contains("connection: keep-alive\r\n"), "{first}");
    write!(s, "GET /time HTTP/1.0\r\n\r\n").unwrap();
    let second = read_all(&mut s);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[test]
fn route_names_are_refused_as_app_names() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let mut p = publish(
        server.rtmp_addr,
        "api",
        "x",
        &sample("h264_aac_640x360.flv"),
        0,
    );
    assert_eq!(
        p.wait_for(Duration::from_secs(20)),
        Some(false),
        "ffmpeg publishing to rtmp://…/api/x should fail"
    );
    assert!(server.hub().ladders().is_empty());
    let r = get(http, "/api/streams").unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("\"x\""), "{}", r.text());
}

/// Freezes `encoder` and asks `playlist` for the segment after the last one listed: the
/// request is held (nothing new comes). Returns the connection and the segment asked for.
fn hold(encoder: &Proc, http: SocketAddr, playlist: &str) -> (TcpStream, u64) {
    assert!(encoder.signal("STOP"), "kill -STOP");
    std::thread::sleep(Duration::from_millis(300));
    let msn = last_segment(&get(http, playlist).unwrap().text()) + 1;
    let mut held = TcpStream::connect(http).unwrap();
    write!(
        held,
        "GET {playlist}?_HLS_msn={msn} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    (held, msn)
}

/// The real binary on free ports. Its log lines up to the "listening" one are returned;
/// later ones arrive on the channel.
fn spawn_binary(config: &str) -> (Proc, SocketAddr, SocketAddr, Logs) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("limits_http_{}.toml", std::process::id()));
    std::fs::write(&file, config).unwrap();
    let (proc, rx) = binary::spawn(&file);
    let seen = binary::until_listening(&rx);
    let line = seen.last().unwrap();
    let addr = |key| binary::addr(line, key).expect("address logged");
    let (rtmp, http) = (addr("rtmp_addr"), addr("http_addr"));
    (proc, rtmp, http, (seen, rx))
}

/// Log lines seen so far, and the rest to come.
type Logs = (Vec<String>, mpsc::Receiver<String>);

#[test]
fn sigterm_answers_held_requests_and_exits_within_the_drain_timeout() {
    let config = "[rtmp]\nlisten = \"127.0.0.1:0\"\n\n[http]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = 2.0\n";
    let (mut server, rtmp, http, logs) = spawn_binary(config);
    let encoder = publish(rtmp, "live", "drain", &sample("h264_aac_640x360.flv"), -1);
    let playlist = "/live/drain/src/video.m3u8";
    poll(Duration::from_secs(20), || {
        get(http, playlist).ok().filter(|r| r.status == 200)
    })
    .expect("the stream plays");
    // Freeze the encoder: the next segment never comes, so a request for it is held.
    let (mut held, _) = hold(&encoder, http, playlist);
    poll(Duration::from_secs(5), || {
        let m = get(http, "/metrics").ok()?.text();
        m.lines()
            .any(|l| l.starts_with("packgate_http_held_requests ") && !l.ends_with(" 0"))
            .then_some(())
    })
    .expect("the request is held");
    // A misbehaving client: half a request head, never finished (head_timeout is 10 s).
    let mut slow = TcpStream::connect(http).unwrap();
    slow.write_all(b"GET / HT").unwrap();
    // An idle keep-alive connection.
    let mut idle = TcpStream::connect(http).unwrap();
    write!(idle, "GET /time HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).unwrap() > 0);

    let term = Instant::now();
    assert!(server.signal("TERM"));
    let answer = read_all(&mut held);
    let answered = term.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("#EXTM3U"), "{answer}");
    let idle_closed = {
        let n = idle.read(&mut buf);
        (matches!(n, Ok(0) | Err(_)), term.elapsed())
    };
    assert!(idle_closed.0, "idle keep-alive connection closed on drain");
    // No new connections once draining.
    std::thread::sleep(Duration::from_millis(200));
    assert!(TcpStream::connect(http).is_err(), "still accepting");
    assert!(TcpStream::connect(rtmp).is_err(), "RTMP still accepting");
    let exit = server.wait_for(Duration::from_secs(6));
    let exited = term.elapsed();
    eprintln!(
        "SIGTERM: held request answered after {answered:?}, idle connection closed after {:?}, exit after {exited:?}",
        idle_closed.1
    );
    assert_eq!(exit, Some(true), "exit status 0 within the bound");
    assert!(
        exited < Duration::from_millis(3500),
        "drain_timeout is 2 s; exited after {exited:?}"
    );
    assert!(
        answered < Duration::from_secs(2),
        "held request answered only after {answered:?}"
    );
    drop(slow);
    let (mut lines, rest) = logs;
    lines.extend(rest.try_iter());
    let text = lines.join("\n");
    assert!(text.contains("shutting down"), "{text}");
    assert!(text.contains("open-file limit"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes on a pipe: {text}");
    let mut stdout = String::new();
    server
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(stdout.is_empty(), "logs on stdout: {stdout}");
}

#[test]
fn draining_answers_held_requests_with_the_current_playlist() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let encoder = publish_and_wait(
        &server,
        "held",
        "h264_aac_640x360.flv",
        -1,
        "/live/held/src/video.m3u8",
    );
    let (mut held, msn) = hold(&encoder, http, "/live/held/src/video.m3u8");
    std::thread::sleep(Duration::from_millis(500));
    // Only the hub's drain switch: the encoder stays connected, so its stream has not
    // ended and the answer can only come from the drain.
    let t = Instant::now();
    server.hub().drain().start();
    let answer = read_all(&mut held);
    let took = t.elapsed();
    encoder.signal("CONT");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("#EXTM3U"), "{answer}");
    assert!(!answer.contains("#EXT-X-ENDLIST"), "{answer}");
    assert_eq!(
        last_segment(&answer),
        msn - 1,
        "answered with the playlist as it was"
    );
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
}

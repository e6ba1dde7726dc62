//! The RTMP port under attack: every client that asks the server to hold too much, to keep
//! a slot without publishing media, or never reads is closed, logged with its reason and
//! counted, while a real ffmpeg publish keeps being served and the process's memory stays
//! bounded.

mod common;
mod rtmp_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::http::get;
use common::{poll, publish, sample, start, test_config};
use packgate::rtmp::chunk::{ChunkEncoder, RawMessage};
use packgate::rtmp::message::Message;
use rtmp_support::{
    avc_sequence_header, closed_by_server, handshake, handshaken, last_sequence, logs, publisher,
};

/// Peak resident memory of this process (server and test clients), bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kb * 1024
}

/// The value of a counter line `name{labels} value` in /metrics, 0 if absent.
fn metric(http: SocketAddr, name_and_labels: &str) -> u64 {
    let text = get(http, "/metrics").unwrap().text();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A real ffmpeg publish of `live/{name}` once its playlist answers, with the playlist.
fn good_stream(rtmp: SocketAddr, http: SocketAddr, name: &str) -> (common::Proc, String, u64) {
    let p = publish(rtmp, "live", name, &sample("h264_aac_640x360.flv"), -1);
    let playlist = format!("/live/{name}/src/video.m3u8");
    let seen = poll(Duration::from_secs(20), || last_sequence(http, &playlist))
        .unwrap_or_else(|| panic!("{name} does not play"));
    (p, playlist, seen)
}

/// Waits until `playlist` has moved past `seen`, and returns where it is.
fn keeps_playing(http: SocketAddr, playlist: &str, seen: u64, after: &str) -> u64 {
    poll(Duration::from_secs(15), || {
        last_sequence(http, playlist).filter(|s| *s > seen)
    })
    .unwrap_or_else(|| panic!("{playlist} stalled after {after}"))
}

/// Bytes of `msg` chunked at `chunk_size`.
fn chunked(msg: &RawMessage, chunk_size: usize) -> BytesMut {
    let mut enc = ChunkEncoder::default();
    enc.set_chunk_size(chunk_size);
    let mut out = BytesMut::new();
    enc.encode(msg, &mut out);
    out
}

/// Set Chunk Size, at the default chunk size.
fn set_chunk_size(size: u32) -> BytesMut {
    chunked(&Message::SetChunkSize(size).encode(0, 0), 128)
}

/// Checks the server closed `s`, logged `words` for its peer and counted `limit`.
fn refused_for(s: &mut TcpStream, peer: SocketAddr, http: SocketAddr, limit: &str) {
    assert!(
        closed_by_server(s, Duration::from_secs(10)),
        "{limit}: offender left open"
    );
    logs().wait_line(peer, &["closed", limit]);
    let counted = format!("packgate_limit_hits_total{{limit=\"{limit}\"}}");
    assert!(metric(http, &counted) >= 1, "{counted} not counted");
}

#[test]
fn memory_budgets_close_only_the_offender() {
    logs();
    let (_rt, server) = start(test_config());
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    let (_good, playlist, mut seen) = good_stream(rtmp, http, "good");

    // 1. 63 chunk streams (64 with the control stream), each declaring an 8 MiB message and
    //    sending 64 KiB chunks of it round after round: 252 MiB attempted, refused at
    //    16 MiB (limits.unfinished_bytes).
    let mut s = handshaken(rtmp);
    let peer = s.local_addr().unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&set_chunk_size(65_536)).unwrap();
    let body = vec![0x5Au8; 65_536];
    let mut sent = 0usize;
    'send: for round in 0..64 {
        for i in 0..63u8 {
            // Two-byte basic header: chunk streams 64..128.
            let header: &[u8] = if round == 0 {
                &[0x00, i, 0, 0, 0, 0x7F, 0xFF, 0xFF, 9, 1, 0, 0, 0]
            } else {
                &[0xC0, i]
            };
            if s.write_all(header)
                .and_then(|_| s.write_all(&body))
                .is_err()
            {
                break 'send;
            }
            sent += body.len();
        }
    }
    assert!(
        sent < 64 << 20,
        "server took {sent} bytes of unfinished messages"
    );
    refused_for(&mut s, peer, http, "unfinished_bytes");

    // 2. One message declared larger than limits.message_bytes (8 MiB).
    let mut s = handshaken(rtmp);
    let peer = s.local_addr().unwrap();
    s.write_all(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0])
        .unwrap();
    let _ = s.write_all(&[0u8; 1000]);
    refused_for(&mut s, peer, http, "message_bytes");

    // 3. An AMF0 command whose strict array declares (and holds) 4 million nulls: decoded,
    //    that is 128 MB of values; refused at its declared count.
    let mut s = handshaken(rtmp);
    let peer = s.local_addr().unwrap();
    let n = 4_000_000u32;
    let mut payload = vec![0x02, 0, 7];
    payload.extend_from_slice(b"connect");
    payload.push(0x00);
    payload.extend_from_slice(&1f64.to_be_bytes());
    payload.push(0x0A);
    payload.extend_from_slice(&n.to_be_bytes());
    payload.resize(payload.len() + n as usize, 0x05);
    let command = RawMessage {
        csid: 3,
        timestamp: 0,
        type_id: 20,
        stream_id: 0,
        payload: Bytes::from(payload),
    };
    s.write_all(&set_chunk_size(65_536)).unwrap();
    let _ = s.write_all(&chunked(&command, 65_536));
    refused_for(&mut s, peer, http, "amf0");
    seen = keeps_playing(http, &playlist, seen, "the chunk-level attacks");

    // 4. A 2 MiB AVC sequence header (its SPS would go in front of every TS IDR).
    let (mut s, mut client) = publisher(rtmp, "live", "bigsps");
    let peer = s.local_addr().unwrap();
    let mut record = vec![1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0xFF, 0xFF, 0x67];
    record.resize(2 << 20, 0xAB);
    let _ = s.write_all(&client.video(0, avc_sequence_header(&record)));
    refused_for(&mut s, peer, http, "config_record_bytes");

    // 5. 300 codec configuration changes (two AudioSpecificConfigs in turn).
    let (mut s, mut client) = publisher(rtmp, "live", "flip");
    let peer = s.local_addr().unwrap();
    for i in 0..300u32 {
        let asc: &'static [u8] = if i % 2 == 0 {
            &[0xAF, 0, 0x12, 0x10]
        } else {
            &[0xAF, 0, 0x11, 0x90]
        };
        if s.write_all(&client.audio(i, Bytes::from_static(asc)))
            .is_err()
        {
            break;
        }
    }
    refused_for(&mut s, peer, http, "init_versions");

    // 6. A 1 MiB stream name: refused, and logged in a short line.
    let long_name = "n".repeat(1 << 20);
    let mut s = TcpStream::connect(rtmp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut client, c0c1) =
        packgate::rtmp::client::ClientSession::new("live", &long_name, false, 65_536);
    s.write_all(&c0c1).unwrap();
    let mut buf = vec![0u8; 65_536];
    let rejected = poll(Duration::from_secs(10), || {
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        client
            .handle_input(&buf[..n])
            .unwrap()
            .into_iter()
            .find_map(|ev| match ev {
                packgate::rtmp::client::ClientEvent::Send(b) => {
                    s.write_all(&b).unwrap();
                    None
                }
                packgate::rtmp::client::ClientEvent::PublishRejected(code) => Some(code),
                _ => None,
            })
    });
    assert_eq!(rejected.as_deref(), Some("NetStream.Publish.BadName"));
    drop(s);

    seen = keeps_playing(http, &playlist, seen, "the publish-level attacks");
    keeps_playing(http, &playlist, seen, "all attacks (once more)");
    let longest = logs().text().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2000, "a log line of {longest} bytes");
    // Without the budgets the chunk streams alone would hold 252 MiB and the strict array
    // 128 MB; with them, the server with one live stream, the test's own buffers (a 4 MB
    // command, a 2 MiB header) and the other tests of this file peaked at ~30 MiB.
    let peak = peak_rss();
    eprintln!("peak RSS {} MiB", peak >> 20);
    assert!(peak < 96 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn deadlines_close_idle_and_trickling_connections() {
    logs();
    let mut config = test_config();
    config.rtmp.publish_timeout = 2.0;
    config.rtmp.idle_timeout = 2.0;
    let (_rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    // A real encoder publishes within the short deadlines.
    let (_good, playlist, seen) = good_stream(rtmp, http, "steady");

    let t0 = Instant::now();
    // A handshake and then nothing.
    let mut silent = handshaken(rtmp);
    let silent_peer = silent.local_addr().unwrap();
    // A handshake and then one byte a second of a command that never ends.
    let mut trickle = handshaken(rtmp);
    let trickle_peer = trickle.local_addr().unwrap();
    let mut trickle_writer = trickle.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let chunk = [0x03, 0, 0, 0, 0, 0x10, 0, 20, 0, 0, 0, 0, 0x02];
        for b in chunk.iter().chain(std::iter::repeat(&0x41)).take(20) {
            if trickle_writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    // A publisher that sends pings and no media.
    let (mut quiet, _client) = publisher(rtmp, "live", "quiet");
    let quiet_peer = quiet.local_addr().unwrap();
    let mut quiet_writer = quiet.try_clone().unwrap();
    let pinger = std::thread::spawn(move || {
        for t in 0..40u8 {
            let ping = [0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 6, 0, 0, 0, t];
            if quiet_writer.write_all(&ping).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });

    for (s, what) in [
        (&mut silent, "silent"),
        (&mut trickle, "trickle"),
        (&mut quiet, "quiet"),
    ] {
        assert!(
            closed_by_server(s, Duration::from_secs(6)),
            "{what} connection left open"
        );
    }
    let took = t0.elapsed();
    // Each was closed at its deadline (2 s after accept or after the publish), not later.
    assert!(took < Duration::from_secs(6), "closed after {took:?}");
    logs().wait_line(silent_peer, &["closed", "publish_timeout"]);
    logs().wait_line(trickle_peer, &["closed", "publish_timeout"]);
    logs().wait_line(quiet_peer, &["closed while publishing", "idle_timeout"]);
    let _ = (trickler.join(), pinger.join());

    // The real encoder, whose media keeps its deadline moving, is still served.
    let later = keeps_playing(http, &playlist, seen, "the deadline closes");
    keeps_playing(http, &playlist, later, "the deadline closes (once more)");
    assert!(
        logs()
            .lines_with(&["stream=steady", "closed while publishing"])
            .is_empty(),
        "the real encoder was closed"
    );
}

/// A connection to `rtmp` from the loopback address `from`.
fn connect_from(rt: &tokio::runtime::Runtime, from: &str, rtmp: SocketAddr) -> TcpStream {
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("{from}:0").parse().unwrap())
            .expect("bind a loopback source address");
        socket.connect(rtmp).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s
}

#[test]
fn per_ip_cap_refuses_that_ip_only_and_logs_refusals_at_a_bounded_rate() {
    logs();
    let mut config = test_config();
    config.rtmp.max_connections_per_ip = 3;
    let (rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);

    let mut held: Vec<TcpStream> = (0..3).map(|_| handshaken(rtmp)).collect();
    let mut fourth = TcpStream::connect(rtmp).unwrap();
    assert!(
        closed_by_server(&mut fourth, Duration::from_secs(5)),
        "the 4th connection from 127.0.0.1 was let in"
    );
    let mut other = connect_from(&rt, "127.0.0.2", rtmp);
    handshake(&mut other);
    assert!(
        !closed_by_server(&mut other, Duration::from_millis(500)),
        "127.0.0.2 was refused"
    );

    // A burst of refusals gives a line a second, not a line each.
    let t0 = Instant::now();
    for _ in 0..300 {
        let mut s = TcpStream::connect(rtmp).unwrap();
        assert!(closed_by_server(&mut s, Duration::from_secs(5)));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let mut last = TcpStream::connect(rtmp).unwrap();
    assert!(closed_by_server(&mut last, Duration::from_secs(5)));
    let secs = t0.elapsed().as_secs() + 1;
    let lines = poll(Duration::from_secs(5), || {
        let l = logs().lines_with(&["refusing RTMP connection", "max_connections_per_ip"]);
        l.iter().any(|l| !l.contains("suppressed=0")).then_some(l)
    })
    .expect("a refusal line reporting suppressed refusals");
    assert!(
        lines.len() as u64 <= secs + 1,
        "{} refusal lines in {secs} s",
        lines.len()
    );
    let refused = metric(
        http,
        "packgate_rtmp_refused_total{reason=\"max_connections_per_ip\"}",
    );
    assert!(refused >= 302, "{refused} refusals counted");

    // A freed slot lets the address in again.
    drop(held.pop());
    let mut again = poll(Duration::from_secs(5), || {
        let mut s = TcpStream::connect(rtmp).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut c0c1 = vec![3u8];
        c0c1.resize(1537, 0);
        s.write_all(&c0c1).ok()?;
        let mut s0 = [0u8; 1];
        s.read_exact(&mut s0).ok()?;
        Some(s)
    })
    .expect("127.0.0.1 let in after a slot was freed");
    let _ = again.flush();
}

#[test]
fn a_client_that_never_reads_is_closed_after_write_timeout() {
    logs();
    let mut config = test_config();
    config.rtmp.write_timeout = 1.0;
    config.rtmp.publish_timeout = 60.0;
    let (_rt, server) = start(config);
    let mut s = handshaken(server.rtmp_addr);
    let peer = s.local_addr().unwrap();
    // Ping requests, each answered with a ping response, which this client never reads:
    // once its receive buffer and the server's send buffer are full, the server's write
    // blocks. Writes go on from where the last one stopped, so the chunk stream stays whole.
    let pings: Vec<u8> = (0..3640u32)
        .flat_map(|t| {
            let t = t.to_be_bytes();
            [
                0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 6, t[0], t[1], t[2], t[3],
            ]
        })
        .collect();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut pos, mut sent) = (0usize, 0usize);
    let end = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        if Instant::now() > end {
            break false;
        }
        match s.write(&pings[pos..]) {
            Ok(n) => {
                sent += n;
                pos = (pos + n) % pings.len();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    assert!(closed, "the server kept a never-reading client for 30 s");
    eprintln!("sent {} KiB of pings before the server gave up", sent >> 10);
    logs().wait_line(peer, &["closed", "write_timeout"]);
}

//! Bad input never takes the server down: garbage, a truncated handshake, a chunk stream
//! that stops mid-message and a publisher killed mid-publish each get their connection
//! closed with a log line naming the peer and the reason, while a good stream published at
//! the same time keeps being served.

mod common;
mod rtmp_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::http::get;
use common::{poll, publish, sample, start, test_config};
use rtmp_support::{closed_by_server, handshake, last_sequence, logs};

#[test]
fn bad_clients_are_closed_and_logged_while_good_stream_continues() {
    let logs = logs();
    let mut config = test_config();
    config.rtmp.idle_timeout = 2.0;
    config.rtmp.publish_timeout = 2.0;
    config.segment.linger = 3.0;
    let (_rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);

    let _good = publish(rtmp, "live", "good", &sample("h264_aac_640x360.flv"), -1);
    let playlist = "/live/good/src/video.m3u8";
    let before =
        poll(Duration::from_secs(20), || last_sequence(http, playlist)).expect("good stream plays");

    // 1. Garbage: an HTTP request on the RTMP port.
    let mut garbage = TcpStream::connect(rtmp).unwrap();
    let garbage_peer = garbage.local_addr().unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        closed_by_server(&mut garbage, Duration::from_secs(5)),
        "garbage connection left open"
    );
    logs.wait_line(garbage_peer, &["closed", "reason"]);

    // 2. A handshake that stops half way through C1.
    let mut truncated = TcpStream::connect(rtmp).unwrap();
    let truncated_peer = truncated.local_addr().unwrap();
    truncated.write_all(&[3u8]).unwrap();
    truncated.write_all(&[0u8; 700]).unwrap();
    assert!(
        closed_by_server(&mut truncated, Duration::from_secs(6)),
        "truncated handshake left open"
    );
    logs.wait_line(truncated_peer, &["closed", "publish_timeout"]);

    // 3. A complete handshake, then a command message that stops mid-message.
    let mut partial = TcpStream::connect(rtmp).unwrap();
    let partial_peer = partial.local_addr().unwrap();
    handshake(&mut partial);
    let mut chunk = vec![0x03, 0, 0, 0, 0, 0x03, 0xE8, 20, 0, 0, 0, 0]; // fmt 0, csid 3, 1000-byte AMF0 command
    chunk.extend_from_slice(&[0x02, 0x00, 0x07]);
    chunk.extend_from_slice(b"connect");
    chunk.extend_from_slice(&[0u8; 80]);
    partial.write_all(&chunk).unwrap();
    assert!(
        closed_by_server(&mut partial, Duration::from_secs(6)),
        "mid-message stall left open"
    );
    logs.wait_line(partial_peer, &["closed", "publish_timeout"]);

    // 4. A publisher killed in the middle of publishing.
    let mut victim = publish(rtmp, "live", "victim", &sample("h264_aac_640x360.flv"), -1);
    poll(Duration::from_secs(20), || {
        last_sequence(http, "/live/victim/src/video.m3u8")
    })
    .expect("victim plays");
    victim.0.kill().unwrap();
    let _ = victim.0.wait();
    let line = poll(Duration::from_secs(10), || {
        logs.text()
            .lines()
            .find(|l| l.contains("victim") && l.contains("closed while publishing"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no log line for the killed publisher:\n{}", logs.text()));
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    let ended = poll(Duration::from_secs(5), || {
        get(http, "/live/victim/src/video.m3u8")
            .ok()
            .filter(|r| r.text().contains("#EXT-X-ENDLIST"))
    });
    assert!(ended.is_some(), "killed publisher's playlist did not end");
    // After segment.linger the ended stream is removed: a 404 at once.
    let gone = poll(Duration::from_secs(8), || {
        get(http, "/live/victim/index.m3u8")
            .ok()
            .filter(|r| r.status == 404)
    });
    assert!(
        gone.is_some(),
        "ended stream still served after its linger time"
    );

    // The good stream kept going through all of it.
    let after = poll(Duration::from_secs(10), || {
        last_sequence(http, playlist).filter(|s| *s >= before + 3)
    })
    .expect("good stream kept producing segments");
    assert!(after >= before + 3);
    let r = get(http, "/live/good/index.m3u8").unwrap();
    assert_eq!(r.status, 200);
}

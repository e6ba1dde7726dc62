//! The load generator end to end, tiny: two real-time publishers from our own RTMP client
//! and two viewers of each kind against a real server, for a few seconds. Asserts that
//! media was delivered to every kind, nothing failed, and the probes measured something.
//! (CI's smoke run of `packgate-load`; speed is for the benches, not asserted here.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use packgate::load::publisher::Sample;
use packgate::load::{run, LoadConfig};

#[test]
fn tiny_load_delivers_media_to_every_viewer_kind() {
    let (rt, server) = common::start(common::test_config());
    let data = std::fs::read(common::sample("h264_aac_640x360.flv")).unwrap();
    let sample = Arc::new(Sample::parse(Bytes::from(data)).unwrap());
    let mut cfg = LoadConfig::packgate(server.rtmp_addr, server.http_addr, sample);
    cfg.streams = 2;
    cfg.hls_viewers = 2;
    cfg.ll_viewers = 2;
    cfg.dash_viewers = 2;
    cfg.duration = Duration::from_secs(10);
    cfg.warmup = Duration::from_secs(4);
    cfg.server_pid = Some(std::process::id());
    let report = rt.block_on(run(cfg));
    let json = serde_json::to_value(&report).unwrap();
    let at = |p: &str| json.pointer(p).cloned().unwrap_or_default();
    let shown = serde_json::to_string_pretty(&json).unwrap();
    assert_eq!(at("/published"), 2, "{shown}");
    assert_eq!(at("/errors"), 0, "{shown}");
    assert!(at("/llhls/parts").as_u64() > Some(0), "{shown}");
    assert!(at("/hls/segments").as_u64() > Some(0), "{shown}");
    assert!(at("/dash/segments").as_u64() > Some(0), "{shown}");
    assert!(at("/dash/parts").as_u64() > Some(0), "{shown}");
    assert!(at("/first_part/count").as_u64() > Some(0), "{shown}");
    assert!(at("/first_part/p50_ms").as_f64() > Some(0.0), "{shown}");
    assert!(at("/llhls/part_delay/count").as_u64() > Some(0), "{shown}");
    assert!(at("/ingest_mbps").as_f64() > Some(0.5), "{shown}");
    assert!(at("/server/rss_bytes").as_u64() > Some(0), "{shown}");
    // packgate_retained_media_bytes: the windows' media, read at scrape time.
    assert!(
        at("/retained_media_bytes").as_u64() > Some(100_000),
        "{shown}"
    );
    println!("{}", report.table());
    rt.block_on(server.shutdown());
}

/// `packgate-load --retime` (the soak's publisher of the timestamp cases ffmpeg cannot
/// send): its clock steps back 4 s every 8 s of media, and the playlist shows the
/// re-anchoring as EXT-X-DISCONTINUITY; the publish ends by itself when its media runs out.
#[test]
fn retime_cli_publishes_a_clock_that_steps_back() {
    let (rt, server) = common::start(common::test_config());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_packgate-load"))
        .arg("--rtmp")
        .arg(server.rtmp_addr.to_string())
        .args(["--prefix", "back", "--duration", "14", "--jump-back", "4/8"])
        .arg("--retime")
        .arg(common::sample("h264_aac_640x360.flv"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn packgate-load");
    let mut child = common::Proc(child);
    let http = server.http_addr;
    let path = "/live/back/src/video.m3u8";
    let seen = common::poll(Duration::from_secs(30), || {
        let r = common::http::get(http, path).ok()?;
        (r.status == 200 && r.text().contains("#EXT-X-DISCONTINUITY")).then(|| r.text())
    });
    assert!(seen.is_some(), "no EXT-X-DISCONTINUITY after the step back");
    assert_eq!(
        child.wait_for(Duration::from_secs(30)),
        Some(true),
        "packgate-load --retime did not end cleanly with its media"
    );
    rt.block_on(server.shutdown());
}

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

//! An encoder killed with SIGKILL and restarted 3 s later on the same name: the playlists
//! stay live through the gap (no EXT-X-ENDLIST, which is final), the reconnect continues
//! them after an EXT-X-DISCONTINUITY with stable media sequence and discontinuity numbers,
//! and hls.js (default configuration) and dash.js (low latency) play on.

mod common;

use std::time::{Duration, SystemTime};

use common::sources;
use common::watch::{assert_resumed, Watcher};
use common::{browser, http::get, poll, start, test_config, tools};

/// Seconds each player plays.
const WINDOW: u32 = 34;
/// Seconds the encoder is gone.
const GAP: u64 = 3;
/// How soon after the restart playback must move again, seconds.
const RESUME_WITHIN: f64 = 6.0;

#[test]
fn players_continue_across_an_encoder_kill_and_restart() {
    tools::browser_dir();
    let source = sources::by_name("clip");
    let (_rt, server) = start(test_config());
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    let encoder = source.publish(rtmp, "live", "re", WINDOW + 40);
    poll(Duration::from_secs(20), || {
        get(http, "/live/re/index.m3u8")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("stream available");

    // Watch both media playlists the whole time.
    let watcher = Watcher::start(
        http,
        &["/live/re/src/video.m3u8", "/live/re/src/audio.m3u8"],
    );

    let hls_url = format!("http://{http}/live/re/index.m3u8");
    let dash_url = format!("http://{http}/live/re/index.mpd");
    let hls = std::thread::spawn(move || {
        browser::play(&hls_url, "hls", WINDOW, &["--hls-config", "{}", "--series"])
    });
    let dash = std::thread::spawn(move || {
        browser::play(&dash_url, "dash", WINDOW, &["--low-latency", "--series"])
    });
    // Both players start within a few seconds; let them play ~8 s, then kill the encoder.
    std::thread::sleep(Duration::from_secs(12));
    drop(encoder); // SIGKILL: the connection just drops, no unpublish
    std::thread::sleep(Duration::from_secs(1));
    let api: serde_json::Value =
        serde_json::from_slice(&get(http, "/api/streams").unwrap().body).unwrap();
    let state = api["streams"][0]["renditions"][0]["state"].clone();
    let metrics = get(http, "/metrics").unwrap().text();
    std::thread::sleep(Duration::from_secs(GAP - 1));
    let restarted = SystemTime::now();
    let _encoder = source.publish(rtmp, "live", "re", WINDOW + 40);
    let hls = hls.join().expect("hls player");
    let dash = dash.join().expect("dash player");
    let seen = watcher.stop();

    assert_eq!(state, "reconnect-wait", "API during the gap: {api}");
    assert!(
        metrics.contains("packgate_renditions{state=\"reconnect-wait\"} 1"),
        "metrics during the gap: {metrics}"
    );
    seen.assert_live_and_contiguous();

    for (player, r) in [("hls.js", &hls), ("dash.js", &dash)] {
        assert_resumed(player, r, restarted, RESUME_WITHIN);
        let floor = f64::from(WINDOW) - GAP as f64 - RESUME_WITHIN - 2.0;
        assert!(
            r["advanced"].as_f64().unwrap_or(0.0) >= floor,
            "{player}: advanced less than {floor} s: {r}"
        );
    }
}

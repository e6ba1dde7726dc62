//! Issue 9's sources played by hls.js in low-latency mode with its default configuration
//! (what a new user gets: `lowLatencyMode` on, no catch-up rate) for 30 s each, with zero
//! stalls. One plays at a time (see [`SLOTS`]). Two
//! sources close to others are left out of CI for time (`-- --ignored` runs them; so does
//! `bash benches/soak.sh`). The live GStreamer source also plays in dash.js (low latency).

mod common;

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::sources;
use common::{browser, http::get, poll, start, test_config, tools};

/// Seconds each source plays.
const WINDOW: u32 = 30;
/// Players at once: one. Two Chromium instances beside the publishers on a 2-core CI
/// machine made hls.js stall at start-up now and then (a seek over the first 0.1 s while
/// video decoded from the keyframe before the start position), which a viewer's own
/// machine does not see; one at a time costs about 2 minutes of CI.
const SLOTS: usize = 1;

static BUSY: Mutex<usize> = Mutex::new(0);
/// Held while a live encoder (GStreamer's x264enc) runs: two at once starve each other on
/// a 2-core machine and then stall every player, which says nothing about packgate.
static LIVE: Mutex<()> = Mutex::new(());
static FREED: Condvar = Condvar::new();

/// One of the [`SLOTS`] player slots, released on drop.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= SLOTS {
            busy = FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}

/// Publishes `name`, plays it with hls.js defaults for [`WINDOW`] s and asserts a clean run.
fn plays_without_stall(name: &str) {
    plays_in(name, "hls", 0);
}

/// Publishes `name`, plays it with `player` ("hls": hls.js defaults; "dash": dash.js low
/// latency) for [`WINDOW`] s and asserts at most `stalls` stalls.
fn plays_in(name: &str, player: &str, stalls: u64) {
    tools::browser_dir();
    let source = sources::by_name(name);
    let _live = source
        .is_live()
        .then(|| LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    let _slot = Slot::take();
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let stream = name.replace('.', "_");
    let _encoder = source.publish(server.rtmp_addr, "live", &stream, WINDOW + 30);
    let master = format!("/live/{stream}/index.m3u8");
    poll(Duration::from_secs(20), || {
        get(http, &master).ok().filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("{name}: {master} never became available"));
    let (url, args) = match player {
        "dash" => (
            format!("http://{http}/live/{stream}/index.mpd"),
            vec!["--low-latency"],
        ),
        _ => (format!("http://{http}{master}"), vec!["--hls-config", "{}"]),
    };
    let r = browser::play(&url, player, WINDOW, &args);
    eprintln!(
        "source {name} in {player}: stalls {}, advanced {} s, latency median {} s p95 {} s, errors {}",
        r["stalls"], r["advanced"], r["latencyMedian"], r["latencyP95"], r["errors"]
    );
    browser::assert_played(&r, 640, 360);
    assert!(
        r["stalls"].as_u64().is_some_and(|n| n <= stalls),
        "{name}: {player} stalled: {r}"
    );
    assert!(
        r["advanced"].as_f64().unwrap_or(0.0) >= f64::from(WINDOW) - 5.0,
        "{name}: currentTime advanced too little: {r}"
    );
}

#[test]
fn clip_no_bframes_high_bitrate() {
    plays_without_stall("clip");
}

#[test]
fn x264_high_3_bframes() {
    plays_without_stall("high_bf3");
}

#[test]
#[ignore = "close to clip (30 fps); CI time: run with --ignored"]
fn fps_25() {
    plays_without_stall("fps25");
}

#[test]
fn fps_59_94() {
    plays_without_stall("fps59.94");
}

#[test]
fn aac_44100() {
    plays_without_stall("aac44.1k");
}

#[test]
fn looped_15s_clip() {
    plays_without_stall("loop15s");
}

#[test]
#[ignore = "short GOPs are covered by looped_15s_clip; CI time: run with --ignored"]
fn gop_1_5s() {
    plays_without_stall("gop1.5s");
}

/// 4 s GOPs under a 2 s target: every other segment starts between keyframes, so the
/// playlist's EXT-X-START sends a joining player back to the last keyframe.
#[test]
fn gop_4s() {
    plays_without_stall("gop4s");
}

#[test]
fn gstreamer_rtmp2sink_live() {
    plays_without_stall("gstreamer");
}

#[test]
fn gstreamer_rtmp2sink_live_in_dash_js() {
    // A live encoder whose clock runs a little behind the wall clock: dash.js learned of
    // each next segment from an MPD reloaded once a second and ran dry at boundaries, two
    // to five times in 30-40 s. One stall is allowed: under CI load dash.js's catch-up may
    // jump the playhead past its buffer once (seen at load 4), which is not that fault.
    plays_in("gstreamer", "dash", 1);
}

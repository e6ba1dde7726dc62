//! An encoder killed with SIGKILL and restarted 3 s later on the same name: the playlists
//! stay live through the gap (no EXT-X-ENDLIST, which is final), the reconnect continues
//! them after an EXT-X-DISCONTINUITY with stable media sequence and discontinuity numbers,
//! and hls.js (default configuration) and dash.js (low latency) play on.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::sources;
use common::{browser, http::get, poll, start, test_config, tools};

/// Seconds each player plays.
const WINDOW: u32 = 34;
/// Seconds the encoder is gone.
const GAP: u64 = 3;
/// How soon after the restart playback must move again, seconds.
const RESUME_WITHIN: f64 = 6.0;

/// What the playlist watcher saw.
#[derive(Debug, Default)]
struct Seen {
    fetches: usize,
    endlist: Vec<String>,
    discontinuities: usize,
    /// Per segment URI: (media sequence number, discontinuity number) when first listed.
    numbers: HashMap<String, (u64, u64)>,
    changed: Vec<String>,
    uri_not_msn: Vec<String>,
}

impl Seen {
    /// Checks one playlist text against everything seen before (RFC 8216 6.2.1/6.2.2: a
    /// segment keeps its media sequence number and discontinuity sequence number).
    fn check(&mut self, path: &str, text: &str) {
        self.fetches += 1;
        if text.contains("#EXT-X-ENDLIST") {
            self.endlist
                .push(format!("{path} at {:?}", SystemTime::now()));
        }
        let tag = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let mut msn = tag("#EXT-X-MEDIA-SEQUENCE:");
        let mut disc = tag("#EXT-X-DISCONTINUITY-SEQUENCE:");
        for line in text.lines() {
            if line == "#EXT-X-DISCONTINUITY" {
                disc += 1;
                self.discontinuities += 1;
            } else if !line.starts_with('#') && !line.is_empty() {
                let uri = format!("{path}:{line}");
                let seq = line
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.split('.').next())
                    .and_then(|n| n.parse::<u64>().ok());
                if seq != Some(msn) {
                    self.uri_not_msn.push(format!("{uri} listed as {msn}"));
                }
                let was = *self.numbers.entry(uri.clone()).or_insert((msn, disc));
                if was != (msn, disc) {
                    self.changed
                        .push(format!("{uri}: (msn, disc) {was:?} -> {:?}", (msn, disc)));
                }
                msn += 1;
            }
        }
    }
}

fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

/// currentTime at wall time `at` (epoch ms) and how long after `at` it first moved by more
/// than 0.3 s, from the player's 500 ms series.
fn resumed_after(r: &serde_json::Value, at: f64) -> (f64, Option<f64>) {
    let t0 = r["t0Epoch"].as_f64().unwrap_or(0.0);
    let rows: Vec<(f64, f64)> = r["trace"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|row| Some((t0 + row[0].as_f64()?, row[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let base = rows
        .iter()
        .rev()
        .find(|(t, _)| *t <= at)
        .map_or(0.0, |(_, ct)| *ct);
    let moved = rows
        .iter()
        .find(|(t, ct)| *t > at && *ct > base + 0.3)
        .map(|(t, _)| (t - at) / 1000.0);
    (base, moved)
}

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
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/live/re/src/video.m3u8", "/live/re/src/audio.m3u8"] {
                    if let Ok(r) = get(http, path) {
                        if r.status == 200 {
                            seen.lock().unwrap().check(path, &r.text());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };

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
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let seen = seen.lock().unwrap();

    eprintln!(
        "watcher: {} fetches, {} discontinuity tags seen, endlist {:?}, changed {:?}",
        seen.fetches, seen.discontinuities, seen.endlist, seen.changed
    );
    assert_eq!(state, "reconnect-wait", "API during the gap: {api}");
    assert!(
        metrics.contains("packgate_renditions{state=\"reconnect-wait\"} 1"),
        "metrics during the gap: {metrics}"
    );
    assert!(seen.fetches > 100, "watcher fetched too little");
    assert!(
        seen.endlist.is_empty(),
        "EXT-X-ENDLIST appeared: {:?}",
        seen.endlist
    );
    assert!(
        seen.discontinuities > 0,
        "no EXT-X-DISCONTINUITY after the reconnect"
    );
    assert!(
        seen.changed.is_empty(),
        "a segment changed its numbers: {:?}",
        seen.changed
    );
    assert!(
        seen.uri_not_msn.is_empty(),
        "media sequence numbers not contiguous: {:?}",
        &seen.uri_not_msn[..seen.uri_not_msn.len().min(5)]
    );

    let at = epoch_ms(restarted);
    for (player, r) in [("hls.js", &hls), ("dash.js", &dash)] {
        let (base, moved) = resumed_after(r, at);
        eprintln!(
            "{player}: killed at +0 s, restarted at +{GAP} s; currentTime {base:.2} at the restart, moving again {moved:?} s later; advanced {} s in {WINDOW} s, stalls {}, errors {}",
            r["advanced"], r["stalls"], r["errors"]
        );
        assert_eq!(
            r["fatal"].as_array().map(Vec::len),
            Some(0),
            "{player}: fatal errors: {r}"
        );
        assert!(
            moved.is_some_and(|s| s <= RESUME_WITHIN),
            "{player}: currentTime did not move within {RESUME_WITHIN} s of the reconnect: {r}"
        );
        let floor = f64::from(WINDOW) - GAP as f64 - RESUME_WITHIN - 2.0;
        assert!(
            r["advanced"].as_f64().unwrap_or(0.0) >= floor,
            "{player}: advanced less than {floor} s: {r}"
        );
    }
}

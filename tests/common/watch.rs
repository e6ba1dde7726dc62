//! Helpers for the reconnect tests: a watcher that checks every media playlist it fetches
//! against what it saw before, and what a player's 500 ms trace says about resuming.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::get;

/// Fetches some media playlists every 150 ms on a thread and checks each with [`Seen`].
pub struct Watcher {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watcher {
    /// Starts watching `paths` on `http`.
    pub fn start(http: SocketAddr, paths: &[&str]) -> Watcher {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for path in &paths {
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
        Watcher { seen, stop, thread }
    }

    /// Stops the thread and returns what it saw.
    pub fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("watcher thread");
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// What the playlist watcher saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub fetches: usize,
    pub endlist: Vec<String>,
    pub discontinuities: usize,
    /// Per segment URI: (media sequence number, discontinuity number) when first listed.
    pub numbers: HashMap<String, (u64, u64)>,
    pub changed: Vec<String>,
    pub uri_not_msn: Vec<String>,
    /// `{playlist path}:{URI}` of segments listed after EXT-X-GAP (no media; players must
    /// not request them).
    pub gaps: BTreeSet<String>,
}

impl Seen {
    /// Checks one playlist text against everything seen before (RFC 8216 6.2.1/6.2.2: a
    /// segment keeps its media sequence number and discontinuity sequence number).
    pub fn check(&mut self, path: &str, text: &str) {
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
        let mut gap = false;
        for line in text.lines() {
            if line == "#EXT-X-GAP" {
                gap = true;
            } else if line == "#EXT-X-DISCONTINUITY" {
                disc += 1;
                self.discontinuities += 1;
            } else if !line.starts_with('#') && !line.is_empty() {
                let uri = format!("{path}:{line}");
                if std::mem::take(&mut gap) {
                    self.gaps.insert(uri.clone());
                }
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

    /// The checks every reconnect test makes of what it saw: the playlists stayed live (no
    /// EXT-X-ENDLIST), a discontinuity marked the reconnect, and every segment kept its
    /// numbers, contiguous.
    pub fn assert_live_and_contiguous(&self) {
        eprintln!(
            "watcher: {} fetches, {} discontinuity tags seen, gaps {:?}, endlist {:?}, changed {:?}",
            self.fetches, self.discontinuities, self.gaps, self.endlist, self.changed
        );
        assert!(self.fetches > 100, "watcher fetched too little");
        assert!(
            self.endlist.is_empty(),
            "EXT-X-ENDLIST appeared: {:?}",
            self.endlist
        );
        assert!(
            self.discontinuities > 0,
            "no EXT-X-DISCONTINUITY after the reconnect"
        );
        assert!(
            self.changed.is_empty(),
            "a segment changed its numbers: {:?}",
            self.changed
        );
        assert!(
            self.uri_not_msn.is_empty(),
            "media sequence numbers not contiguous: {:?}",
            &self.uri_not_msn[..self.uri_not_msn.len().min(5)]
        );
    }
}

/// Asserts that `player`'s report `r` has no fatal error and that its currentTime moved
/// within `within` seconds of `restarted`; returns (currentTime then, seconds until it moved).
pub fn assert_resumed(
    player: &str,
    r: &serde_json::Value,
    restarted: SystemTime,
    within: f64,
) -> (f64, Option<f64>) {
    let (base, moved) = resumed_after(r, epoch_ms(restarted));
    eprintln!(
        "{player}: currentTime {base:.2} at the restart, moving again {moved:?} s later; advanced {} s in {} s, {}p, stalls {}, errors {}, http errors {}",
        r["advanced"], r["window"], r["videoHeight"], r["stalls"], r["errors"], r["httpErrors"]
    );
    assert_eq!(
        r["fatal"].as_array().map(Vec::len),
        Some(0),
        "{player}: fatal errors: {r}"
    );
    assert!(
        moved.is_some_and(|s| s <= within),
        "{player}: currentTime did not move within {within} s of the reconnect: {r}"
    );
    (base, moved)
}

pub fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

/// currentTime at wall time `at` (epoch ms) and how long after `at` it first moved by more
/// than 0.3 s, from the player's 500 ms series.
pub fn resumed_after(r: &serde_json::Value, at: f64) -> (f64, Option<f64>) {
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

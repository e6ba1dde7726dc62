//! What a rendition serves: bytes out, and its current viewers counted as the distinct
//! client addresses that fetched one of its playlists recently (players poll them every
//! segment or part, so a watching player is never absent for long).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How recent a playlist fetch must be for its client to count as watching.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(10);
/// Addresses remembered at most per rendition: the map's byte budget.
pub const MAX_TRACKED: usize = 4096;

/// Per-rendition output counters.
#[derive(Debug, Default)]
pub struct Traffic {
    bytes_out: AtomicU64,
    segments: AtomicU64,
    viewers: Mutex<HashMap<IpAddr, Instant>>,
}

impl Traffic {
    /// Counts `n` bytes of response body served.
    pub fn sent(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts one segment cut.
    pub fn segment_produced(&self) {
        self.segments.fetch_add(1, Ordering::Relaxed);
    }

    /// Segments cut so far.
    pub fn segments(&self) -> u64 {
        self.segments.load(Ordering::Relaxed)
    }

    /// Bytes of response body served so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Notes a playlist fetch by `ip` at `now`. When the map is full, expired entries are
    /// dropped; if it is still full, the newcomer is not counted (the count saturates at
    /// [`MAX_TRACKED`] rather than growing).
    pub fn playlist_fetched(&self, ip: IpAddr, now: Instant) {
        let mut map = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, t| now.saturating_duration_since(*t) < VIEWER_WINDOW);
            if map.len() >= MAX_TRACKED {
                return;
            }
        }
        map.insert(ip, now);
    }

    /// Distinct addresses that fetched a playlist within [`VIEWER_WINDOW`] of `now`.
    pub fn viewers(&self, now: Instant) -> usize {
        let map = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter(|t| now.saturating_duration_since(**t) < VIEWER_WINDOW)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_recent_distinct_addresses_within_the_budget() {
        let t = Traffic::default();
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        t.playlist_fetched(a, now);
        t.playlist_fetched(a, now);
        t.playlist_fetched("192.0.2.2".parse().unwrap(), now);
        assert_eq!(t.viewers(now), 2);
        assert_eq!(t.viewers(now + VIEWER_WINDOW), 0);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.playlist_fetched(IpAddr::from(i.to_be_bytes()), now);
        }
        assert_eq!(t.viewers(now), MAX_TRACKED);
        t.sent(10);
        assert_eq!(t.bytes_out(), 10);
    }
}

//! Counters and latency samples the generator's tasks share, and their summaries.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Most samples one series keeps (4 bytes each); later samples are counted, not kept.
const SAMPLE_CAP: usize = 4_000_000;

/// Latency samples in microseconds.
#[derive(Debug, Default)]
pub struct Samples(Mutex<Vec<u32>>);

impl Samples {
    /// Records one duration.
    pub fn add(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < SAMPLE_CAP {
            v.push(us);
        }
    }

    /// Count, p50 and p99 in milliseconds.
    pub fn summary(&self) -> Summary {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        v.sort_unstable();
        let pick = |q: f64| -> Option<f64> {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v.get(i).map(|us| f64::from(*us) / 1000.0)
        };
        Summary {
            count: v.len() as u64,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            max_ms: v.last().map(|us| f64::from(*us) / 1000.0),
        }
    }
}

/// A latency series summarised.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Largest, ms.
    pub max_ms: Option<f64>,
}

/// What one kind of viewer did.
#[derive(Debug, Default)]
pub struct KindStats {
    /// Playlist / MPD requests (request to last byte).
    pub playlist: Samples,
    /// Segment, part and init requests (request to last byte).
    pub media: Samples,
    /// Parts (or CMAF chunks) received whole.
    pub parts: AtomicU64,
    /// Segments received whole.
    pub segments: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Failed requests: transport errors, timeouts, unexpected statuses.
    pub errors: AtomicU64,
    /// Part delivery delay: the part's last frame sent → its last byte received.
    pub part_delay: Samples,
    /// Parts whose media time matched no frame the publisher sent.
    pub unmatched: AtomicU64,
}

/// Everything the run shares.
#[derive(Debug, Default)]
pub struct Stats {
    /// True inside the steady window: only then are requests and delays recorded.
    pub measuring: AtomicBool,
    /// Classic HLS viewers.
    pub hls: KindStats,
    /// LL-HLS viewers.
    pub llhls: KindStats,
    /// LL-DASH viewers.
    pub dash: KindStats,
    /// Publish accepted → first part listed.
    pub first_part: Samples,
    /// Publish accepted → first segment listed.
    pub first_segment: Samples,
    /// Publisher failures (connect, refused, write errors).
    pub publish_errors: AtomicU64,
    /// RTMP bytes written by all publishers.
    pub publish_bytes: AtomicU64,
    /// Publishers whose publish was accepted.
    pub published: AtomicU64,
}

impl Stats {
    /// Whether the steady window is open.
    pub fn on(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

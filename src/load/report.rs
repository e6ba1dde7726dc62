//! The run's results: JSON for scripts, a table for people.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::config::LoadConfig;
use super::procstat::{cpu_percent, Reading};
use super::stats::{KindStats, Stats, Summary};

/// What one kind of viewer saw in the steady window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindReport {
    /// Viewers of this kind.
    pub viewers: usize,
    /// Requests per second (playlists + media).
    pub requests_per_sec: f64,
    /// Playlist / MPD requests, request to last byte (blocking reloads wait by design).
    pub playlist: Summary,
    /// Segment / part / init requests, request to last byte.
    pub media: Summary,
    /// Parts (LL-HLS) or CMAF chunks (LL-DASH) received.
    pub parts: u64,
    /// Segments received.
    pub segments: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Failed requests over the whole run.
    pub errors: u64,
    /// A part's last frame sent by the publisher → its last byte received.
    pub part_delay: Summary,
    /// Parts that matched no frame the publisher sent (not dated).
    pub unmatched: u64,
}

/// The server process (tree) over the steady window.
#[derive(Clone, Debug, Serialize)]
pub struct ServerReport {
    /// Percent of one core.
    pub cpu_percent: f64,
    /// Per published stream (rendition).
    pub cpu_percent_per_stream: f64,
    /// Per Mbit/s of ingest.
    pub cpu_percent_per_mbps: f64,
    /// Resident set size at the window's end, bytes.
    pub rss_bytes: u64,
    /// RSS per published stream, bytes.
    pub rss_per_stream_bytes: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Ladders (or plain streams).
    pub streams: usize,
    /// Publishers (streams × rungs).
    pub publishers: usize,
    /// Publishers whose publish was accepted.
    pub published: u64,
    /// Publisher failures.
    pub publish_errors: u64,
    /// Steady window, seconds.
    pub window_secs: f64,
    /// Ingest over the window, Mbit/s (RTMP bytes written).
    pub ingest_mbps: f64,
    /// Server CPU and memory, when a pid was given.
    pub server: Option<ServerReport>,
    /// The generator's own CPU over the window, percent of one core (it shares the
    /// machine with the server).
    pub generator_cpu_percent: Option<f64>,
    /// Media bytes the server retains, when it exports a gauge for it.
    pub retained_media_bytes: Option<u64>,
    /// Publish accepted → first part listed.
    pub first_part: Summary,
    /// Publish accepted → first segment listed.
    pub first_segment: Summary,
    /// Classic HLS viewers.
    pub hls: KindReport,
    /// LL-HLS viewers.
    pub llhls: KindReport,
    /// LL-DASH viewers.
    pub dash: KindReport,
    /// All errors: publishers and viewers.
    pub errors: u64,
}

fn kind(k: &KindStats, viewers: usize, secs: f64) -> KindReport {
    let playlist = k.playlist.summary();
    let media = k.media.summary();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    KindReport {
        viewers,
        requests_per_sec: (playlist.count + media.count) as f64 / secs.max(1e-9),
        playlist,
        media,
        parts: load(&k.parts),
        segments: load(&k.segments),
        bytes: load(&k.bytes),
        errors: load(&k.errors),
        part_delay: k.part_delay.summary(),
        unmatched: load(&k.unmatched),
    }
}

impl Report {
    /// Summarises the shared counters.
    pub fn build(
        cfg: &LoadConfig,
        stats: &Stats,
        window: Duration,
        publish_bytes: u64,
        server: Option<(Reading, Reading)>,
        retained: Option<u64>,
    ) -> Report {
        let secs = window.as_secs_f64();
        let publishers = cfg.streams * cfg.rungs.len();
        let ingest_mbps = publish_bytes as f64 * 8.0 / secs.max(1e-9) / 1e6;
        let server = server.map(|(a, b)| {
            let cpu = cpu_percent(&a, &b);
            ServerReport {
                cpu_percent: cpu,
                cpu_percent_per_stream: cpu / publishers.max(1) as f64,
                cpu_percent_per_mbps: cpu / ingest_mbps.max(1e-9),
                rss_bytes: b.rss,
                rss_per_stream_bytes: b.rss / publishers.max(1) as u64,
            }
        });
        let hls = kind(&stats.hls, cfg.hls_viewers, secs);
        let llhls = kind(&stats.llhls, cfg.ll_viewers, secs);
        let dash = kind(&stats.dash, cfg.dash_viewers, secs);
        let publish_errors = stats.publish_errors.load(Ordering::Relaxed);
        Report {
            streams: cfg.streams,
            publishers,
            published: stats.published.load(Ordering::Relaxed),
            publish_errors,
            window_secs: secs,
            ingest_mbps,
            server,
            generator_cpu_percent: None,
            retained_media_bytes: retained,
            first_part: stats.first_part.summary(),
            first_segment: stats.first_segment.summary(),
            errors: publish_errors + hls.errors + llhls.errors + dash.errors,
            hls,
            llhls,
            dash,
        }
    }

    /// A plain-text table of the report.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let mut out = format!(
            "{} streams ({} publishers, {} published, {} publish errors), ingest {:.2} Mbit/s over {:.1} s\n",
            self.streams, self.publishers, self.published, self.publish_errors, self.ingest_mbps, self.window_secs
        );
        if let Some(s) = &self.server {
            out += &format!(
                "server CPU {:.2} % of a core: {:.3} %/stream, {:.3} %/(Mbit/s); RSS {:.1} MB ({:.2} MB/stream)\n",
                s.cpu_percent,
                s.cpu_percent_per_stream,
                s.cpu_percent_per_mbps,
                s.rss_bytes as f64 / 1e6,
                s.rss_per_stream_bytes as f64 / 1e6
            );
        }
        if let Some(g) = self.generator_cpu_percent {
            out += &format!("generator CPU {g:.2} % of a core\n");
        }
        out += &format!(
            "retained media: {}\n",
            self.retained_media_bytes
                .map_or("- (no gauge)".into(), |b| format!(
                    "{:.1} MB",
                    b as f64 / 1e6
                ))
        );
        out += &format!(
            "publish → first part p50 {} ms p99 {} ms; → first segment p50 {} ms p99 {} ms ({} probed)\n",
            ms(self.first_part.p50_ms),
            ms(self.first_part.p99_ms),
            ms(self.first_segment.p50_ms),
            ms(self.first_segment.p99_ms),
            self.first_segment.count
        );
        out += "| kind | viewers | req/s | playlist p50/p99 ms | media p50/p99 ms | parts | segments | part delay p50/p99 ms | errors |\n";
        out += "|---|---|---|---|---|---|---|---|---|\n";
        for (name, k) in [
            ("HLS", &self.hls),
            ("LL-HLS", &self.llhls),
            ("LL-DASH", &self.dash),
        ] {
            out += &format!(
                "| {name} | {} | {:.1} | {} / {} | {} / {} | {} | {} | {} / {} | {} |\n",
                k.viewers,
                k.requests_per_sec,
                ms(k.playlist.p50_ms),
                ms(k.playlist.p99_ms),
                ms(k.media.p50_ms),
                ms(k.media.p99_ms),
                k.parts,
                k.segments,
                ms(k.part_delay.p50_ms),
                ms(k.part_delay.p99_ms),
                k.errors
            );
        }
        out
    }
}

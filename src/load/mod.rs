//! A load generator built on packgate's own sans-IO RTMP client: N real-time publishers of
//! a sample FLV (or ladders of several samples) and M viewers of each kind (classic HLS,
//! LL-HLS, LL-DASH), one tokio task each, measured over a steady window. The binary
//! `packgate-load` drives [`run`]; tests call it directly.

pub mod config;
pub mod http;
pub mod moof;
pub mod parse;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod retime;
pub mod stats;
pub mod viewers;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::LoadConfig;
use publisher::{Publisher, Timeline};
use report::Report;
use stats::Stats;
use viewers::Viewer;

/// How long publishers keep going after the viewers stop.
const PUBLISH_GRACE: Duration = Duration::from_secs(2);

/// Runs the load and reports.
pub async fn run(cfg: LoadConfig) -> Report {
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let until = start + cfg.duration;
    let mut tasks = Vec::new();
    let mut timelines = Vec::new();
    // Publishers start spread over up to 2 s so their frames do not arrive in lockstep.
    let step =
        Duration::from_millis(2000 / cfg.streams.max(1) as u64).min(Duration::from_millis(20));
    for i in 0..cfg.streams {
        let (_, keys) = cfg.names(i);
        let mut first = None;
        for (r, key) in keys.into_iter().enumerate() {
            let timeline = Arc::new(Timeline::default());
            if r == 0 {
                first = Some(timeline.clone());
            }
            let p = Publisher {
                addr: cfg.rtmp,
                app: cfg.app.clone(),
                name: key,
                sample: cfg.rungs[r].1.clone(),
                timeline,
                stats: stats.clone(),
                // Publishers outlast the viewers, whose last requests would otherwise
                // meet a stream that just ended.
                until: until + PUBLISH_GRACE,
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            let probe = (r == 0 && i < cfg.probe_streams).then(|| {
                let ll = cfg.ll_url.is_some();
                let url = cfg.url(cfg.ll_url.as_deref().unwrap_or(&cfg.hls_url), i);
                (url, ll)
            });
            let delay = step * i as u32;
            let stats = stats.clone();
            let timeline = first.clone().expect("first rung");
            let http = cfg.http;
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let publish = publisher::run(p, Some(tx));
                let probe = async move {
                    if let (Some((url, ll)), Ok(at)) = (probe, rx.await) {
                        let v = Viewer {
                            http,
                            url,
                            timeline,
                            stats,
                            until,
                        };
                        viewers::probe_first(v, at, ll).await;
                    }
                };
                tokio::join!(publish, probe);
            }));
        }
        timelines.push(first.expect("a ladder has a rung"));
    }
    let kinds: [(usize, Option<&String>, u8); 3] = [
        (cfg.hls_viewers, Some(&cfg.hls_url), 0),
        (cfg.ll_viewers, cfg.ll_url.as_ref(), 1),
        (cfg.dash_viewers, cfg.dash_url.as_ref(), 2),
    ];
    for (count, template, kind) in kinds {
        let Some(template) = template else { continue };
        for j in 0..count {
            let i = j % cfg.streams.max(1);
            let v = Viewer {
                http: cfg.http,
                url: cfg.url(template, i),
                timeline: timelines[i].clone(),
                stats: stats.clone(),
                until,
            };
            // Viewers join over the first second, not all in one instant.
            let delay = Duration::from_micros(1_000_000 * j as u64 / count.max(1) as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                match kind {
                    0 => viewers::classic_hls(v).await,
                    1 => viewers::ll_hls(v).await,
                    _ => viewers::ll_dash(v).await,
                }
            }));
        }
    }
    let window_start = (start + cfg.warmup).min(until);
    tokio::time::sleep_until(window_start.into()).await;
    stats.measuring.store(true, Ordering::Relaxed);
    let bytes_a = stats.publish_bytes.load(Ordering::Relaxed);
    let cpu_a = cfg.server_pid.and_then(procstat::read);
    let own_a = procstat::read(std::process::id());
    let t_a = Instant::now();
    // The window closes a little before the end so that requests cut by it are not counted.
    let mut window_end = until
        .checked_sub(Duration::from_millis(500))
        .unwrap_or(until);
    if let Some(w) = cfg.window {
        window_end = window_end.min(t_a + w);
    }
    let window_end = window_end.max(t_a);
    tokio::time::sleep_until(window_end.into()).await;
    let cpu_b = cfg.server_pid.and_then(procstat::read);
    let own_b = procstat::read(std::process::id());
    stats.measuring.store(false, Ordering::Relaxed);
    let window = Instant::now() - t_a;
    let bytes = stats.publish_bytes.load(Ordering::Relaxed) - bytes_a;
    let retained = retained_bytes(cfg.http).await;
    let deadline = until + Duration::from_secs(15);
    for t in tasks {
        let abort = t.abort_handle();
        if tokio::time::timeout_at(deadline.into(), t).await.is_err() {
            abort.abort();
        }
    }
    let server = cpu_a.zip(cpu_b);
    let mut report = Report::build(&cfg, &stats, window, bytes, server, retained);
    report.generator_cpu_percent = own_a.zip(own_b).map(|(a, b)| procstat::cpu_percent(&a, &b));
    report
}

/// Media bytes the server says it retains, from a `/metrics` gauge whose name mentions
/// retained or stored bytes; `None` when the server has no such gauge.
async fn retained_bytes(http: SocketAddr) -> Option<u64> {
    let mut c = http::Client::new(http);
    let r = c.get("/metrics", Duration::from_secs(5)).await.ok()?;
    let text = String::from_utf8_lossy(&r.body);
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if name.ends_with("_bytes")
            && (name.contains("retained") || name.contains("store") || name.contains("window"))
        {
            let v: f64 = line.rsplit(' ').next()?.parse().ok()?;
            *sum.get_or_insert(0u64) += v as u64;
        }
    }
    sum
}

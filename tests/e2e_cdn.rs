//! Issue 15 part 2: packgate behind a real cache. nginx proxy_cache (Debian's nginx, the
//! config of the README's "Behind a CDN") in front of packgate with LL-HLS on and ffmpeg
//! publishing; 20 simulated LL-HLS viewers (blocking reloads and preload-hinted parts, as
//! hls.js plays), 20 simulated classic HLS viewers (whole segments) and hls.js in headless
//! Chromium (low-latency mode) play through it. From nginx's access log: the share of
//! segment and part requests the cache answered alone (≥ 90 %) and how many requests per
//! object reached the origin (a few at most).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::get;
use common::nginx::{report, Nginx};
use common::{poll, publish, start, test_config, tools};
use packgate::load::publisher::Timeline;
use packgate::load::stats::Stats;
use packgate::load::viewers::{classic_hls, ll_hls, Viewer};

/// Simulated viewers of each kind.
const VIEWERS: usize = 20;
/// How long they play.
const PLAY: Duration = Duration::from_secs(25);

#[test]
fn ll_hls_plays_through_nginx_with_few_origin_requests() {
    tools::browser_dir();
    tools::nginx();
    let (_rt, server) = start(test_config());
    let _p = publish(server.rtmp_addr, "live", "cdn", &common::long_sample(60), 0);
    let nginx = Nginx::start(server.http_addr);
    let edge = nginx.addr;
    poll(Duration::from_secs(20), || {
        let r = get(server.http_addr, "/live/cdn/src/video.m3u8").ok()?;
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then_some(())
    })
    .expect("stream up");
    let master = "/live/cdn/index.m3u8";
    assert_eq!(get(edge, master).unwrap().status, 200, "{}", nginx.errors());

    // The simulated viewers, on their own runtime.
    let viewers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stats = Arc::new(Stats::default());
    stats.measuring.store(true, Ordering::Relaxed);
    let until = Instant::now() + PLAY;
    let mut tasks = Vec::new();
    for i in 0..2 * VIEWERS {
        let v = Viewer {
            http: edge,
            url: master.to_string(),
            timeline: Arc::new(Timeline::default()),
            stats: stats.clone(),
            until,
        };
        // Joining over the first second, as an audience does.
        let delay = Duration::from_millis(50 * i as u64 / 2);
        tasks.push(viewers.spawn(async move {
            tokio::time::sleep(delay).await;
            if i % 2 == 0 {
                ll_hls(v).await
            } else {
                classic_hls(v).await
            }
        }));
    }
    // hls.js meanwhile, through the same cache.
    let url = format!("http://{edge}{master}");
    let browser =
        std::thread::spawn(move || common::browser::play(&url, "hls", 20, &["--low-latency"]));
    let played = browser.join().expect("browser thread");
    viewers.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    });

    let log = nginx.log();
    let kinds = report(&log);
    eprintln!("nginx access log: {} requests", log.len());
    eprintln!(
        "{:<9} {:>8} {:>8} {:>9} {:>8} {:>10} {:>12} {:>7}",
        "kind", "requests", "hits", "hit ratio", "objects", "origin req", "max/object", "errors"
    );
    for (k, r) in &kinds {
        eprintln!(
            "{k:<9} {:>8} {:>8} {:>8.1}% {:>8} {:>10} {:>12} {:>7}",
            r.requests,
            r.hits,
            100.0 * r.hit_ratio(),
            r.objects,
            r.origin_requests,
            r.max_origin_per_object,
            r.errors
        );
    }
    let ll = &stats.llhls;
    let classic = &stats.hls;
    eprintln!(
        "simulated LL-HLS viewers: {} parts, {} errors; classic: {} segments, {} errors",
        ll.parts.load(Ordering::Relaxed),
        ll.errors.load(Ordering::Relaxed),
        classic.segments.load(Ordering::Relaxed),
        classic.errors.load(Ordering::Relaxed)
    );
    let (media, lists) = (ll.media.summary(), ll.playlist.summary());
    eprintln!(
        "LL-HLS request to last byte through nginx (holds included): parts p50 {:?} ms p99 {:?} ms, blocking reloads p50 {:?} ms p99 {:?} ms",
        media.p50_ms, media.p99_ms, lists.p50_ms, lists.p99_ms
    );
    eprintln!(
        "hls.js through nginx: stalls {}, median latency {} s, p95 {} s",
        played["stalls"], played["latencyMedian"], played["latencyP95"]
    );

    common::browser::assert_played(&played, 640, 360);
    assert_eq!(played["stalls"], 0, "hls.js stalled behind nginx: {played}");
    for kind in ["segment", "part"] {
        let r = kinds
            .get(kind)
            .unwrap_or_else(|| panic!("no {kind} requests"));
        assert!(r.requests >= 100, "{kind}: only {} requests", r.requests);
        assert!(
            r.hit_ratio() >= 0.9,
            "{kind}: hit ratio {:.1}% < 90%",
            100.0 * r.hit_ratio()
        );
        assert!(
            r.max_origin_per_object <= 3,
            "{kind}: an object reached the origin {} times",
            r.max_origin_per_object
        );
        assert_eq!(r.errors, 0, "{kind}: error statuses through the cache");
    }
    let viewers_parts = ll.parts.load(Ordering::Relaxed);
    // 20 viewers × video and audio parts over 25 s of 0.2 s parts, less start-up.
    assert!(
        viewers_parts > 20 * 2 * 60,
        "too few parts: {viewers_parts}"
    );
    assert_eq!(ll.errors.load(Ordering::Relaxed), 0, "LL-HLS viewer errors");
    assert_eq!(
        classic.errors.load(Ordering::Relaxed),
        0,
        "classic viewer errors"
    );
}

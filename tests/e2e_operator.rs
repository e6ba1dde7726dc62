//! Issue 16 end to end: the operator's JSON API, ingest diagnostics, the DELETE that
//! disconnects a publisher, and /metrics as Prometheus text, with real ffmpeg publishers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::http::{call, get};
use common::retime::{publish_retimed, Tag};
use common::{long_sample, poll, publish, start, test_config, tools};
use serde_json::Value;

/// GETs `path` as JSON.
fn json(http: SocketAddr, path: &str) -> Option<Value> {
    let r = get(http, path).ok().filter(|r| r.status == 200)?;
    serde_json::from_slice(&r.body).ok()
}

/// The first rendition of `app/base` once `ready` holds for it (bounded wait).
fn rendition_when(
    http: SocketAddr,
    path: &str,
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    poll(limit, || {
        let v = json(http, path)?;
        last = v.clone();
        let r = v["renditions"].get(0)?.clone();
        ready(&r).then_some(r)
    })
    .unwrap_or_else(|| panic!("{path} never satisfied the condition; last: {last:#}"))
}

/// A 12 s 320x180 H.264 (no B-frames) + AAC FLV with a 4 s GOP (-g 120 at 30 fps).
fn long_gop_sample() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gop4s_12s.flv");
    if path.exists() {
        return path;
    }
    let partial = path.with_extension(format!("{}.tmp.flv", std::process::id()));
    let status = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
        ])
        .args(["-g", "120", "-keyint_min", "120", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(&partial)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    std::fs::rename(&partial, &path).unwrap();
    path
}

#[test]
fn api_describes_what_the_encoder_sends_and_delete_needs_the_token() {
    let mut config = test_config();
    config.api.token = "op-secret".into();
    let (_rt, server) = start(config);
    let http = server.http_addr;
    let _ffmpeg = publish(server.rtmp_addr, "live", "show", &long_sample(30), 0);
    // Two GOPs seen and a viewer fetched a playlist.
    let _ = poll(Duration::from_secs(20), || {
        get(http, "/live/show/src/video.m3u8")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("video playlist");
    let r = rendition_when(
        http,
        "/api/streams/live/show",
        Duration::from_secs(20),
        |r| {
            r["gop_frames"].is_u64()
                && r["video_bitrate_in"].as_u64() > Some(0)
                && r["audio_bitrate_in"].as_u64() > Some(0)
        },
    );
    eprintln!("{r:#}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(640), Some(360))
    );
    let codecs = r["codecs"].as_str().unwrap();
    assert!(
        codecs.starts_with("avc1.") && codecs.contains("mp4a.40.2"),
        "{codecs}"
    );
    assert_eq!(r["gop_frames"], 60);
    assert_eq!(r["gop_ms"].as_f64(), Some(2000.0));
    assert_eq!(r["b_frames"], true);
    assert_eq!(r["audio_sample_rate"], 48000);
    assert_eq!(r["audio_channels"], 1);
    assert_eq!(r["publisher"], "127.0.0.1");
    assert!(r["uptime_s"].as_f64().unwrap() > 0.0);
    // 800 kb/s video plus 96 kb/s audio, measured: well within a factor of two.
    let rate = r["bitrate_in"].as_u64().unwrap();
    assert!((400_000..2_000_000).contains(&rate), "bitrate_in {rate}");
    let audio = r["audio_bitrate_in"].as_u64().unwrap();
    assert!(
        (48_000..200_000).contains(&audio),
        "audio_bitrate_in {audio}"
    );
    assert!(r["segments_produced"].as_u64().unwrap() >= 1);
    assert!(r["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(r["viewers"], 1);
    assert_eq!(
        r["warnings"],
        serde_json::json!([]),
        "a clean encoder has no warnings"
    );
    let list = json(http, "/api/streams").unwrap();
    assert_eq!(list["streams"][0]["renditions"][0]["gop_frames"], 60);

    // Mutating calls: refused without the token or with a wrong one, done with it.
    let (status, body) = call(http, "DELETE", "/api/streams/live/show", None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = call(http, "DELETE", "/api/streams/live/show", Some("wrong"));
    assert_eq!(status, 401);
    assert_eq!(json(http, "/api/streams/live/show").unwrap()["live"], true);
    let (status, body) = call(http, "DELETE", "/api/streams/live/show", Some("op-secret"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"disconnected\":1"), "{body}");
    let gone = poll(Duration::from_secs(10), || {
        let v = json(http, "/api/streams/live/show")?;
        (v["live"] == false).then_some(v)
    });
    assert!(gone.is_some(), "the publisher is disconnected");
    let left = poll(Duration::from_secs(5), || {
        let (status, _) = call(http, "DELETE", "/api/streams/live/show", Some("op-secret"));
        (status == 404).then_some(())
    });
    assert!(left.is_some(), "nobody left to disconnect: 404");
}

#[test]
fn delete_is_refused_when_no_token_is_configured() {
    let (_rt, server) = start(test_config());
    let (status, body) = call(server.http_addr, "DELETE", "/api/streams/live/x", Some("x"));
    assert_eq!(status, 403);
    assert!(body.contains("[api] token"), "{body}");
}

#[test]
fn a_4_second_gop_is_diagnosed() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _ffmpeg = publish(server.rtmp_addr, "live", "slow", &long_gop_sample(), 0);
    let r = rendition_when(
        http,
        "/api/streams/live/slow",
        Duration::from_secs(25),
        |r| r["gop_frames"].is_u64(),
    );
    eprintln!("{r:#}");
    assert_eq!(r["gop_frames"], 120);
    assert_eq!(r["gop_ms"].as_f64(), Some(4000.0));
    assert_eq!(r["b_frames"], false);
    assert_eq!(r["audio_sample_rate"], 44100);
    let codes: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"gop_too_long"), "{codes:?}");
    let stream = json(http, "/api/streams/live/slow").unwrap();
    assert!(stream["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "gop_too_long"));
    let metrics = get(http, "/metrics").unwrap().text();
    assert!(
        metrics.contains("packgate_ingest_warnings_total{warning=\"gop_too_long\"}"),
        "{metrics}"
    );
}

/// Checks the exposition format line by line: comments are HELP/TYPE, samples are
/// `name{labels} value` with a numeric value. Returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(c) = line.strip_prefix('#') {
            let words: Vec<&str> = c.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"HELP") | Some(&"TYPE")),
                "{line}"
            );
            if words[0] == "TYPE" {
                assert!(
                    matches!(
                        words.get(2),
                        Some(&"counter" | &"gauge" | &"histogram" | &"summary" | &"untyped")
                    ),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line}");
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        samples.push((series.to_string(), v));
    }
    samples
}

fn sum(samples: &[(String, f64)], prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| s.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn a_broken_rtmp_client_is_counted_as_an_error_by_kind() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let series = "packgate_errors_total{kind=\"rtmp_protocol\"}";
    let before = sum(
        &parse_prometheus(&get(http, "/metrics").unwrap().text()),
        series,
    );
    // RTMP version byte 3 is required; 0x47 ('G' of an HTTP request) is a protocol error.
    let mut sock = TcpStream::connect(server.rtmp_addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = sock.write_all(&[0x47; 1537]);
    let mut buf = [0u8; 64];
    let _ = sock.read(&mut buf);
    let counted = poll(Duration::from_secs(5), || {
        let s = parse_prometheus(&get(http, "/metrics").ok()?.text());
        (sum(&s, series) > before).then_some(())
    });
    assert!(counted.is_some(), "{series} did not move");
}

#[test]
fn metrics_are_prometheus_text_and_move_with_a_stream() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let before = parse_prometheus(&get(http, "/metrics").unwrap().text());
    let segments_before = sum(&before, "packgate_segment_duration_seconds_count");
    let _ffmpeg = publish(server.rtmp_addr, "live", "m", &long_sample(30), 0);
    poll(Duration::from_secs(20), || {
        get(http, "/live/m/src/video.m3u8")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("playlist");
    let after = poll(Duration::from_secs(10), || {
        let s = parse_prometheus(&get(http, "/metrics").ok()?.text());
        (sum(&s, "packgate_segment_duration_seconds_count") > segments_before).then_some(s)
    })
    .expect("segment histogram moves");
    let text = get(http, "/metrics").unwrap().text();
    for needed in [
        "# TYPE packgate_segment_duration_seconds histogram",
        "# TYPE packgate_http_request_seconds histogram",
        "packgate_segment_duration_seconds_bucket{track=\"video\",le=\"2\"}",
        "packgate_http_responses_total{route=\"media_playlist\",status=\"200\"}",
    ] {
        assert!(text.contains(needed), "{needed} missing:\n{text}");
    }
    assert!(
        sum(&after, "packgate_rtmp_bytes_received_total")
            > sum(&before, "packgate_rtmp_bytes_received_total")
    );
    assert!(sum(&after, "packgate_http_bytes_sent_total") > 0.0);
}

/// Runs tests/browser/page.mjs against a fresh server publishing `live/page`; returns its
/// report.
fn page_run(format: Option<&str>, shot: Option<&PathBuf>) -> Value {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _ffmpeg = publish(server.rtmp_addr, "live", "page", &long_sample(40), 0);
    let mut cmd = Command::new(tools::node());
    cmd.arg(tools::browser_dir().join("page.mjs"))
        .args([
            "--origin",
            &format!("http://{http}"),
            "--stream",
            "live/page",
        ])
        .args(["--seconds", "6"]);
    if let Some(f) = format {
        cmd.args(["--format", f]);
    }
    if let Some(path) = shot {
        cmd.arg("--shot").arg(path);
    }
    let out = cmd.output().expect("run node page.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "page.mjs failed:\n{stderr}\n{stdout}");
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad JSON from page.mjs: {e}\n{stdout}\n{stderr}"));
    eprintln!("page result ({format:?}): {r}");
    let listed = r["listed"].as_str().unwrap();
    assert!(
        listed.contains("live/page") && listed.contains("640x360"),
        "{listed}"
    );
    // Advances over the 6 s window (dash.js may stall once near the live edge at start).
    assert!(
        r["advanced"].as_f64().unwrap() > 2.0,
        "playback advances: {r}"
    );
    assert!(r["overlay"].as_str().unwrap().contains("latency"), "{r}");
    assert_eq!(
        r["external"],
        serde_json::json!([]),
        "nothing fetched from outside"
    );
    r
}

#[test]
fn the_web_page_lists_the_stream_and_plays_it_on_a_phone_viewport() {
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("operator_page_phone.png");
    let _ = std::fs::remove_file(&shot);
    let r = page_run(None, Some(&shot));
    eprintln!("screenshot {}", shot.display());
    // On a 390 px viewport the player takes (nearly) the whole width, no sideways scroll.
    assert!(r["videoWidth"].as_f64().unwrap() > 340.0, "{r}");
    assert!(r["pageWidth"].as_f64().unwrap() <= 390.0, "{r}");
    // The screenshot is a real PNG of some substance (a blank page compresses to ~2 KB).
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "screenshot looks blank: {} bytes",
        png.len()
    );
}

#[test]
fn the_web_page_plays_dash_with_the_vendored_dash_js() {
    let r = page_run(Some("index.mpd|dash"), None);
    assert_eq!(r["dash"], true, "dash.js loaded from /vendor");
    assert!(
        r["url"].as_str().unwrap().ends_with("/live/page/index.mpd"),
        "{r}"
    );
}

#[test]
fn a_timestamp_jump_backwards_is_diagnosed() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // 60 s back at 4 s of media: re-anchored, and seen as going backwards.
    let _p = publish_retimed(
        server.rtmp_addr,
        "live",
        "back",
        &long_sample(30),
        20,
        |t: Tag| {
            let ms = 100_000 + t.media_ms;
            Some(if t.media_ms >= 4000 { ms - 60_000 } else { ms } as u32)
        },
    );
    let r = rendition_when(
        http,
        "/api/streams/live/back",
        Duration::from_secs(25),
        |r| r["timestamp_jumps"].as_u64() >= Some(1),
    );
    eprintln!("{r:#}");
    let codes: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"timestamp_jump"), "{codes:?}");
    assert!(codes.contains(&"timestamp_backwards"), "{codes:?}");
    assert!(
        !codes.contains(&"av_drift"),
        "the re-anchor keeps A/V together: {codes:?}"
    );
}

//! Recording and VOD end to end: a real ffmpeg publisher is recorded to disk; the file
//! decodes with ffmpeg at the published length; the recording plays as VOD in hls.js and
//! dash.js; the hook hears about each complete file; the API start/stop needs the token;
//! an unwritable disk leaves the live output alone; a packgate killed with SIGKILL leaves
//! files ffmpeg reads, and the next start closes the recording with EXT-X-ENDLIST.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http::{get, request_with};
use common::{binary, browser, poll, start, test_config, tools, Proc};

/// Seconds published in the recording test.
const PUBLISH_SECS: u32 = 24;

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// ffmpeg 9 publishing generated 320x240 30 fps H.264 (1 s GOP) + AAC in real time for
/// `secs` seconds, then unpublishing cleanly.
fn publish_generated(rtmp: SocketAddr, app: &str, name: &str, secs: u32) -> Proc {
    let child = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/{app}/{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    Proc(child)
}

/// The recordings `/api/recordings` lists.
fn recordings(http: SocketAddr) -> Vec<serde_json::Value> {
    let r = get(http, "/api/recordings").expect("GET /api/recordings");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// Waits for the one recording of `app/name` to be listed as ended.
fn ended_recording(http: SocketAddr, app: &str, name: &str) -> serde_json::Value {
    poll(Duration::from_secs(20), || {
        recordings(http)
            .into_iter()
            .find(|r| r["app"] == app && r["name"] == name && r["ended"] == true)
    })
    .unwrap_or_else(|| panic!("no ended recording of {app}/{name}: {:?}", recordings(http)))
}

/// Seconds of video ffmpeg decodes from `file` (last frame's end), failing on decode errors.
fn decoded_video_secs(file: &Path) -> f64 {
    let out = Command::new(tools::ffprobe())
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,duration_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe failed on {}", file.display());
    let times: Vec<(f64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((it.next()?.parse().ok()?, it.next()?.parse().unwrap_or(0.0)))
        })
        .collect();
    assert!(!times.is_empty(), "no video packets in {}", file.display());
    let first = times.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
    let last = times.iter().map(|t| t.0 + t.1).fold(0.0, f64::max);
    // And every frame decodes.
    let decode = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let errors = String::from_utf8_lossy(&decode.stderr);
    assert!(
        decode.status.success() && errors.trim().is_empty(),
        "ffmpeg could not decode {}: {errors}",
        file.display()
    );
    last - first
}

/// A hook receiver: every POST body, answered 204.
fn hook_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = BufReader::new(stream);
            let mut len = 0;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    seen.lock().unwrap().push(v);
                }
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, got)
}

/// A POST with an optional bearer token: (status, body).
fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    common::http::call(addr, "POST", path, token)
}

#[test]
fn a_publish_is_recorded_decodes_at_its_length_and_plays_as_vod() {
    tools::browser_dir();
    let dir = temp_dir("vod");
    let (hook, hooked) = hook_server();
    let mut config = test_config();
    config.record.dir = dir.clone();
    config.record.hook = hook;
    config.record.apps.insert(
        "live".into(),
        packgate::config::AppRecordConfig {
            enabled: true,
            ..Default::default()
        },
    );
    let (_rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    let mut encoder = publish_generated(rtmp, "live", "show", PUBLISH_SECS);
    assert_eq!(
        encoder.wait_for(Duration::from_secs(u64::from(PUBLISH_SECS) + 20)),
        Some(true),
        "ffmpeg published"
    );
    let rec = ended_recording(http, "live", "show");
    assert_eq!(rec["how"], "stopped", "{rec}");
    assert_eq!(rec["renditions"], serde_json::json!(["src"]), "{rec}");
    let start = rec["start"].as_str().unwrap().to_string();
    let recdir = dir.join("live/show").join(&start).join("src");

    // The file as written decodes, at the published length within a segment (2 s).
    let secs = decoded_video_secs(&recdir.join("video-0.mp4"));
    eprintln!("recorded video: {secs:.3} s of {PUBLISH_SECS} s published");
    assert!(
        (secs - f64::from(PUBLISH_SECS)).abs() <= 2.0,
        "recording is {secs} s, published {PUBLISH_SECS} s"
    );
    let listed = rec["duration"].as_f64().unwrap();
    assert!((listed - f64::from(PUBLISH_SECS)).abs() <= 2.0, "{rec}");

    // The hook heard of both track files and of the combined one.
    let calls = poll(Duration::from_secs(20), || {
        let calls = hooked.lock().unwrap().clone();
        (calls.len() >= 3).then_some(calls)
    })
    .expect("three hook calls");
    let mut tracks: Vec<_> = calls
        .iter()
        .map(|c| c["track"].as_str().unwrap().to_string())
        .collect();
    tracks.sort();
    assert_eq!(tracks, ["audio", "av", "video"], "{calls:?}");

    // One file with both tracks: two streams, the published length, every frame decodes.
    let av = recdir.join("av-0.mp4");
    let streams = Command::new(tools::ffprobe())
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(&av)
        .output()
        .expect("run ffprobe");
    let kinds = String::from_utf8_lossy(&streams.stdout);
    let mut kinds: Vec<&str> = kinds.lines().map(str::trim).collect();
    kinds.sort();
    assert_eq!(kinds, ["audio", "video"], "streams of {}", av.display());
    let av_secs = decoded_video_secs(&av);
    assert!(
        (av_secs - secs).abs() < 0.1,
        "combined file {av_secs} s, video track file {secs} s"
    );
    // Served whole and by ranges, byte for byte.
    let on_disk = std::fs::read(&av).unwrap();
    let av_url = format!("/live/show/vod/{start}/src/av-0.mp4");
    let whole = get(http, &av_url).unwrap();
    assert_eq!(whole.status, 200);
    assert!(whole.body == on_disk, "whole file differs");
    let part = request_with(http, "GET", &av_url, &[("Range", "bytes=100-199")]).unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", on_disk.len()).as_str())
    );
    assert!(part.body == on_disk[100..200]);
    let past = format!("bytes={}-", on_disk.len());
    let past = request_with(http, "GET", &av_url, &[("Range", past.as_str())]).unwrap();
    assert_eq!(past.status, 416);
    assert!(calls
        .iter()
        .all(|c| c["event"] == "recording_file" && c["start"] == start.as_str()));
    let video = calls.iter().find(|c| c["track"] == "video").unwrap();
    assert_eq!(
        video["bytes"].as_u64(),
        Some(std::fs::metadata(recdir.join("video-0.mp4")).unwrap().len())
    );

    // VOD playlists.
    let base = format!("/live/show/vod/{start}");
    let media = get(http, &format!("{base}/src/video.m3u8")).unwrap().text();
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{media}");
    assert!(media.trim_end().ends_with("#EXT-X-ENDLIST"), "{media}");
    let mpd = get(http, &format!("{base}/index.mpd")).unwrap().text();
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    let first = get(http, &format!("{base}/src/video/0-0.m4s")).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("video/mp4"));
    assert_eq!(
        get(http, &format!("{base}/src/video/0-999.m4s"))
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        get(http, "/live/show/vod/20000101T000000Z/index.m3u8")
            .unwrap()
            .status,
        404
    );

    // ffmpeg reads the VOD playlist to its end.
    let out = Command::new(tools::ffprobe())
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("http://{http}{base}/index.m3u8"))
        .output()
        .unwrap();
    let vod_secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(
        (vod_secs - f64::from(PUBLISH_SECS)).abs() <= 2.0,
        "VOD playlist lasts {vod_secs} s"
    );

    // Both players play it, and a plain <video> plays the combined file.
    let hls_url = format!("http://{http}{base}/index.m3u8");
    let dash_url = format!("http://{http}{base}/index.mpd");
    let hls = std::thread::spawn(move || browser::play(&hls_url, "hls", 8, &[]));
    let dash = browser::play(&dash_url, "dash", 8, &[]);
    let hls = hls.join().unwrap();
    browser::assert_played(&hls, 320, 240);
    browser::assert_played(&dash, 320, 240);
    let native = browser::play(&format!("http://{http}{av_url}"), "native", 6, &[]);
    browser::assert_played(&native, 320, 240);
    let shown = native["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (shown - secs).abs() < 0.5,
        "<video> shows {shown} s for a {secs} s recording: {native}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_start_stop_needs_the_token_and_an_unwritable_disk_leaves_live_alone() {
    // No token configured: refused.
    let (_rt0, open) = start(test_config());
    assert_eq!(
        post(open.http_addr, "/api/recordings/live/x/start", Some("t")).0,
        403
    );

    let dir = temp_dir("api");
    let mut config = test_config();
    config.record.dir = dir.clone();
    config.api.token = "s3cret".into();
    let (_rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    assert_eq!(post(http, "/api/recordings/live/api/start", None).0, 401);
    assert_eq!(
        post(http, "/api/recordings/live/api/start", Some("wrong")).0,
        401
    );
    assert_eq!(
        post(http, "/api/recordings/live/api/stop", Some("s3cret")).0,
        404
    );
    let (status, body) = post(http, "/api/recordings/live/api/start", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    // A stream nobody asked to record is not recorded.
    let _other = publish_generated(rtmp, "live", "other", 30);
    let _encoder = publish_generated(rtmp, "live", "api", 30);
    let index = poll(Duration::from_secs(20), || {
        let start = std::fs::read_dir(dir.join("live/api"))
            .ok()?
            .flatten()
            .next()?;
        let index = start.path().join("src/video.jsonl");
        let text = std::fs::read_to_string(&index).ok()?;
        (text.lines().count() >= 3).then_some(index)
    })
    .expect("segments recorded");
    let (status, body) = post(http, "/api/recordings/live/api/stop", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let rec = ended_recording(http, "live", "api");
    assert_eq!(rec["how"], "stopped");
    // Stopped: the index stops growing while the stream goes on.
    let lines = std::fs::read_to_string(&index).unwrap().lines().count();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        std::fs::read_to_string(&index).unwrap().lines().count(),
        lines
    );
    assert!(
        !dir.join("live/other").exists(),
        "only the requested ladder is recorded"
    );

    // A recording directory that cannot be created: the live output is unaffected.
    let blocker = temp_dir("blocker");
    std::fs::write(&blocker, b"a file, not a directory").unwrap();
    let mut config = test_config();
    config.record.dir = blocker.join("sub");
    config.record.apps.insert(
        "live".into(),
        packgate::config::AppRecordConfig {
            enabled: true,
            ..Default::default()
        },
    );
    let (_rt2, broken) = start(config);
    let _enc = publish_generated(broken.rtmp_addr, "live", "disk", 30);
    let playlist = poll(Duration::from_secs(20), || {
        let r = get(broken.http_addr, "/live/disk/src/video.m3u8").ok()?;
        let text = r.text();
        (r.status == 200 && text.matches("#EXTINF").count() >= 3).then_some(text)
    })
    .expect("live playlist keeps growing without a writable disk");
    assert!(playlist.contains("#EXTINF"));
    let metrics = get(broken.http_addr, "/metrics").unwrap().text();
    let errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("packgate_record_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "write errors counted: {metrics}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&blocker);
}

/// The real binary; returns it with its RTMP and HTTP addresses (from its log).
fn spawn_binary(config_file: &Path) -> (Proc, SocketAddr, SocketAddr) {
    let (proc, logs) = binary::spawn(config_file);
    let seen = binary::until_listening(&logs);
    let line = seen.last().unwrap();
    let addr = |key| binary::addr(line, key).expect("address logged");
    (proc, addr("rtmp_addr"), addr("http_addr"))
}

#[test]
fn kill_9_mid_recording_leaves_readable_files_and_the_restart_closes_them() {
    let dir = temp_dir("kill");
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("packgate.toml");
    let (hook, hooked) = hook_server();
    std::fs::write(
        &config_file,
        format!(
            "[rtmp]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n[record]\ndir = \"{}\"\nhook = \"{hook}\"\n[record.apps.live]\nenabled = true\n",
            dir.join("rec").display()
        ),
    )
    .unwrap();
    let (mut packgate, rtmp, _) = spawn_binary(&config_file);
    let _encoder = publish_generated(rtmp, "live", "crash", 60);
    let rdir = poll(Duration::from_secs(25), || {
        let start = std::fs::read_dir(dir.join("rec/live/crash"))
            .ok()?
            .flatten()
            .next()?;
        let rdir = start.path().join("src");
        let text = std::fs::read_to_string(rdir.join("video.jsonl")).ok()?;
        (text.lines().count() >= 5).then_some(rdir)
    })
    .expect("segments recorded");
    assert!(packgate.signal("KILL"), "SIGKILL delivered");
    packgate.wait_for(Duration::from_secs(5));

    // As the kill left it: ffmpeg reads the file.
    let secs = decoded_video_secs(&rdir.join("video-0.mp4"));
    assert!(secs >= 6.0, "only {secs} s readable after the kill");
    let recdir = rdir.parent().unwrap().to_path_buf();
    assert!(!recdir.join("ended.json").exists());

    // A restart closes it: listed as interrupted, ENDLIST, files cut to whole segments.
    let (_again, _, http) = spawn_binary(&config_file);
    let rec = ended_recording(http, "live", "crash");
    assert_eq!(rec["how"], "interrupted", "{rec}");
    let start = rec["start"].as_str().unwrap();
    let media = get(http, &format!("/live/crash/vod/{start}/src/video.m3u8"))
        .unwrap()
        .text();
    assert!(media.trim_end().ends_with("#EXT-X-ENDLIST"), "{media}");
    let after = decoded_video_secs(&rdir.join("video-0.mp4"));
    assert!(
        (after - rec["duration"].as_f64().unwrap()).abs() <= 0.5,
        "{after} vs {rec}"
    );
    // The hook hears of the files the restart completed.
    let calls = poll(Duration::from_secs(10), || {
        let calls = hooked.lock().unwrap().clone();
        (calls.len() >= 2).then_some(calls)
    })
    .expect("hook calls after the restart");
    let video = calls
        .iter()
        .find(|c| c["track"] == "video")
        .expect("video file");
    assert_eq!(
        video["bytes"].as_u64(),
        Some(std::fs::metadata(rdir.join("video-0.mp4")).unwrap().len())
    );
    // The interrupted recording also becomes one file with both tracks.
    poll(Duration::from_secs(20), || {
        let calls = hooked.lock().unwrap().clone();
        calls.iter().any(|c| c["track"] == "av").then_some(())
    })
    .expect("the combined file announced after the restart");
    let combined = decoded_video_secs(&rdir.join("av-0.mp4"));
    assert!(
        (combined - after).abs() < 0.1,
        "combined {combined} s, video {after} s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hls_js_seeks_60_s_back_in_a_dvr_window_and_plays() {
    tools::browser_dir();
    let dir = temp_dir("dvr");
    let mut config = test_config();
    config.record.dvr_dir = dir.clone();
    config.record.apps.insert(
        "live".into(),
        packgate::config::AppRecordConfig {
            dvr_window: "5m".into(),
            ..Default::default()
        },
    );
    let (_rt, server) = start(config);
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    // 80 s of media at once, then real time: a DVR window to seek in without waiting.
    let _encoder = Proc(
        Command::new(tools::ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-readrate", "1", "-readrate_initial_burst", "80"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "140", "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30"])
            .args([
                "-sc_threshold",
                "0",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-f",
                "flv",
            ])
            .arg(format!("rtmp://{rtmp}/live/dvr"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    let playlist = poll(Duration::from_secs(40), || {
        let text = get(http, "/live/dvr/src/video.m3u8").ok()?.text();
        (text.matches("#EXTINF").count() >= 40).then_some(text)
    })
    .expect("80 s listed in the DVR window");
    // The oldest listed segment comes from the disk tier.
    let first = playlist
        .lines()
        .find(|l| l.ends_with(".m4s") && !l.contains("part-"))
        .unwrap();
    let seq = first.trim_start_matches("video/").trim_end_matches(".m4s");
    assert!(
        dir.join(format!("live/dvr/src/video/{seq}.m4s")).exists(),
        "{first} spilled to disk"
    );
    let old = get(http, &format!("/live/dvr/src/{first}")).unwrap();
    assert_eq!(old.status, 200);
    assert!(old.body.len() > 1000);
    // A delta update skips the old segments.
    let delta = get(http, "/live/dvr/src/video.m3u8?_HLS_skip=YES")
        .unwrap()
        .text();
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    let mpd = get(http, "/live/dvr/index.mpd").unwrap().text();
    let depth: f64 = mpd
        .split("timeShiftBufferDepth=\"PT")
        .nth(1)
        .and_then(|r| r.split('S').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(depth >= 70.0, "timeShiftBufferDepth {depth}");
    // The TS feed has the DVR window too; its old segments come from the disk tier.
    let ts = get(http, "/live/dvr/src/ts.m3u8").unwrap().text();
    assert!(ts.matches("#EXTINF").count() >= 38, "{ts}");
    let first_ts = ts.lines().find(|l| l.ends_with(".ts")).unwrap();
    let seq = first_ts.trim_start_matches("ts/").trim_end_matches(".ts");
    assert!(
        dir.join(format!("live/dvr/src/ts/{seq}.m4s")).exists(),
        "{first_ts} spilled to disk"
    );
    let old_ts = get(http, &format!("/live/dvr/src/{first_ts}")).unwrap();
    assert_eq!(old_ts.status, 200);
    assert_eq!(old_ts.body[0], 0x47, "an MPEG-TS packet");

    // hls.js (its defaults: low-latency mode, delta updates) seeks 60 s back and plays.
    let url = format!("http://{http}/live/dvr/index.m3u8");
    let r = browser::play(&url, "hls", 8, &["--hls-config", "{}", "--seek-back", "60"]);
    assert_eq!(r["fatal"].as_array().map(Vec::len), Some(0), "{r}");
    let seek = &r["seek"];
    let offered = seek["end"].as_f64().unwrap() - seek["start"].as_f64().unwrap();
    assert!(offered >= 70.0, "seekable range only {offered} s: {r}");
    assert!(r["advanced"].as_f64().unwrap() >= 8.0 * 0.8, "{r}");
    let behind = seek["after"]["seekableEnd"].as_f64().unwrap()
        - seek["after"]["currentTime"].as_f64().unwrap();
    assert!(
        (45.0..=80.0).contains(&behind),
        "{behind} s behind live: {r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Issue 9 end to end: the media clock under every timestamp an encoder produces. Jumps,
//! wraps and far-future frames are sent by a retimed RTMP publisher (tests/common/retime.rs)
//! playing ffmpeg-made FLVs; keyframe-less and looped streams come from ffmpeg itself.
//! Every playlist fetched is parsed with m3u8-rs.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::get;
use common::retime::{publish_retimed, Tag};
use common::{long_sample, poll, publish, start, test_config, tools};
use m3u8_rs::{MediaPlaylist, Playlist};

fn media(text: &str) -> MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

/// What a stream's video playlist said over a watch.
#[derive(Debug, Default)]
struct Watch {
    target_durations: Vec<u64>,
    /// Segment number -> (EXTINF, starts a discontinuity).
    segments: BTreeMap<u64, (f32, bool)>,
    fetches: usize,
    independent_claimed: Vec<bool>,
}

impl Watch {
    fn newest(&self) -> u64 {
        self.segments.keys().next_back().copied().unwrap_or(0)
    }
    fn discontinuities(&self) -> Vec<u64> {
        self.segments
            .iter()
            .filter(|(_, (_, d))| *d)
            .map(|(s, _)| *s)
            .collect()
    }
}

/// Fetches `path` every 250 ms for `secs`, parsing each answer.
fn watch(http: std::net::SocketAddr, path: &str, secs: u64) -> Watch {
    let mut w = Watch::default();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(r) = get(http, path) {
            if r.status == 200 {
                let text = r.text();
                let p = media(&text);
                w.fetches += 1;
                w.target_durations.push(p.target_duration);
                w.independent_claimed
                    .push(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
                for (i, s) in p.segments.iter().enumerate() {
                    let seq = p.media_sequence + i as u64;
                    let e = w.segments.entry(seq).or_insert((s.duration, false));
                    e.1 |= s.discontinuity;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    w
}

/// The common rules: playlists answered, TARGETDURATION 2 on every fetch, every EXTINF
/// rounding to at most it, and `after` more segments after the segment numbered `from`.
fn assert_sound(w: &Watch, from: u64, after: u64) {
    assert!(w.fetches >= 10, "only {} playlist fetches", w.fetches);
    assert!(
        w.target_durations.iter().all(|&t| t == 2),
        "TARGETDURATION changed: {:?}",
        w.target_durations
    );
    for (seq, (d, _)) in &w.segments {
        assert!(d.round() <= 2.0, "segment {seq} lasts {d} s: {w:?}");
        assert!(*d > 0.0, "segment {seq} empty");
    }
    assert!(
        w.newest() >= from + after,
        "segments stopped: newest {} (wanted {} after {from}): {w:?}",
        w.newest(),
        after
    );
}

/// Waits for the first media playlist of `name`, returns its newest segment number.
fn wait_live(http: std::net::SocketAddr, path: &str) -> u64 {
    poll(Duration::from_secs(20), || {
        let r = get(http, path).ok().filter(|r| r.status == 200)?;
        let p = media(&r.text());
        Some(p.media_sequence + p.segments.len() as u64)
    })
    .unwrap_or_else(|| panic!("{path} never became available"))
}

fn source() -> PathBuf {
    long_sample(40)
}

#[test]
fn jump_back_by_a_minute_reanchors_with_a_discontinuity() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // Starts at 100 s; after 7 s of media every timestamp is a minute earlier.
    let _p = publish_retimed(server.rtmp_addr, "live", "back", &source(), 30, |t: Tag| {
        let ms = 100_000 + t.media_ms;
        Some(if t.media_ms >= 7000 { ms - 60_000 } else { ms } as u32)
    });
    let path = "/live/back/src/video.m3u8";
    wait_live(http, path);
    let w = watch(http, path, 18);
    let d = w.discontinuities();
    assert!(
        !d.is_empty(),
        "no EXT-X-DISCONTINUITY after the jump: {w:?}"
    );
    assert_sound(&w, d[0], 4);
    // Durations stay true across the jump: the segment it falls in is an ordinary one.
    let before = w.segments[&(d[0] - 1)].0;
    assert!(
        before >= 0.9,
        "segment before the discontinuity lasts {before} s"
    );
}

#[test]
fn forward_jump_of_an_hour_keeps_the_target_duration() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _p = publish_retimed(server.rtmp_addr, "live", "fwd", &source(), 30, |t: Tag| {
        Some(if t.media_ms >= 7000 {
            t.media_ms + 3_600_000
        } else {
            t.media_ms
        } as u32)
    });
    let path = "/live/fwd/src/video.m3u8";
    wait_live(http, path);
    let w = watch(http, path, 18);
    let d = w.discontinuities();
    assert!(
        !d.is_empty(),
        "no EXT-X-DISCONTINUITY after the jump: {w:?}"
    );
    assert_sound(&w, d[0], 4);
    let audio = media(&get(http, "/live/fwd/src/audio.m3u8").unwrap().text());
    assert_eq!(audio.target_duration, 2);
    assert!(audio.segments.iter().all(|s| s.duration.round() <= 2.0));
}

#[test]
fn crossing_the_31_bit_wrap_is_continuous() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // ffmpeg's and OBS's FLV muxers keep 31 bits: about 24.86 days in, 2^31 - 1 ms is
    // followed by 0. Start 6 s before that.
    let base: u64 = (1 << 31) - 6000;
    let _p = publish_retimed(
        server.rtmp_addr,
        "live",
        "wrap",
        &source(),
        30,
        move |t: Tag| Some(((base + t.media_ms) & 0x7fff_ffff) as u32),
    );
    let path = "/live/wrap/src/video.m3u8";
    let first = wait_live(http, path);
    let w = watch(http, path, 18);
    assert_sound(&w, first, 5);
    assert!(
        w.discontinuities().is_empty(),
        "the wrap is no discontinuity: {w:?}"
    );
}

#[test]
fn a_far_future_keyframe_from_one_rung_does_not_stop_the_ladder() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let good = publish_retimed(server.rtmp_addr, "live", "ff_720p", &source(), 30, |t| {
        Some(t.media_ms as u32)
    });
    // The other rung sends its keyframe at 5 s stamped a day ahead, then leaves at 9 s.
    let bad = publish_retimed(server.rtmp_addr, "live", "ff_360p", &source(), 9, |t| {
        let day = if t.keyframe && (4000..6100).contains(&t.media_ms) {
            86_400_000
        } else {
            0
        };
        Some((t.media_ms + day) as u32)
    });
    let path = "/live/ff/720p/video.m3u8";
    wait_live(http, path);
    let w = watch(http, path, 20);
    assert!(!bad.running(), "the bad rung left");
    assert!(good.running());
    // The good rung kept cutting ~2 s segments after the bad keyframe (at ~5 s).
    let first = *w.segments.keys().next().unwrap();
    assert_sound(&w, first, 6);
    let long = w.segments.values().filter(|(d, _)| *d > 2.2).count();
    assert_eq!(long, 0, "{w:?}");
}

/// An FLV made once with ffmpeg: `secs` of 640x360 30 fps H.264 with a keyframe every
/// `gop` frames (no scene-cut keyframes), and AAC.
fn made_sample(name: &str, secs: &str, gop: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}.flv"));
    if !path.exists() {
        let partial = dir.join(format!("{name}.{}.tmp.flv", std::process::id()));
        let ok = Command::new(tools::ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", secs, "-c:v", "libx264", "-preset", "superfast"])
            .args(["-g", gop, "-keyint_min", gop, "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-f", "flv"])
            .arg(&partial)
            .status()
            .expect("ffmpeg")
            .success();
        assert!(ok, "could not make {name}");
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

#[test]
fn no_keyframe_after_the_first_cuts_bounded_segments_and_reports_it() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _p = publish(
        server.rtmp_addr,
        "live",
        "nokey",
        &made_sample("one_keyframe_30s", "30", "100000"),
        0,
    );
    let path = "/live/nokey/src/video.m3u8";
    let first = wait_live(http, path);
    let w = watch(http, path, 14);
    assert_sound(&w, first, 4);
    // Segments after the first start between keyframes: no longer claimed independent.
    assert!(
        !w.independent_claimed.last().unwrap(),
        "EXT-X-INDEPENDENT-SEGMENTS claimed"
    );
    // Memory stays bounded: every segment is about 2.5 s of media at most.
    let newest = w.newest();
    let seg = get(http, &format!("/live/nokey/src/video/{newest}.m4s")).unwrap();
    assert_eq!(seg.status, 200);
    assert!(
        seg.body.len() < 4 << 20,
        "segment of {} bytes",
        seg.body.len()
    );
    let api: serde_json::Value =
        serde_json::from_slice(&get(http, "/api/streams/live/nokey").unwrap().body).unwrap();
    assert_eq!(api["renditions"][0]["keyframe_overdue"], true, "{api}");
}

#[test]
fn a_looped_clip_never_changes_the_target_duration() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // A 15.02 s clip with a 2 s GOP: looping it leaves a 1.02 s GOP at every loop point.
    let clip = made_sample("clip_15_02", "15.02", "60");
    let _p = publish(server.rtmp_addr, "live", "loop", &clip, -1);
    let path = "/live/loop/src/video.m3u8";
    let first = wait_live(http, path);
    // Two loop points (15 s and 30 s of media).
    let w = watch(http, path, 34);
    assert_sound(&w, first, 12);
}

/// ffmpeg decodes 6 s of `/live/{name}/index.m3u8` without an error or a DTS complaint.
fn assert_ffmpeg_reads_cleanly(http: std::net::SocketAddr, name: &str) {
    let out = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-v", "error", "-nostdin"])
        .arg("-i")
        .arg(format!("http://{http}/live/{name}/index.m3u8"))
        .args(["-t", "6", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("non monotonically increasing dts"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
}

#[test]
fn b_frames_read_back_by_ffmpeg_without_dts_errors() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _p = publish_retimed(server.rtmp_addr, "live", "bfr", &source(), 30, |t| {
        Some(t.media_ms as u32)
    });
    wait_live(http, "/live/bfr/src/video.m3u8");
    std::thread::sleep(Duration::from_secs(4));
    assert_ffmpeg_reads_cleanly(http, "bfr");

    // What a player reads as the keyframe's presentation time is where the playlist puts
    // the segment: its decode start (tfdt), which PROGRAM-DATE-TIME and DASH S@t date.
    let pl = media(&get(http, "/live/bfr/src/video.m3u8").unwrap().text());
    let seg = pl.segments.last().unwrap();
    let init_uri = pl
        .segments
        .iter()
        .rev()
        .find_map(|s| s.map.as_ref())
        .expect("EXT-X-MAP")
        .uri
        .clone();
    let init = get(http, &format!("/live/bfr/src/{init_uri}"))
        .unwrap()
        .body;
    let data = get(http, &format!("/live/bfr/src/{}", seg.uri))
        .unwrap()
        .body;
    let tfdt = common::mp4::base_decode_time(&data) as f64 / 90_000.0;
    let file =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bfr_{}.mp4", std::process::id()));
    std::fs::write(&file, [init, data].concat()).unwrap();
    let probe = Command::new(tools::ffprobe())
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&probe.stdout);
    let key_pts: f64 = text
        .lines()
        .find(|l| l.contains('K'))
        .and_then(|l| l.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no keyframe in {text}"));
    assert!(
        (key_pts - tfdt).abs() < 0.002,
        "keyframe shown at {key_pts}, segment starts at {tfdt}"
    );
}

#[test]
fn frames_sharing_a_timestamp_are_spread_and_read_back_without_dts_errors() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // Every fourth video frame is stamped with its predecessor's millisecond (or one
    // before it), as a live encoder under load does; the frame after it is on time.
    let _p = publish_retimed(server.rtmp_addr, "live", "tie", &source(), 30, |t| {
        let ms = t.media_ms as u32;
        let tied = t.kind == 9 && !t.keyframe && (t.media_ms * 3 / 100) % 4 == 1;
        Some(if tied { ms - 34 } else { ms })
    });
    wait_live(http, "/live/tie/src/video.m3u8");
    std::thread::sleep(Duration::from_secs(4));
    assert_ffmpeg_reads_cleanly(http, "tie");
    // No sample shorter than a millisecond: the tied frames got their share of the time.
    let pl = media(&get(http, "/live/tie/src/video.m3u8").unwrap().text());
    let seg = pl.segments.last().unwrap();
    let data = get(http, &format!("/live/tie/src/{}", seg.uri))
        .unwrap()
        .body;
    let durations = common::mp4::sample_durations(&data);
    assert!(durations.len() >= 30, "{durations:?}");
    assert!(
        durations.iter().all(|&d| d >= 90),
        "a sample under 1 ms: {durations:?}"
    );
}

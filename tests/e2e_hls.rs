//! Issue 2 end to end: ffmpeg publishes over RTMP, we read CMAF HLS back with m3u8-rs,
//! our own box walker, ffmpeg's decoder and hls.js in headless Chromium.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::http::get;
use common::{poll, publish, sample, start, test_config, tools};
use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};

fn master(text: &str) -> MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MasterPlaylist(p)) => p,
        other => panic!("not a master playlist: {other:?}\n{text}"),
    }
}

fn media(text: &str) -> MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

#[test]
fn ffmpeg_publish_reads_back_as_cmaf_hls() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;

    // Unknown streams are a 404 at once, not a hang.
    let t = Instant::now();
    let r = get(http, "/live/nobody/index.m3u8").unwrap();
    assert_eq!(r.status, 404);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(r.text().contains("not live"), "{}", r.text());

    let started = Instant::now();
    let mut ffmpeg = publish(
        server.rtmp_addr,
        "live",
        "show",
        &sample("h264_aac_640x360.flv"),
        0,
    );
    let first = poll(Duration::from_secs(20), || {
        get(http, "/live/show/index.m3u8")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("master playlist within 20 s of publishing");
    let time_to_first = started.elapsed();
    eprintln!("time from publish to first playable segment: {time_to_first:?}");
    assert_eq!(
        first.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(first.header("access-control-allow-origin"), Some("*"));
    assert_eq!(first.header("cache-control"), Some("public, max-age=1"));

    assert_eq!(
        ffmpeg.wait_for(Duration::from_secs(40)),
        Some(true),
        "ffmpeg publish failed"
    );
    // The end of the stream reaches the playlists.
    let video = poll(Duration::from_secs(5), || {
        let r = get(http, "/live/show/src/video.m3u8").ok()?;
        let p = media(&r.text());
        p.end_list.then_some((p, r))
    })
    .expect("video playlist ends with EXT-X-ENDLIST after unpublish");
    let (video, video_resp) = video;
    let vtext = video_resp.text();
    for tag in [
        "#EXT-X-VERSION:9", // LL-HLS is on by default; EXT-X-SKIP needs version 9
        "#EXT-X-MAP:URI=",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ] {
        assert!(vtext.contains(tag), "video playlist lacks {tag}:\n{vtext}");
    }
    assert!(
        vtext
            .lines()
            .any(|l| l.starts_with("#EXTINF:") && l.len() == "#EXTINF:2.000,".len()),
        "EXTINF not in ms precision:\n{vtext}"
    );

    let m = master(&get(http, "/live/show/index.m3u8").unwrap().text());
    assert_eq!(m.variants.len(), 1);
    let v = &m.variants[0];
    let codecs = v.codecs.as_deref().unwrap_or_default();
    assert!(
        codecs.starts_with("avc1.64") && codecs.contains("mp4a.40.2"),
        "CODECS={codecs}"
    );
    let res = v.resolution.expect("RESOLUTION");
    assert_eq!((res.width, res.height), (640, 360));
    assert_eq!(v.frame_rate, Some(30.0));
    assert!(
        v.bandwidth > 100_000 && v.bandwidth < 5_000_000,
        "BANDWIDTH={}",
        v.bandwidth
    );
    assert_eq!(v.audio.as_deref(), Some("audio"));
    assert_eq!(m.alternatives.len(), 1);
    assert_eq!(m.alternatives[0].channels.as_deref(), Some("2"));

    let audio = media(&get(http, "/live/show/src/audio.m3u8").unwrap().text());
    assert!(audio.end_list);
    assert_eq!(
        video.media_sequence, audio.media_sequence,
        "tracks share sequence numbers"
    );
    assert_eq!(video.segments.len(), audio.segments.len());
    assert!(
        video.segments.len() >= 5,
        "12 s at 2 s GOP gives ≥ 5 segments, got {}",
        video.segments.len()
    );

    // Segments are about 2 s (the last may be shorter) and each starts with an IDR.
    let n = video.segments.len();
    for (i, seg) in video.segments.iter().enumerate() {
        if i + 1 < n {
            assert!(
                (seg.duration - 2.0).abs() < 0.05,
                "segment {i} lasts {}",
                seg.duration
            );
        }
        let r = get(http, &format!("/live/show/src/{}", seg.uri)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("video/mp4"));
        assert!(r
            .header("cache-control")
            .unwrap_or("")
            .contains("immutable"));
        assert_eq!(&r.body[4..8], b"styp");
        let nals = common::mp4::first_sample_nal_types(&r.body);
        assert!(
            nals.contains(&5),
            "segment {} does not start with an IDR: NAL types {nals:?}",
            seg.uri
        );
    }
    let init = get(
        http,
        &format!(
            "/live/show/src/{}",
            video.segments[0].map.as_ref().unwrap().uri
        ),
    )
    .unwrap();
    assert_eq!(init.status, 200);
    assert!(common::mp4::find(&init.body, b"moov").is_some());

    // Audio and video cover the same time.
    let vsum: f64 = video.segments.iter().map(|s| f64::from(s.duration)).sum();
    let asum: f64 = audio.segments.iter().map(|s| f64::from(s.duration)).sum();
    assert!(
        (vsum - asum).abs() < 0.1,
        "video {vsum} s vs audio {asum} s"
    );
    let vstart = common::mp4::base_decode_time(
        &get(http, &format!("/live/show/src/{}", video.segments[1].uri))
            .unwrap()
            .body,
    ) as f64
        / 90_000.0;
    let astart = common::mp4::base_decode_time(
        &get(http, &format!("/live/show/src/{}", audio.segments[1].uri))
            .unwrap()
            .body,
    ) as f64
        / 44_100.0;
    assert!(
        (vstart - astart).abs() < 0.03,
        "segment starts differ: video {vstart} audio {astart}"
    );

    // ffmpeg decodes the whole thing with no error line.
    let out = Command::new(tools::ffmpeg())
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(format!("http://{http}/live/show/index.m3u8"))
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg decode errors:\n{errors}"
    );

    // ffprobe agrees on the stream facts and that audio and video durations match.
    let probe = Command::new(tools::ffprobe())
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("http://{http}/live/show/index.m3u8"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(text.contains("video,640,360"), "ffprobe: {text}");
    assert!(
        text.lines().any(|l| l.starts_with("audio")),
        "ffprobe sees no audio: {text}"
    );

    let api = get(http, "/api/streams").unwrap();
    assert_eq!(api.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(json["streams"][0]["name"], "show");
    assert_eq!(json["streams"][0]["renditions"][0]["width"], 640);

    let metrics = get(http, "/metrics").unwrap().text();
    assert!(metrics.contains("packgate_segments_total"), "{metrics}");
    drop(ffmpeg);
}

#[test]
fn hls_js_plays_in_headless_chromium() {
    tools::browser_dir();
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _ffmpeg = common::publish_and_wait(
        &server,
        "browser",
        "h264_aac_640x360.flv",
        -1,
        "/live/browser/index.m3u8",
    );
    let r = common::browser::play(
        &format!("http://{http}/live/browser/index.m3u8"),
        "hls",
        10,
        &[],
    );
    common::browser::assert_played(&r, 640, 360);
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("packgate-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[segment]\nwindow = 1\n", "segment.window"),
        ("[segment]\ntarget_duraton = 2\n", "target_duraton"),
        ("[rtmp]\nlisten = \"nope\"\n", "listen"),
        ("[http\n", "config file"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_packgate"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(key),
            "message for {text:?} does not name {key}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gstreamer_rtmp2sink_publishes() {
    let gst = tools::gst_launch();
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    // 10 s of 640x360 H.264 (2 s GOP) + AAC, live-paced, then EOS.
    let pipeline = format!(
        "videotestsrc is-live=true num-buffers=300 ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
         ! x264enc tune=zerolatency key-int-max=60 bitrate=600 ! h264parse ! queue ! flvmux name=m streamable=true \
         ! rtmp2sink location=rtmp://{}/live/gst \
         audiotestsrc is-live=true num-buffers=430 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! queue ! m.",
        server.rtmp_addr
    );
    let mut child = common::Proc(
        Command::new(gst)
            .arg("-q")
            .args(pipeline.split_whitespace())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn gst-launch-1.0"),
    );
    assert_eq!(
        child.wait_for(Duration::from_secs(40)),
        Some(true),
        "gst-launch-1.0 failed"
    );
    let video = poll(Duration::from_secs(5), || {
        let p = media(&get(http, "/live/gst/src/video.m3u8").ok()?.text());
        p.end_list.then_some(p)
    })
    .expect("GStreamer's stream ends with EXT-X-ENDLIST");
    assert!(
        video.segments.len() >= 4,
        "{} segments",
        video.segments.len()
    );
    let m = master(&get(http, "/live/gst/index.m3u8").unwrap().text());
    assert_eq!(
        m.variants[0].codecs.as_deref(),
        Some("avc1.64001e,mp4a.40.2")
    );
    // Decoded frames keep the stream's own 90 kHz times (DTS must still strictly increase
    // at that resolution): a live encoder starved of CPU stamps frames closer than 1/30 s
    // after a stall, which is valid, but in ffmpeg's default 1/30 s encoder time base two
    // of them collide and it reports a "non monotonically increasing dts" that is not in
    // the stream (seen on a loaded machine with the binary before and after the change).
    let out = Command::new(tools::ffmpeg())
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(format!("http://{http}/live/gst/index.m3u8"))
        .args(["-fps_mode", "passthrough", "-enc_time_base:v", "demux"])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Issue 13 end to end: ffmpeg 9 encodes HEVC, AV1 and VP9 (with AAC or Opus) live and
//! publishes them over Enhanced RTMP; the master playlists and MPD must carry the codec
//! strings derived from the bitstream, ffmpeg must decode the HLS output without an error
//! line, and hls.js in headless Chromium must play AV1 + Opus.
//!
//! Encoders used (all in imageio-ffmpeg's ffmpeg 9 build): libx265, libsvtav1,
//! libvpx-vp9, aac, libopus. The clips are 320x240 testsrc at 30 fps in yuv420p with a
//! fixed 2 s GOP, so the levels (and so the expected strings) are fixed too.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::get;
use common::{poll, start, test_config, tools, Proc};
use m3u8_rs::{MasterPlaylist, Playlist};

/// Encodes 320x240 testsrc + a sine live with `video` / `audio` codec arguments and
/// publishes it to `rtmp://addr/live/{name}` for `secs` seconds (`-re`: real time).
fn publish_live(
    rtmp: std::net::SocketAddr,
    name: &str,
    video: &[&str],
    audio: &[&str],
    secs: u32,
) -> Proc {
    publish_sized(rtmp, name, "320x240", video, audio, secs)
}

/// Like [`publish_live`] with a picture of `size` (WxH).
fn publish_sized(
    rtmp: std::net::SocketAddr,
    name: &str,
    size: &str,
    video: &[&str],
    audio: &[&str],
    secs: u32,
) -> Proc {
    let child = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p"])
        .args(video)
        .args(["-g", "60", "-keyint_min", "60"])
        .args(audio)
        .args(["-f", "flv"])
        .arg(format!("rtmp://{rtmp}/live/{name}"))
        // SVT-AV1 prints its banner unless told otherwise.
        .env("SVT_LOG", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    Proc(child)
}

/// ffmpeg 9 publishing `secs` s of H.264 640x360 (sent as a plain message) and HEVC
/// 320x180 (sent as Enhanced RTMP multitrack track 1) plus AAC on one connection.
fn publish_multitrack(rtmp: std::net::SocketAddr, name: &str, secs: u32) -> Proc {
    let child = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-filter_complex", "[0:v]split[a][b];[b]scale=320:180[c]"])
        .args(["-map", "[a]", "-map", "[c]", "-map", "1:a"])
        .args([
            "-c:v:0",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v:0",
            "high",
        ])
        .args(["-x264-params", "scenecut=0"])
        .args(["-c:v:1", "libx265", "-x265-params"])
        .arg("log-level=error:keyint=60:min-keyint=60:scenecut=0")
        .args(["-g", "60", "-keyint_min", "60"])
        .args(AAC)
        .args(["-f", "flv", &format!("rtmp://{rtmp}/live/{name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    Proc(child)
}

const HEVC: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "log-level=error:keyint=60:min-keyint=60:scenecut=0",
];
const AV1: &[&str] = &["-c:v", "libsvtav1", "-preset", "10"];
const VP9: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
];
const AAC: &[&str] = &["-c:a", "aac", "-b:a", "64k"];
const OPUS: &[&str] = &["-c:a", "libopus", "-b:a", "48k"];

fn master(text: &str) -> MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MasterPlaylist(p)) => p,
        other => panic!("not a master playlist: {other:?}\n{text}"),
    }
}

/// The CODECS of the only variant of `path`'s master playlist.
fn variant_codecs(http: std::net::SocketAddr, path: &str) -> String {
    let text = get(http, path).unwrap().text();
    let pl = master(&text);
    assert_eq!(pl.variants.len(), 1, "{text}");
    pl.variants[0].codecs.clone().unwrap_or_default()
}

/// Decodes `url` with ffmpeg (every stream); returns its stderr and the number of
/// decoded frames per stream index.
fn decode(url: &str) -> (String, std::collections::BTreeMap<String, usize>) {
    let out = Command::new(tools::ffmpeg())
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i", url])
        .args(["-map", "0", "-f", "framecrc", "-"])
        .output()
        .expect("run ffmpeg");
    let mut frames = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((stream, _)) = line.split_once(',').filter(|_| !line.starts_with('#')) {
            *frames.entry(stream.trim().to_string()).or_insert(0) += 1;
        }
    }
    (String::from_utf8_lossy(&out.stderr).into_owned(), frames)
}

/// Publishes a 6 s clip, waits for the publish to end, and checks the CMAF master
/// playlist, the MPD and an error-free decode of both tracks. Returns the server for
/// further checks.
fn check_clip(
    name: &str,
    video: &[&str],
    audio: &[&str],
    codecs: &str,
) -> (tokio::runtime::Runtime, packgate::server::Server) {
    let (rt, server) = start(test_config());
    let http = server.http_addr;
    let mut ffmpeg = publish_live(server.rtmp_addr, name, video, audio, 6);
    assert_eq!(
        ffmpeg.wait_for(Duration::from_secs(50)),
        Some(true),
        "ffmpeg did not publish the clip"
    );
    let path = format!("/live/{name}/index.m3u8");
    poll(Duration::from_secs(5), || {
        get(http, &path).ok().filter(|r| r.status == 200)
    })
    .expect("master playlist");
    assert_eq!(variant_codecs(http, &path), codecs);
    let mpd = get(http, &format!("/live/{name}/index.mpd"))
        .unwrap()
        .text();
    for codec in codecs.split(',') {
        assert!(
            mpd.contains(&format!("codecs=\"{codec}\"")),
            "{codec} not in MPD:\n{mpd}"
        );
    }
    let (stderr, frames) = decode(&format!("http://{http}{path}"));
    assert_eq!(stderr, "", "ffmpeg reported errors decoding {path}");
    assert_eq!(frames.len(), 2, "video and audio decoded: {frames:?}");
    // 6 s at 30 fps, minus what the window or the first keyframe may have cut.
    assert!(frames.values().all(|n| *n >= 100), "{frames:?}");
    (rt, server)
}

#[test]
fn hevc_aac_becomes_hvc1_in_cmaf_and_ts() {
    let (_rt, server) = check_clip("hevc", HEVC, AAC, "hvc1.1.6.L60.90,mp4a.40.2");
    let http = server.http_addr;
    // libx265 at 320x240/30 fps: Main profile, level 2 (general_level_idc 60), which
    // ffprobe reads back from the SPS on its own.
    let probe = Command::new(tools::ffprobe())
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,profile,level,width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(format!("http://{http}/live/hevc/index.m3u8"))
        .output()
        .unwrap();
    // (The stream is listed once per HLS program; the first line is enough.)
    let stdout = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(
        stdout.lines().next(),
        Some("hevc,Main,320,240,60"),
        "{stdout}"
    );
    // TS carries HEVC (stream type 0x24, parameter sets before IRAP pictures).
    assert_eq!(
        variant_codecs(http, "/live/hevc/ts.m3u8"),
        "hvc1.1.6.L60.90,mp4a.40.2"
    );
    let (stderr, frames) = decode(&format!("http://{http}/live/hevc/ts.m3u8"));
    assert_eq!(stderr, "", "ffmpeg reported errors decoding the TS output");
    assert_eq!(frames.len(), 2, "{frames:?}");
}

#[test]
fn av1_opus_becomes_av01_cmaf_only() {
    let (_rt, server) = check_clip("av1", AV1, OPUS, "av01.0.00M.08,opus");
    // AV1 and Opus have no TS mapping here: the rendition is left out of ts.m3u8.
    let r = get(server.http_addr, "/live/av1/ts.m3u8").unwrap();
    assert!(
        r.status != 200 || master(&r.text()).variants.is_empty(),
        "{}",
        r.text()
    );
}

#[test]
fn vp9_opus_becomes_vp09_cmaf_only() {
    let (_rt, server) = check_clip("vp9", VP9, OPUS, "vp09.00.20.08,opus");
    // vpcC has no picture size; it is read from the first key frame's header.
    let pl = master(
        &get(server.http_addr, "/live/vp9/index.m3u8")
            .unwrap()
            .text(),
    );
    let size = pl.variants[0]
        .resolution
        .as_ref()
        .map(|r| (r.width, r.height));
    assert_eq!(size, Some((320, 240)));
    let r = get(server.http_addr, "/live/vp9/ts.m3u8").unwrap();
    assert!(
        r.status != 200 || master(&r.text()).variants.is_empty(),
        "{}",
        r.text()
    );
}

#[test]
fn unsupported_fourcc_is_refused_not_packaged() {
    // ffmpeg sends FLAC as Enhanced RTMP audio FourCC fLaC: the audio is refused, the
    // HEVC video is packaged alone.
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let mut ffmpeg = publish_live(server.rtmp_addr, "flac", HEVC, &["-c:a", "flac"], 4);
    assert_eq!(ffmpeg.wait_for(Duration::from_secs(40)), Some(true));
    let path = "/live/flac/index.m3u8";
    poll(Duration::from_secs(5), || {
        get(http, path).ok().filter(|r| r.status == 200)
    })
    .expect("master playlist");
    let text = get(http, path).unwrap().text();
    assert_eq!(variant_codecs(http, path), "hvc1.1.6.L60.90", "{text}");
    assert!(master(&text).alternatives.is_empty(), "{text}");
}

#[test]
fn av1_opus_plays_in_chromium_with_hls_js() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _ffmpeg = publish_live(server.rtmp_addr, "av1play", AV1, OPUS, 40);
    poll(Duration::from_secs(20), || {
        get(http, "/live/av1play/index.m3u8")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("AV1 master playlist within 20 s");
    let r = common::browser::play(
        &format!("http://{http}/live/av1play/index.m3u8"),
        "hls",
        10,
        &[],
    );
    common::browser::assert_played(&r, 320, 240);
}

#[test]
fn mixed_ladder_gets_codecs_per_variant_and_plays_the_h264_rung() {
    // One ladder, two rungs published separately: H.264 640x360 and HEVC 320x240.
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let h264 = [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
    ];
    let _a = publish_sized(server.rtmp_addr, "mix_360p", "640x360", &h264, AAC, 40);
    let _b = publish_live(server.rtmp_addr, "mix_240p", HEVC, AAC, 40);
    let path = "/live/mix/index.m3u8";
    let pl = poll(Duration::from_secs(25), || {
        let text = get(http, path).ok().filter(|r| r.status == 200)?.text();
        Some(master(&text)).filter(|p| p.variants.len() == 2)
    })
    .expect("a two-variant master playlist");
    let codecs: Vec<(String, String)> = pl
        .variants
        .iter()
        .map(|v| (v.uri.clone(), v.codecs.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        codecs,
        [
            (
                "240p/video.m3u8".to_string(),
                "hvc1.1.6.L60.90,mp4a.40.2".to_string()
            ),
            (
                "360p/video.m3u8".to_string(),
                "avc1.64001e,mp4a.40.2".to_string()
            ),
        ]
    );
    let mpd = get(http, "/live/mix/index.mpd").unwrap().text();
    assert!(mpd.contains("codecs=\"hvc1.1.6.L60.90\"") && mpd.contains("codecs=\"avc1.64001e\""));
    // A player without HEVC (Debian's Chromium has none) drops that variant and plays
    // the H.264 one; one with HEVC may play either.
    let r = common::browser::play(&format!("http://{http}{path}"), "hls", 8, &[]);
    assert_eq!(r["fatal"].as_array().map(Vec::len), Some(0), "{r}");
    assert!(r["advanced"].as_f64().unwrap_or(0.0) >= 6.4, "{r}");
    let size = (r["videoWidth"].as_u64(), r["videoHeight"].as_u64());
    if r["levels"] == 1 {
        assert_eq!(size, (Some(640), Some(360)), "{r}");
    } else {
        assert!(
            size == (Some(640), Some(360)) || size == (Some(320), Some(240)),
            "{r}"
        );
    }
}

#[test]
fn multitrack_publish_becomes_a_two_rendition_ladder() {
    // ffmpeg 9 sends its first video stream as a plain message and the second as an
    // Enhanced RTMP multitrack track (id 1): here H.264 640x360 and HEVC 320x180 from one
    // connection, keyframes every 2 s in both.
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let mut ffmpeg = publish_multitrack(server.rtmp_addr, "multi", 6);
    let live = poll(Duration::from_secs(20), || {
        let r = get(http, "/api/streams/live/multi").ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        Some(v).filter(|v| v["renditions"].as_array().is_some_and(|r| r.len() == 2))
    })
    .expect("two renditions while publishing");
    assert_eq!(live["aligned"], true, "{live}");
    assert_eq!(
        ffmpeg.wait_for(Duration::from_secs(50)),
        Some(true),
        "ffmpeg did not publish the clip"
    );
    let path = "/live/multi/index.m3u8";
    let pl = master(&get(http, path).unwrap().text());
    let variants: Vec<String> = pl
        .variants
        .iter()
        .map(|v| {
            let size = v
                .resolution
                .as_ref()
                .map(|r| format!("{}x{}", r.width, r.height));
            let codecs = v.codecs.as_deref().unwrap_or_default();
            format!("{} {codecs} {}", v.uri, size.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        variants,
        [
            "180p/video.m3u8 hvc1.1.6.L60.90,mp4a.40.2 320x180",
            "src/video.m3u8 avc1.64001e,mp4a.40.2 640x360",
        ]
    );
    // Both video renditions and the audio decode without an error line.
    let (stderr, frames) = decode(&format!("http://{http}{path}"));
    assert_eq!(stderr, "", "ffmpeg reported errors decoding {path}");
    assert_eq!(frames.len(), 3, "two videos and the audio: {frames:?}");
    assert!(frames.values().all(|n| *n >= 100), "{frames:?}");
}

#[test]
fn multitrack_reconnect_continues_the_track_rendition() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let labels = || -> Option<Vec<String>> {
        let r = get(http, "/api/streams/live/again").ok()?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let names = v["renditions"].as_array()?.iter();
        Some(
            names
                .filter_map(|r| r["name"].as_str().map(String::from))
                .collect(),
        )
    };
    let first = publish_multitrack(server.rtmp_addr, "again", 30);
    poll(Duration::from_secs(20), || {
        labels().filter(|l| l.len() == 2)
    })
    .expect("two renditions");
    let track_playlist = "/live/again/180p/video.m3u8";
    poll(Duration::from_secs(20), || {
        let text = get(http, track_playlist).ok()?.text();
        text.contains("#EXTINF").then_some(())
    })
    .expect("a segment of the track's rendition");
    // The encoder dies and comes back: the same two rungs continue (no "track1" rung).
    drop(first);
    let mut second = publish_multitrack(server.rtmp_addr, "again", 4);
    assert_eq!(second.wait_for(Duration::from_secs(40)), Some(true));
    assert_eq!(labels(), Some(vec!["180p".to_string(), "src".to_string()]));
    // Its playlist goes on across the reconnect, marked as a discontinuity.
    let text = get(http, track_playlist).unwrap().text();
    let after = text
        .split("#EXT-X-DISCONTINUITY")
        .nth(1)
        .unwrap_or_default();
    assert!(after.contains("#EXTINF"), "{text}");
}

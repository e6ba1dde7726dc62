//! Issue 15 part 3 end to end: the object-store output against a real S3-protocol server
//! (moto) on loopback. ffmpeg publishes; ffmpeg plays the HLS back from the bucket over
//! plain HTTP while the stream is live, following the bucket's playlists to their
//! EXT-X-ENDLIST; with `delete = "window"`, the segments that left the playlists are gone
//! from the bucket while the ones listed are there.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::{get, request_with};
use common::{free_port, long_sample, poll, publish, start, test_config, tools, Proc};
use packgate::config::object_store::DeletePolicy;

const BUCKET: &str = "media";
const PREFIX: &str = "cdn/x";

/// moto on a free loopback port, with the bucket made.
fn start_moto() -> (Proc, SocketAddr) {
    let port = free_port();
    let child = Command::new(tools::moto_server())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let moto = Proc(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    poll(Duration::from_secs(30), || get(addr, "/").ok())
        .expect("moto_server did not answer within 30 s");
    let made = request_with(
        addr,
        "PUT",
        &format!("/{BUCKET}"),
        &[("Content-Length", "0")],
    )
    .expect("create the bucket");
    assert_eq!(made.status, 200, "bucket not created: {}", made.text());
    // Viewers read anonymously: the bucket policy a public bucket needs.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{BUCKET}/*"}}]}}"#
    );
    let set = put(
        addr,
        &format!("/{BUCKET}?policy"),
        "application/json",
        &policy,
    );
    assert!(
        set.starts_with("HTTP/1.1 20"),
        "bucket policy not set: {set}"
    );
    (moto, addr)
}

/// A PUT with a body; returns the raw response.
fn put(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The keys under `prefix` in the bucket (ListObjectsV2).
fn list(s3: SocketAddr, prefix: &str) -> BTreeSet<String> {
    let body = get(
        s3,
        &format!("/{BUCKET}?list-type=2&max-keys=1000&prefix={prefix}"),
    )
    .expect("list the bucket")
    .text();
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// The segment numbers a media playlist lists (`{dir}/{n}.{ext}` lines).
fn listed(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit('/').next()?.split('.').next()?.parse().ok())
        .collect()
}

/// Decodes `url` with ffmpeg, every frame; returns (video frames, audio frames).
fn decode(url: &str, args: &[&str]) -> (usize, usize) {
    let out = Command::new(tools::ffmpeg())
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .args([
            "-i", url, "-map", "0:v:0", "-map", "0:a:0", "-f", "framemd5", "-",
        ])
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed on {url}:\n{errors}");
    let count = |stream: &str| text.lines().filter(|l| l.starts_with(stream)).count();
    (count("0,"), count("1,"))
}

#[test]
fn hls_from_the_bucket_plays_and_the_window_is_kept() {
    let (_moto, s3) = start_moto();
    let mut config = test_config();
    config.segment.window = 2;
    let store = &mut config.object_store;
    store.enabled = true;
    store.endpoint = format!("http://{s3}");
    store.allow_http = true;
    store.bucket = BUCKET.to_string();
    store.prefix = format!("/{PREFIX}/");
    store.access_key_id.0 = "test".to_string();
    store.secret_access_key.0 = "test".to_string();
    store.delete = DeletePolicy::Window;
    let (_rt, server) = start(config);
    let mut publisher = publish(server.rtmp_addr, "live", "show", &long_sample(12), 0);

    let base = format!("/{BUCKET}/{PREFIX}/live/show");
    let first = poll(Duration::from_secs(20), || {
        let r = get(s3, &format!("{base}/src/video.m3u8")).ok()?;
        (r.status == 200).then(|| r.text())
    })
    .expect("no media playlist in the bucket within 20 s");
    let first_seq = listed(&first)[0];
    // Live, from the bucket: ffmpeg follows the playlists to their end.
    let url = format!("http://{s3}{base}/index.m3u8");
    let reader = std::thread::spawn(move || decode(&url, &["-live_start_index", "0"]));
    assert_eq!(publisher.wait_for(Duration::from_secs(40)), Some(true));
    let (video, audio) = reader.join().unwrap();
    eprintln!("decoded from the bucket while live: {video} video frames, {audio} audio frames");
    // 30 fps and 48 kHz AAC (1024 samples a frame): at least 8 of the 12 seconds.
    assert!(video >= 240, "{video} video frames");
    assert!(audio >= 375, "{audio} audio frames");

    let video_playlist = get(s3, &format!("{base}/src/video.m3u8")).unwrap().text();
    assert!(
        video_playlist.contains("#EXT-X-ENDLIST"),
        "{video_playlist}"
    );
    assert!(
        !video_playlist.contains("#EXT-X-PART") && !video_playlist.contains("PRELOAD-HINT"),
        "the bucket gets the classic playlist:\n{video_playlist}"
    );
    let http_playlist = get(server.http_addr, "/live/show/src/video.m3u8")
        .unwrap()
        .text();
    assert!(
        http_playlist.contains("#EXT-X-PART-INF"),
        "the server's is LL-HLS"
    );
    let mpd = get(s3, &format!("{base}/index.mpd")).unwrap().text();
    assert!(
        mpd.contains("type=\"static\"") && !mpd.contains("availabilityTimeOffset"),
        "{mpd}"
    );
    let (ts_video, _) = decode(&format!("http://{s3}{base}/ts.m3u8"), &[]);
    assert!(
        ts_video >= 60,
        "{ts_video} frames from the ended TS playlist"
    );

    // Segments that left the window go; those listed stay.
    let kept = listed(&video_playlist);
    let dir = format!("{PREFIX}/live/show/src/video/");
    let seqs = |keys: &BTreeSet<String>| -> BTreeSet<u64> {
        keys.iter()
            .filter_map(|k| k.strip_prefix(&dir)?.strip_suffix(".m4s")?.parse().ok())
            .collect()
    };
    let expected: BTreeSet<u64> = kept.iter().copied().collect();
    let settled = poll(Duration::from_secs(20), || {
        let now = seqs(&list(s3, &dir));
        (now == expected).then_some(now)
    });
    let now = seqs(&list(s3, &dir));
    assert!(
        settled.is_some(),
        "bucket holds {now:?}, the playlist lists {expected:?}"
    );
    assert!(
        kept[0] >= first_seq + 3,
        "segments {first_seq}.. were produced, {kept:?} are listed"
    );
    assert!(
        list(s3, &dir).iter().any(|k| k.contains("/init-")),
        "the init segment stays"
    );
    let metrics = get(server.http_addr, "/metrics").unwrap().text();
    let uploads = metrics
        .lines()
        .find(|l| l.starts_with("packgate_bucket_uploads_total{kind=\"segment\"}"))
        .unwrap_or_else(|| panic!("no segment upload counted:\n{metrics}"));
    eprintln!("{uploads}");
    assert!(
        !metrics.contains("packgate_bucket_upload_failures_total"),
        "an upload failed"
    );
}

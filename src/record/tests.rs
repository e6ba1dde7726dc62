//! Tests of recording: one file per init version read back as VOD, an interrupted
//! recording cut to whole segments, start/stop, and the byte cap of the writer's queue.

use std::time::{Duration, Instant};

use super::index::{read_recording, TrackMeta};
use super::vod::{self, locate};
use super::writer::Writer;
use super::*;
use crate::urls::VodObject;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pg-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn session(root: &Path) -> Arc<Session> {
    Arc::new(Session {
        app: "live".into(),
        name: "show".into(),
        start: "20260101T000000Z".into(),
        dir: root.join("live/show/20260101T000000Z"),
    })
}

fn job(s: &Arc<Session>, version: u64, seq: u64, fill: u8) -> Job {
    Job::Segment(Box::new(SegmentJob {
        session: s.clone(),
        label: "src".into(),
        kind: "video",
        init_version: version,
        init: Bytes::from(format!("INIT{version}")),
        meta: TrackMeta {
            codecs: "avc1.64001f".into(),
            timescale: 90_000,
            resolution: Some((640, 360)),
            ..TrackMeta::default()
        },
        seq,
        start: seq as i64 * 180_000,
        duration: 180_000,
        data: vec![Bytes::from(vec![fill; 10]), Bytes::from(vec![fill; 5])],
        charge: None,
    }))
}

#[test]
fn segments_append_to_one_file_per_init_version_and_read_back_as_vod() {
    let root = temp("writer");
    let s = session(&root);
    let mut w = Writer::new(None);
    w.handle(job(&s, 7, 1, 1));
    w.handle(job(&s, 7, 2, 2));
    // A reconnect: new init version, new file.
    w.handle(job(&s, 9, 3, 3));
    let rec = read_recording(&s.dir).expect("listed while recording");
    assert!(rec.ended.is_none());
    assert!(
        !vod::media(&rec, rec.renditions[0].track(TrackKind::Video).unwrap()).contains("ENDLIST"),
        "a growing recording has no ENDLIST"
    );
    w.handle(Job::EndSession(s.clone()));
    let rec = read_recording(&s.dir).unwrap();
    assert_eq!(rec.ended.as_ref().map(|e| e.how.as_str()), Some("stopped"));
    let track = rec.renditions[0].track(TrackKind::Video).unwrap();
    assert_eq!(track.files.len(), 2);
    assert_eq!(track.files[0].segments.len(), 2);
    assert_eq!(track.duration_secs(), 6.0);
    let file0 = std::fs::read(&track.files[0].path).unwrap();
    assert_eq!(&file0[..5], b"INIT7");
    assert_eq!(file0.len(), 5 + 15 + 15);
    let (path, off, len) = locate(VodObject::parse("0-1.m4s").unwrap(), track).unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[off as usize..(off + len) as usize], &[2u8; 15]);
    let init = VodObject::parse("init-1.mp4").unwrap();
    assert_eq!(locate(init, track).unwrap().2, 5);
    assert!(locate(VodObject::parse("2-0.m4s").unwrap(), track).is_none());
    let m3u8 = vod::media(&rec, track);
    assert!(m3u8.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{m3u8}");
    assert!(m3u8.ends_with("#EXT-X-ENDLIST\n"), "{m3u8}");
    assert_eq!(m3u8.matches("#EXT-X-MAP").count(), 2);
    assert_eq!(m3u8.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    let mpd = vod::mpd(&rec);
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    assert_eq!(mpd.matches("<Period").count(), 2, "{mpd}");
    assert!(
        mpd.contains("mediaPresentationDuration=\"PT6.000S\""),
        "{mpd}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_interrupted_recording_is_cut_to_whole_segments_and_ended() {
    let root = temp("recover");
    let s = session(&root);
    let mut w = Writer::new(None);
    w.handle(job(&s, 1, 1, 1));
    w.handle(job(&s, 1, 2, 2));
    drop(w); // no EndSession: as after a kill
    let rdir = s.dir.join("src");
    // A segment whose bytes were half written and whose index line was torn.
    use std::io::Write;
    let mut mp4 = std::fs::OpenOptions::new()
        .append(true)
        .open(rdir.join("video-0.mp4"))
        .unwrap();
    mp4.write_all(&[9u8; 7]).unwrap();
    let mut idx = std::fs::OpenOptions::new()
        .append(true)
        .open(rdir.join("video.jsonl"))
        .unwrap();
    idx.write_all(b"{\"t\":\"seg\",\"seq\":3,\"offset\":35,\"si")
        .unwrap();
    let (closed, _) = recover::close_interrupted(&root);
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].bytes, closed[0].segments), (35, 2));
    assert!(recover::close_interrupted(&root).0.is_empty(), "done once");
    let rec = read_recording(&s.dir).unwrap();
    assert_eq!(
        rec.ended.as_ref().map(|e| e.how.as_str()),
        Some("interrupted")
    );
    assert_eq!(
        std::fs::metadata(rdir.join("video-0.mp4")).unwrap().len(),
        5 + 30
    );
    let text = std::fs::read_to_string(rdir.join("video.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        vod::media(&rec, rec.renditions[0].track(TrackKind::Video).unwrap())
            .ends_with("#EXT-X-ENDLIST\n")
    );
    std::fs::remove_dir_all(&root).unwrap();
}

fn tap(seq: u64) -> Tap {
    Tap {
        kind: TrackKind::Video,
        init_version: 1,
        init: Bytes::from_static(b"INIT"),
        meta: TrackMeta {
            timescale: 90_000,
            ..TrackMeta::default()
        },
        seq,
        start: 0,
        duration: 90_000,
        data: vec![Bytes::from_static(b"moofmdat")],
    }
}

fn wait_for(path: &Path) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn api_start_stop_and_a_ladder_that_ends_cleanly_ends_its_recording() {
    let root = temp("recorder");
    let config = RecordConfig {
        dir: root.clone(),
        apps: [(
            "tv".to_string(),
            crate::config::AppRecordConfig {
                enabled: true,
                ..Default::default()
            },
        )]
        .into(),
        ..RecordConfig::default()
    };
    let r = Recorder::new(&config);
    assert!(r.wants("tv", "any") && !r.wants("live", "show"));
    assert_eq!(r.stop("tv", "any"), Err(RecordError::ByConfig("tv".into())));
    assert!(matches!(
        r.stop("live", "show"),
        Err(RecordError::NotRecording(_))
    ));
    assert!(r.start("live", "show") && !r.start("live", "show"));
    assert!(r.wants("live", "show"));
    // Two renditions; the recording ends when both have stopped cleanly.
    r.segment("tv", "news", "720p", tap(1));
    r.segment("tv", "news", "360p", tap(1));
    let dir = r.state().active[&("tv".to_string(), "news".to_string())]
        .session
        .dir
        .clone();
    r.stopped("tv", "news", "720p", true);
    assert!(r
        .state()
        .active
        .contains_key(&("tv".to_string(), "news".to_string())));
    r.stopped("tv", "news", "360p", true);
    assert!(wait_for(&dir.join("ended.json")), "recording ended");
    assert!(dir.join("360p/video-0.mp4").exists() && dir.join("720p/video.jsonl").exists());
    // A dropped publisher keeps the recording open until the ladder expires.
    r.segment("live", "show", "src", tap(1));
    r.stopped("live", "show", "src", false);
    let key = ("live".to_string(), "show".to_string());
    let dir = r.state().active[&key].session.dir.clone();
    r.expired("live", "show");
    assert!(wait_for(&dir.join("ended.json")));
    assert!(r.state().active.is_empty());
    assert_eq!(r.stop("live", "show"), Ok(()));
    assert!(!r.wants("live", "show"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn queued_bytes_are_capped_and_given_back() {
    let counter = Arc::new(AtomicUsize::new(0));
    let a = Charge::take(&counter, 6, 10).expect("fits");
    assert!(Charge::take(&counter, 6, 10).is_none(), "over the budget");
    let b = Charge::take(&counter, 4, 10).expect("fits exactly");
    drop(a);
    assert!(Charge::take(&counter, 6, 10).is_some());
    drop(b);
    assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 0);
}

//! Tests of the media playlist writer: the classic and LL-HLS forms, delta updates, and
//! that every URI it writes names an object of its feed.

use super::*;
use crate::playlist::hls::fixed_target_duration;
use crate::playlist::hls::tests::{segment as seg, window};
use crate::store::StoredSegment;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

fn parse(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()).expect("parses") {
        m3u8_rs::Playlist::MediaPlaylist(p) => p,
        other => panic!("not a media playlist: {other:?}"),
    }
}

fn classic<'a>(w: &'a TrackWindow, prefix: &'a str, container: Container) -> MediaPlaylist<'a> {
    MediaPlaylist {
        window: w,
        prefix,
        container,
        target: fixed_target_duration(2.0),
        ended: false,
        low_latency: None,
    }
}

#[test]
fn media_playlist_parses_and_lists_the_window() {
    let w = window(5, 2002);
    let text = MediaPlaylist {
        ended: true,
        ..classic(&w, "video", Container::Cmaf)
    }
    .render();
    let ts = MediaPlaylist {
        target: 2,
        ..classic(&w, "ts", Container::Ts)
    }
    .render();
    assert!(
        ts.contains("\nts/5.ts\n") && !ts.contains("EXT-X-MAP") && !ts.contains("ENDLIST"),
        "{ts}"
    );
    let pl = parse(&text);
    assert_eq!(pl.media_sequence, 3);
    assert_eq!(pl.target_duration, 2);
    assert!(pl.end_list);
    assert_eq!(pl.segments.len(), 3);
    assert_eq!(pl.segments[0].uri, "video/3.m4s");
    assert!((pl.segments[0].duration - 2.002).abs() < 1e-6);
    assert_eq!(pl.segments[0].map.as_ref().unwrap().uri, "video/init-0.mp4");
    assert!(text.contains("#EXTINF:2.002,\n"));
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:06.006Z"));
    assert!(!text.contains("EXT-X-PART"));
}

/// A window of `n` 1 s segments cut into five 200 ms parts, plus `open` parts of the next.
fn ll_window(n: u64, open: u64) -> TrackWindow {
    let mut w = TrackWindow::with_first_part(20, 100);
    w.add_init(0, Bytes::from_static(b"init"));
    let head = |seq: u64| StoredSegment {
        seq,
        start: (seq * 90_000) as i64,
        duration: 90_000,
        timescale: 90_000,
        wall_clock: SystemTime::UNIX_EPOCH + Duration::from_secs(seq),
        init_version: 0,
        discontinuity: false,
        parts: Vec::new(),
    };
    for seq in 1..=n {
        for i in 0..5 {
            w.push_part(|| head(seq), 18_000, i == 0, Bytes::from_static(b"p"));
        }
        w.push(head(seq));
    }
    for i in 0..open {
        w.push_part(|| head(n + 1), 18_000, i == 0, Bytes::from_static(b"p"));
    }
    w
}

fn ll<'a>(w: &'a TrackWindow, skip: bool) -> MediaPlaylist<'a> {
    MediaPlaylist {
        target: 1,
        low_latency: Some(LowLatency {
            hold_back_parts: 3.0,
            part_target: 0.2,
            skip,
            reports: vec![RenditionReport {
                uri: "../360p/video.m3u8".into(),
                last_msn: 13,
                last_part: Some(2),
            }],
        }),
        ..classic(w, "video", Container::Cmaf)
    }
}

#[test]
fn low_latency_playlist_lists_recent_parts_and_hints_the_next() {
    let w = ll_window(12, 3);
    let text = ll(&w, false).render();
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"), "{text}");
    assert!(text.contains(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.600,HOLD-BACK=3.0\n"
    ));
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.200\n"));
    // Parts of segments ending in the last three target durations (10, 11, 12) and of the
    // open one.
    let parts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .collect();
    assert_eq!(parts.len(), 3 * 5 + 3, "{text}");
    assert_eq!(
        parts[0],
        "#EXT-X-PART:DURATION=0.200,URI=\"video/part-145.m4s\",INDEPENDENT=YES"
    );
    assert_eq!(
        parts[1],
        "#EXT-X-PART:DURATION=0.200,URI=\"video/part-146.m4s\""
    );
    // The open segment's parts come after the last EXTINF, then the hint of the next part.
    let tail = &text[text.rfind("#EXTINF").unwrap()..];
    assert!(tail.contains("video/12.m4s\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:13.000Z\n"));
    assert!(tail.contains("URI=\"video/part-162.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part-163.m4s\"\n"), "{tail}");
    assert!(text
        .ends_with("#EXT-X-RENDITION-REPORT:URI=\"../360p/video.m3u8\",LAST-MSN=13,LAST-PART=2\n"));
    assert_eq!(last_position(&w), Some((13, Some(2))));
    // A classic parser still reads the segments.
    let pl = parse(&text);
    assert_eq!(pl.segments.len(), 12);
    assert_eq!(pl.media_sequence, 1);
}

#[test]
fn delta_update_skips_old_segments_consistently() {
    let w = ll_window(12, 3);
    let full = ll(&w, false).render();
    let delta = ll(&w, true).render();
    // 12.6 s in all, skip boundary 6 s: segments 1..=6 end ≥ 6.6 s before the end.
    assert!(
        delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=6\n"),
        "{delta}"
    );
    assert!(delta.contains("#EXT-X-MEDIA-SEQUENCE:1\n"));
    let uris = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("video/"))
            .map(String::from)
            .collect()
    };
    let (f, d) = (uris(&full), uris(&delta));
    assert_eq!(f[6..], d[..]);
    // The map is restated for the first segment after the skip.
    assert!(delta.contains("#EXT-X-MAP:URI=\"video/init-0.mp4\""));
    assert!(full.lines().count() > delta.lines().count());
}

#[test]
fn ended_low_latency_playlist_has_no_hint_and_no_open_parts() {
    let w = ll_window(3, 2);
    let text = MediaPlaylist {
        ended: true,
        ..ll(&w, false)
    }
    .render();
    assert!(!text.contains("PRELOAD-HINT"));
    assert!(!text.contains("part-117"), "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
}

#[test]
fn independent_segments_are_claimed_only_while_true() {
    let mut w = window(3, 2000);
    assert!(classic(&w, "video", Container::Cmaf)
        .render()
        .contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
    // A segment cut between keyframes (no keyframe within the longest segment).
    w.push(StoredSegment {
        seq: 4,
        start: 0,
        duration: 2000 * 90,
        timescale: 90_000,
        wall_clock: SystemTime::UNIX_EPOCH + Duration::from_secs(8),
        init_version: 0,
        discontinuity: false,
        parts: vec![crate::store::StoredPart {
            id: 4,
            duration: 2000 * 90,
            independent: false,
            data: Bytes::from(vec![0u8; 500]),
        }],
    });
    let text = classic(&w, "video", Container::Cmaf).render();
    assert!(!text.contains("INDEPENDENT-SEGMENTS"), "{text}");
    assert_eq!(parse(&text).segments.len(), 3);
}

#[test]
fn a_join_that_would_land_between_keyframes_is_moved_back_to_one() {
    // 4 s GOPs cut into 2 s segments: 1 and 3 start on keyframes, 2 and 4 do not.
    let segs = [
        seg(1, 2000, true),
        seg(2, 2000, false),
        seg(3, 2000, true),
        seg(4, 1000, false),
    ];
    // PART-HOLD-BACK 0.6 s from the end (7.0 s) is 6.4 s: in segment 4, no keyframe.
    // The join moves to 0.3 s before segment 3's end (5.7 s): 1.3 s before the end.
    let offset = join_offset(segs.iter(), 0.6).expect("moved");
    assert!((offset + 1.3).abs() < 1e-9, "{offset}");
    // 1.2 s from the end lands in segment 3 itself: the usual join works.
    assert_eq!(join_offset(segs.iter(), 1.2), None);
    // Every segment on a keyframe (2 s GOPs): never moved.
    let all: Vec<_> = (1..5).map(|i| seg(i, 2000, true)).collect();
    assert_eq!(join_offset(all.iter(), 0.6), None);
    // No earlier keyframe in the window: nothing better to offer.
    assert_eq!(join_offset(segs[1..2].iter(), 0.6), None);
}

#[test]
fn every_uri_written_names_an_object_of_the_playlists_feed() {
    use crate::urls::{Feed, FeedDir, LadderFile, ObjectName, ObjectPath};
    let w = ll_window(12, 3);
    for feed in [Feed::Cmaf(crate::media::TrackKind::Video), Feed::Ts] {
        let dir = FeedDir::Rendition {
            label: "720p".into(),
            feed,
        };
        let at = ObjectPath::live("live", "show", LadderFile::Playlist(dir.clone())).to_string();
        let mut playlist = ll(&w, false);
        playlist.prefix = feed.name();
        playlist.container = feed.container();
        if feed == Feed::Ts {
            playlist.low_latency = None;
        }
        let text = playlist.render();
        let quoted = text
            .split("URI=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()]);
        let plain = text.lines().filter(|l| !l.starts_with('#'));
        let mut names = Vec::new();
        for uri in quoted.chain(plain) {
            if uri.starts_with("../") {
                continue; // rendition reports: checked in http::playlist
            }
            let resolved = format!("{}{uri}", &at[..=at.rfind('/').unwrap()]);
            match resolved.parse::<ObjectPath>() {
                Ok(ObjectPath::Live {
                    file: LadderFile::Object(d, name),
                    ..
                }) if d == dir => names.push(name),
                other => panic!("{uri} resolves to {other:?}"),
            }
        }
        assert!(names.contains(&ObjectName::Segment(12)), "{text}");
        assert_eq!(
            names.contains(&ObjectName::Init(0)),
            feed != Feed::Ts,
            "{text}"
        );
        assert_eq!(
            names.iter().any(|n| matches!(n, ObjectName::Part(_))),
            feed != Feed::Ts
        );
    }
}

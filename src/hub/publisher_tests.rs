//! Unit tests of the publisher.
use super::*;
use crate::codec::h264::tests::AVCC_640X360;
use crate::codec::h264::AvcConfig;
use crate::config::Config;
use crate::hub::Hub;
use bytes::Bytes;

fn frame(ms: i64, keyframe: bool, size: usize) -> Frame {
    Frame {
        kind: TrackKind::Video,
        dts: ms * 90,
        pts: ms * 90,
        keyframe,
        data: Bytes::from(vec![0u8; size]),
    }
}

#[test]
fn frames_before_the_first_keyframe_have_a_byte_budget() {
    let config = Config::from_toml("[limits]\nheld_bytes = 1048576\n").unwrap();
    let hub = Hub::new(Arc::new(config));
    let mut p = hub
        .publish("live", "held", crate::hub::Holder::open(1))
        .unwrap()
        .publisher;
    let avc = AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap();
    p.config(CodecConfig::H264(avc));
    // 100 KiB frames with no keyframe: the eleventh is over the 1 MiB budget.
    let mut result = Ok(());
    let mut sent = 0;
    while result.is_ok() && sent < 100 {
        result = p.frame(frame(sent * 33, false, 100 << 10));
        sent += 1;
    }
    assert_eq!(sent, 11);
    assert!(matches!(
        result,
        Err(FrameError::HeldBytes { limit: 1048576, .. })
    ));
    // Within the budget, a keyframe releases what was held.
    let mut p = hub
        .publish("live", "ok", crate::hub::Holder::open(2))
        .unwrap()
        .publisher;
    let avc = AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap();
    p.config(CodecConfig::H264(avc));
    for i in 0..5 {
        p.frame(frame(i * 33, false, 100 << 10)).unwrap();
    }
    p.frame(frame(200, true, 1000)).unwrap();
    assert!(p.map.held.is_empty() && p.map.held_bytes == 0);
}

#[test]
fn a_reconnect_before_the_first_segment_still_packages() {
    let hub = Hub::new(Arc::new(Config::default()));
    let avc = || CodecConfig::H264(AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap());
    // The first connection configures the track and drops before any segment.
    let mut first = hub
        .publish("live", "early", crate::hub::Holder::open(1))
        .unwrap();
    first.publisher.config(avc());
    drop(first);
    // The encoder comes back with the same sequence header: the rendition continues, and
    // the new publisher must set its own segmenter up all the same.
    let mut p = hub
        .publish("live", "early", crate::hub::Holder::open(2))
        .unwrap()
        .publisher;
    p.config(avc());
    for i in 0..=75 {
        p.frame(frame(i * 33, i % 60 == 0, 500)).unwrap();
    }
    let state = p.rendition().read();
    let video = state.video.as_ref().expect("video track");
    assert!(
        video.window.last().is_some(),
        "no segment after the reconnect"
    );
}

/// Video at 25 fps with a keyframe every 2 s, media times `from_ms..to_ms`.
fn feed(p: &mut Publisher, from_ms: i64, to_ms: i64) {
    for ms in (from_ms..to_ms).step_by(40) {
        p.frame(frame(ms, ms % 2000 == 0, 300)).unwrap();
    }
}

/// (seq, start) of every segment of `p`'s video track.
fn segments(p: &Publisher) -> Vec<(u64, i64)> {
    let state = p.rendition().read();
    let window = &state.video.as_ref().expect("video track").window;
    window.listed().map(|s| (s.seq, s.start)).collect()
}

/// A publisher of `live/{name}` with an H.264 track.
fn h264_publisher(hub: &Arc<Hub>, name: &str, conn_id: u64) -> Publisher {
    let mut p = hub
        .publish("live", name, crate::hub::Holder::open(conn_id))
        .unwrap()
        .publisher;
    let avc = AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap();
    p.config(CodecConfig::H264(avc));
    p
}

#[test]
fn a_rung_joining_later_by_the_wall_clock_aligns_with_the_ladder() {
    let (time, clock) = crate::clock::Time::fake();
    let hub = Hub::with_time(Arc::new(Config::default()), time);
    let mut hi = h264_publisher(&hub, "show_720p", 1);
    feed(&mut hi, 0, 6000);
    // The second rung's encoder starts its own clock at 0, 4 s (and a little jitter) of
    // wall-clock time after the first: by arrival it lands next to the 4 s boundary, and
    // its first keyframe snaps onto it.
    clock.advance(std::time::Duration::from_millis(4012));
    let mut lo = h264_publisher(&hub, "show_360p", 2);
    feed(&mut lo, 0, 4000);
    feed(&mut hi, 6000, 8040);
    feed(&mut lo, 4000, 4040);
    let (hi_segments, lo_segments) = (segments(&hi), segments(&lo));
    assert_eq!(lo_segments.len(), 2, "{lo_segments:?}");
    for s in &lo_segments {
        assert!(hi_segments.contains(s), "{s:?} not in {hi_segments:?}");
    }
    assert_eq!(lo.rendition().read().misalignment_ms, 0.0);
    // The mapping follows the (fake) wall clock, not the media times alone.
    assert_eq!(
        lo_segments[0].1 - hi_segments[0].1,
        4 * 90_000,
        "starts at the 4 s boundary"
    );
}

/// Every part of `p`'s video track, in order: (id, mfhd sequence number).
fn video_parts(p: &Publisher) -> Vec<(u64, u32)> {
    use mp4_atom::{Decode, Moof, Styp};
    let state = p.rendition().read();
    let window = &state.video.as_ref().expect("video track").window;
    let segments = window.listed().chain(window.open());
    let parts = segments.flat_map(|s| s.parts.iter());
    parts
        .map(|part| {
            let mut buf = &part.data[..];
            if buf[4..8] == *b"styp" {
                Styp::decode(&mut buf).unwrap();
            }
            (
                part.id,
                Moof::decode(&mut buf).unwrap().mfhd.sequence_number,
            )
        })
        .collect()
}

#[test]
fn part_ids_never_repeat_and_fragments_count_from_one() {
    // The smallest part target accepted, and a whole stream in one instant of wall-clock
    // time: parts far faster than the clock (a file published without pacing).
    let config = Config::from_toml("[low_latency]\npart_target = 0.05\n").unwrap();
    let (time, clock) = crate::clock::Time::fake();
    let hub = Hub::with_time(Arc::new(config), time);
    let mut first = h264_publisher(&hub, "ids", 1);
    feed(&mut first, 0, 6000);
    let before = video_parts(&first);
    assert!(before.len() > 100, "{} parts", before.len());
    let ids: Vec<u64> = before.iter().map(|p| p.0).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "contiguous ids");
    // mfhd numbers count the track's fragments from 1 under its init segment.
    let numbers: Vec<u32> = before.iter().map(|p| p.1).collect();
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>());
    first.finish_as(Departure::Clean);
    drop(first);
    // Published again a millisecond later: fresh playlists, and no part URL of the first
    // publish comes back.
    clock.advance(std::time::Duration::from_millis(1));
    let mut again = h264_publisher(&hub, "ids", 2);
    feed(&mut again, 0, 2040);
    let after = video_parts(&again);
    assert!(!after.is_empty());
    let last_before = *ids.last().unwrap();
    assert!(
        after.iter().all(|p| p.0 > last_before),
        "{after:?} after {last_before}"
    );
    assert_eq!(
        after[0].1, 1,
        "fragments count from 1 again under the new init"
    );
}

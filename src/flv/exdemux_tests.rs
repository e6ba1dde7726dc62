//! Tests of Enhanced RTMP tag bodies (HEVC, AV1, VP9, H.264, AAC, Opus) → demux events.

use bytes::Bytes;

use super::*;
use crate::codec::av1::tests::AV1C_320X240;
use crate::codec::hevc::tests::HVCC_320X240;
use crate::codec::opus::tests::OPUS_HEAD_MONO;
use crate::codec::vp9::tests::VPCC_320X240;
use crate::flv::demux::tests::{config, frame};
use crate::flv::TrackEvent;

/// The start of a profile 0 VP9 key frame of 320x240 (uncompressed header).
const VP9_KEY_320X240: &[u8] = &[0x82, 0x49, 0x83, 0x42, 0x40, 0x13, 0xF0, 0x0E, 0xF0, 0x00];

fn body(head: &[u8], rest: &[u8]) -> Bytes {
    let mut b = head.to_vec();
    b.extend_from_slice(rest);
    Bytes::from(b)
}

#[test]
fn hevc_sequence_start_and_frames() {
    let mut d = TagDemuxer::new();
    // A frame before the sequence start has nothing to decode with.
    assert_eq!(
        d.video(0, body(b"\x91hvc1", &[0, 0, 0, 0, 0, 0, 1, 0x26])),
        Err(FlvError::NoConfig("video"))
    );
    let c = config(d.video(0, body(b"\x90hvc1", HVCC_320X240)));
    assert_eq!(c.codec_string(), "hvc1.1.6.L60.90");
    assert_eq!(c.resolution(), Some((320, 240)));
    // CodedFrames: SI24 composition time 67 ms, then the length-prefixed NAL units.
    let f = frame(d.video(1000, body(b"\x91hvc1", &[0, 0, 67, 0, 0, 0, 2, 0x26, 0x01])));
    assert_eq!((f.dts, f.pts, f.keyframe), (90_000, 90_000 + 67 * 90, true));
    assert_eq!(&f.data[..], &[0, 0, 0, 2, 0x26, 0x01]);
    // CodedFramesX, inter frame: no composition time.
    let f = frame(d.video(1033, body(b"\xA3hvc1", &[0, 0, 0, 2, 0x02, 0x01])));
    assert_eq!((f.dts, f.pts, f.keyframe), (1033 * 90, 1033 * 90, false));
    // Metadata (colorInfo) and command frames carry nothing to package.
    assert_eq!(d.video(0, body(b"\xD4hvc1", &[2, 0, 9])), Ok(None));
    assert_eq!(
        d.video(2000, body(b"\x92hvc1", &[])),
        Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Video)))
    );
}

#[test]
fn av1_and_vp9() {
    let mut d = TagDemuxer::new();
    let c = config(d.video(0, body(b"\x90av01", AV1C_320X240)));
    assert_eq!(c.codec_string(), "av01.0.00M.08");
    // AV1 CodedFrames have no composition time; the temporal delimiter is dropped.
    let f = frame(d.video(40, body(b"\x91av01", &[0x12, 0x00, 0x32, 0x01, 0xAA])));
    assert_eq!((f.dts, f.pts, f.keyframe), (40 * 90, 40 * 90, true));
    assert_eq!(&f.data[..], &[0x32, 0x01, 0xAA]);
    // A VP9 frame while AV1 is configured is refused, not mispackaged.
    assert_eq!(
        d.video(50, body(b"\x91vp09", &[0x82, 0x49])),
        Err(FlvError::NoConfig("video"))
    );
    // vpcC has no picture size: the configuration is announced with the first key
    // frame (whose header has it), inter frames before it are dropped.
    assert_eq!(d.video(60, body(b"\x90vp09", VPCC_320X240)), Ok(None));
    assert_eq!(d.video(65, body(b"\xA1vp09", &[0x86, 0x00])), Ok(None));
    let key = body(b"\x91vp09", VP9_KEY_320X240);
    let events = d.video_tracks(70, key);
    let c = match &events[..] {
        [TrackEvent {
            track: 0,
            event: Ok(Some(DemuxEvent::Config(c))),
        }, TrackEvent {
            track: 0,
            event: Ok(Some(DemuxEvent::Frame(f))),
        }] if f.keyframe => c.clone(),
        other => panic!("expected a config then the key frame: {other:?}"),
    };
    assert_eq!(c.codec_string(), "vp09.00.20.08");
    assert_eq!(c.resolution(), Some((320, 240)));
    let f = frame(d.video(100, body(b"\xA1vp09", &[0x86, 0x00])));
    assert_eq!((f.dts, f.keyframe), (100 * 90, false));
    // A repeated sequence start keeps the size: no new configuration.
    let again = config(d.video(130, body(b"\x90vp09", VPCC_320X240)));
    assert_eq!(again, c);
}

#[test]
fn opus_and_enhanced_aac() {
    let mut d = TagDemuxer::new();
    let c = config(d.audio(0, body(b"\x90Opus", OPUS_HEAD_MONO)));
    assert_eq!(
        (c.codec_string(), c.timescale()),
        ("opus".to_string(), 48_000)
    );
    assert_eq!(c.audio_format(), Some((48_000, 1)));
    // MultichannelConfig is informational.
    assert_eq!(d.audio(0, body(b"\x94Opus", &[1, 1, 0, 0, 0, 4])), Ok(None));
    let f = frame(d.audio(21, body(b"\x91Opus", &[0xF8, 0xFF, 0xFE])));
    assert_eq!(
        (f.dts, f.kind, f.keyframe),
        (21 * 90, TrackKind::Audio, true)
    );
    assert_eq!(&f.data[..], &[0xF8, 0xFF, 0xFE]);
    let c = config(d.audio(40, body(b"\x90mp4a", &[0x12, 0x10])));
    assert_eq!(c.codec_string(), "mp4a.40.2");
}

#[test]
fn mod_ex_nanosecond_offset_lands_on_the_media_clock() {
    let mut d = TagDemuxer::new();
    config(d.video(0, body(b"\x90av01", AV1C_320X240)));
    // ModEx: 3 bytes (size - 1 = 2) of TimestampOffsetNano = 500 000 ns, then
    // modifier type 0 / packet type 1 (CodedFrames), key frame.
    let f = frame(d.video(
        10,
        body(b"\x97\x02\x07\xA1\x20\x01av01", &[0x32, 0x01, 0xAA]),
    ));
    assert_eq!(f.dts, 10 * 90 + 45, "0.5 ms is 45 ticks at 90 kHz");
}

#[test]
fn unsupported_fourccs_and_multitrack_are_refused() {
    let mut d = TagDemuxer::new();
    for (video, b) in [
        (true, body(b"\x90vp08", &[1])),
        (false, body(b"\x90fLaC", &[1])),
        (false, body(b"\x90ac-3", &[1])),
        // An audio FourCC in a video message.
        (true, body(b"\x90Opus", OPUS_HEAD_MONO)),
        // Multitrack (OneTrack of SequenceStart).
        (true, body(b"\x96\x00hvc1\x00", HVCC_320X240)),
    ] {
        let r = if video { d.video(0, b) } else { d.audio(0, b) };
        match r {
            Err(FlvError::Unsupported(m)) => assert!(m.contains("FourCC"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(d.video_config().is_none() && d.audio_config().is_none());
    // A broken record is a BadConfig that leaves no configuration behind.
    assert!(matches!(
        d.video(0, body(b"\x90hvc1", &HVCC_320X240[..30])),
        Err(FlvError::BadConfig(_))
    ));
    assert!(d.video_config().is_none());
}

#[test]
fn random_enhanced_bodies_never_panic() {
    let mut noise = crate::codec::noise::Noise::new(0x2545_F491_4F6C_DD1Du64);
    let mut next = move || noise.next();
    let mut d = TagDemuxer::new();
    config(d.video(0, body(b"\x90hvc1", HVCC_320X240)));
    let heads: [&[u8]; 4] = [b"\x91hvc1", b"\x97", b"\x90av01", b"\x91Opus"];
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let head = heads[(next() % 4) as usize];
        let rest: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = d.video(next() as u32, body(head, &rest));
        let mut a = body(head, &rest).to_vec();
        a[0] = 0x90 | (a[0] & 0x0F);
        let _ = d.audio(next() as u32, Bytes::from(a));
    }
}

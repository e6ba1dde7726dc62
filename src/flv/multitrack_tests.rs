//! Tests of Enhanced RTMP multitrack demuxing: one event per track, and bad messages as
//! errors rather than panics.

use bytes::Bytes;

use super::*;
use crate::codec::av1::tests::AV1C_320X240;
use crate::codec::h264::tests::AVCC_640X360;
use crate::codec::hevc::tests::HVCC_320X240;
use crate::media::CodecConfig;

fn msg(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
}

fn size(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

fn codec_of(e: &TrackEvent) -> Option<String> {
    match &e.event {
        Ok(Some(DemuxEvent::Config(c))) => Some(c.codec_string()),
        _ => None,
    }
}

#[test]
fn one_track_messages_as_ffmpeg_sends_them() {
    let mut d = TagDemuxer::new();
    // Track 0 as a legacy AVC sequence header, track 1 as OneTrack multitrack.
    let mut legacy = vec![0x17, 0, 0, 0, 0];
    legacy.extend_from_slice(AVCC_640X360);
    let e = d.video_tracks(0, Bytes::from(legacy));
    assert_eq!((e.len(), e[0].track), (1, 0));
    let e = d.video_tracks(0, msg(&[&[0x96, 0x00], b"avc1", &[1], AVCC_640X360]));
    assert_eq!((e.len(), e[0].track), (1, 1));
    assert_eq!(codec_of(&e[0]).as_deref(), Some("avc1.64001e"));
    // CodedFrames for track 1: SI24 composition time, then the sample.
    let e = d.video_tracks(
        100,
        msg(&[
            &[0x96, 0x01],
            b"avc1",
            &[1],
            &[0, 0, 33],
            &[0, 0, 0, 1, 0x65],
        ]),
    );
    match &e[0].event {
        Ok(Some(DemuxEvent::Frame(f))) => {
            assert_eq!((f.dts, f.pts, f.keyframe), (9_000, 9_000 + 33 * 90, true));
            assert_eq!(&f.data[..], &[0, 0, 0, 1, 0x65]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e[0].track, 1);
    // Track 0's state is the demuxer's own, track 1's is separate.
    assert!(matches!(d.video_config(), Some(CodecConfig::H264(_))));
    assert_eq!(d.tracks.len(), 1);
}

#[test]
fn many_tracks_with_one_or_many_codecs() {
    let mut d = TagDemuxer::new();
    let e = d.video_tracks(
        0,
        msg(&[
            &[0x96, 0x10],
            b"hvc1",
            &[0],
            &size(HVCC_320X240.len()),
            HVCC_320X240,
            &[2],
            &size(HVCC_320X240.len()),
            HVCC_320X240,
        ]),
    );
    let tracks: Vec<_> = e.iter().map(|e| (e.track, codec_of(e))).collect();
    let hvc1 = Some("hvc1.1.6.L60.90".to_string());
    assert_eq!(tracks, [(0, hvc1.clone()), (2, hvc1.clone())]);
    let e = d.video_tracks(
        0,
        msg(&[
            &[0x96, 0x20],
            b"av01",
            &[3],
            &size(AV1C_320X240.len()),
            AV1C_320X240,
            b"vp08",
            &[4],
            &size(1),
            &[0],
        ]),
    );
    assert_eq!(codec_of(&e[0]).as_deref(), Some("av01.0.00M.08"));
    assert!(
        matches!(&e[1].event, Err(FlvError::Unsupported(m)) if m.contains("vp08")),
        "{e:?}"
    );
}

#[test]
fn bad_multitrack_messages_are_errors_not_panics() {
    let mut d = TagDemuxer::new();
    // A track size past the end of the message.
    let e = d.video_tracks(0, msg(&[&[0x96, 0x10], b"hvc1", &[1], &[0, 0, 9], &[1, 2]]));
    assert_eq!(
        e[0].event,
        Err(FlvError::Truncated("Enhanced RTMP multitrack video"))
    );
    // Tracks beyond the cap are refused.
    for id in 1..=MAX_TRACKS as u8 {
        let e = d.audio_tracks(0, msg(&[&[0x95, 0x00], b"mp4a", &[id], &[0x12, 0x10]]));
        let ok = usize::from(id) < MAX_TRACKS;
        assert_eq!(e[0].event.is_ok(), ok, "track {id}: {e:?}");
    }
    let mut noise = crate::codec::noise::Noise::new(0x2545_F491_4F6C_DD1D);
    for _ in 0..20_000 {
        let state = noise.next();
        let len = (state % 20) as usize;
        let mut body = vec![0x96, (state >> 8) as u8 & 0x21];
        body.extend((0..len).map(|i| (state >> (i % 56)) as u8));
        let _ = d.video_tracks(state as u32, Bytes::from(body.clone()));
        body[0] = 0x95;
        let _ = d.audio_tracks(state as u32, Bytes::from(body));
    }
}

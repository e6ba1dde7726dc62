//! Per-stream FLV demuxing: tag bodies in, codec configurations and frames out.

use bytes::Bytes;

use super::budget::{ChangeLog, ConfigBudget};
use super::enhanced;
use super::error::FlvError;
use super::tag::{parse_audio, parse_video, AudioTag, VideoTag};
use super::timestamp::Unwrapper;
use crate::codec::aac::AacConfig;
use crate::codec::h264::AvcConfig;
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};

const TICKS_PER_MS: i64 = MEDIA_CLOCK as i64 / 1000;
const NANOS_PER_TICK: i64 = 1_000_000_000 / MEDIA_CLOCK as i64;

/// Something the demuxer produced.
#[derive(Debug, PartialEq)]
pub enum DemuxEvent {
    /// A decoder configuration for a track, sent for every sequence header (even an
    /// unchanged one: the consumer decides what a repeat means).
    Config(CodecConfig),
    /// A frame.
    Frame(Frame),
    /// The encoder ended a track's sequence.
    EndOfSequence(TrackKind),
}

/// Demuxes one published stream.
///
/// Audio and video share one unwrapper: RTMP stamps both from the same clock, and one
/// timeline keeps their relative timing exact across a 2^32 ms wrap. (Per-track unwrappers
/// could each decide a wrap on their own, and a track that starts late or pauses for days
/// would then land a whole 2^32 ms away from the other.)
#[derive(Debug, Default)]
pub struct TagDemuxer {
    clock: Unwrapper,
    pub(super) video: Option<CodecConfig>,
    pub(super) audio: Option<CodecConfig>,
    pub(super) budget: ConfigBudget,
    /// Enhanced RTMP multitrack: the state of every track but 0 (see `multitrack.rs`).
    pub(super) tracks: std::collections::BTreeMap<u8, TagDemuxer>,
    /// A VP9 configuration waits for its first key frame (see `exdemux.rs`).
    pub(super) vp9_unannounced: bool,
    /// A configuration to deliver before the frame just returned.
    pub(super) announcement: Option<CodecConfig>,
    video_changes: ChangeLog,
    audio_changes: ChangeLog,
}

impl TagDemuxer {
    /// A demuxer with no configuration yet and the default budgets.
    pub fn new() -> Self {
        Self::default()
    }

    /// A demuxer whose sequence headers are held to `budget`.
    pub fn with_budget(budget: ConfigBudget) -> Self {
        TagDemuxer {
            budget,
            ..Self::default()
        }
    }

    /// The current video configuration.
    pub fn video_config(&self) -> Option<&CodecConfig> {
        self.video.as_ref()
    }

    /// The current audio configuration.
    pub fn audio_config(&self) -> Option<&CodecConfig> {
        self.audio.as_ref()
    }

    /// Makes `config` current for its track (a change counts against the budget) and
    /// returns the event announcing it.
    pub(super) fn configure(
        &mut self,
        config: CodecConfig,
        timestamp_ms: u32,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        let (slot, changes) = match config.kind() {
            TrackKind::Video => (&mut self.video, &mut self.video_changes),
            TrackKind::Audio => (&mut self.audio, &mut self.audio_changes),
        };
        if slot.as_ref().is_some_and(|old| *old != config) {
            changes.change(&self.budget, timestamp_ms)?;
        }
        *slot = Some(config.clone());
        Ok(Some(DemuxEvent::Config(config)))
    }

    /// One video message body at RTMP time `timestamp_ms`.
    ///
    /// `Ok(None)` for bodies that carry nothing to package (empty messages, command
    /// frames, empty coded frames). A bad sequence header is an error and keeps the
    /// previous configuration; so is one over budget (`FlvError::Limit`, which should
    /// close the connection).
    pub fn video(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        match body.first() {
            None => return Ok(None),
            Some(b) if enhanced::is_ex_video(*b) => return self.ex_video(timestamp_ms, body),
            Some(_) => {}
        }
        match parse_video(body)? {
            VideoTag::AvcSequenceHeader(record) => {
                self.budget.record(record.len())?;
                let config =
                    AvcConfig::parse(record).map_err(|e| FlvError::BadConfig(e.to_string()))?;
                self.configure(CodecConfig::H264(config), timestamp_ms)
            }
            VideoTag::AvcFrame {
                keyframe,
                cts_ms,
                data,
            } => {
                if !matches!(self.video, Some(CodecConfig::H264(_))) {
                    return Err(FlvError::NoConfig("video"));
                }
                // Some encoders send header-only packets; an empty sample would only
                // confuse the muxers.
                if data.is_empty() {
                    return Ok(None);
                }
                Ok(Some(self.frame(
                    TrackKind::Video,
                    (timestamp_ms, 0),
                    cts_ms,
                    keyframe,
                    data,
                )))
            }
            VideoTag::AvcEndOfSequence => Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Video))),
            VideoTag::Command => Ok(None),
        }
    }

    /// One audio message body at RTMP time `timestamp_ms`; `Ok(None)` for empty ones.
    pub fn audio(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        match body.first() {
            None => return Ok(None),
            Some(b) if enhanced::is_ex_audio(*b) => return self.ex_audio(timestamp_ms, body),
            Some(_) => {}
        }
        match parse_audio(body)? {
            AudioTag::AacSequenceHeader(asc) => {
                self.budget.record(asc.len())?;
                let config =
                    AacConfig::parse(asc).map_err(|e| FlvError::BadConfig(e.to_string()))?;
                self.configure(CodecConfig::Aac(config), timestamp_ms)
            }
            AudioTag::AacFrame(data) => {
                if !matches!(self.audio, Some(CodecConfig::Aac(_))) {
                    return Err(FlvError::NoConfig("audio"));
                }
                if data.is_empty() {
                    return Ok(None);
                }
                // Every AAC frame decodes on its own, and audio has no reordering.
                Ok(Some(self.frame(
                    TrackKind::Audio,
                    (timestamp_ms, 0),
                    0,
                    true,
                    data,
                )))
            }
        }
    }

    /// A frame at RTMP time `timestamp_ms` plus `nanos` (Enhanced RTMP's ModEx offset), on
    /// the shared unwrapped 90 kHz timeline.
    pub(super) fn frame(
        &mut self,
        kind: TrackKind,
        (timestamp_ms, nanos): (u32, u32),
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    ) -> DemuxEvent {
        let dts =
            self.clock.unwrap(timestamp_ms) * TICKS_PER_MS + i64::from(nanos) / NANOS_PER_TICK;
        let pts = dts + i64::from(cts_ms) * TICKS_PER_MS;
        DemuxEvent::Frame(Frame {
            kind,
            dts,
            pts,
            keyframe,
            data,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::codec::h264::tests::AVCC_640X360;
    use crate::flv::file::read_tags;
    use crate::limit::Limit;

    fn avc_header() -> Bytes {
        let mut b = vec![0x17, 0x00, 0, 0, 0];
        b.extend_from_slice(AVCC_640X360);
        Bytes::from(b)
    }

    const AAC_HEADER: &[u8] = &[0xAF, 0, 0x12, 0x10];

    /// A demuxer that has seen both sequence headers.
    fn configured() -> TagDemuxer {
        let mut d = TagDemuxer::new();
        d.video(0, avc_header()).unwrap();
        d.audio(0, Bytes::from_static(AAC_HEADER)).unwrap();
        d
    }

    /// The demuxer's answer, which must be an event.
    fn event(answer: Result<Option<DemuxEvent>, FlvError>) -> DemuxEvent {
        answer
            .unwrap_or_else(|e| panic!("expected an event, got {e:?}"))
            .expect("expected an event, got none")
    }

    /// The demuxer's answer, which must be a frame.
    pub(in crate::flv) fn frame(answer: Result<Option<DemuxEvent>, FlvError>) -> Frame {
        let DemuxEvent::Frame(f) = event(answer) else {
            panic!("expected a frame")
        };
        f
    }

    /// The demuxer's answer, which must be a configuration.
    pub(in crate::flv) fn config(answer: Result<Option<DemuxEvent>, FlvError>) -> CodecConfig {
        let DemuxEvent::Config(c) = event(answer) else {
            panic!("expected a config")
        };
        c
    }

    #[test]
    fn config_then_frames() {
        let mut d = TagDemuxer::new();
        assert_eq!(
            d.video(0, Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])),
            Err(FlvError::NoConfig("video"))
        );
        assert!(d.video_config().is_none());
        match d.video(0, avc_header()).unwrap() {
            Some(DemuxEvent::Config(CodecConfig::H264(c))) => assert_eq!(c.width, 640),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.video_config().and_then(|c| c.resolution()),
            Some((640, 360))
        );
        let body = Bytes::from_static(&[0x17, 1, 0, 0, 0x21, 0, 0, 0, 1, 0x65]);
        let f = frame(d.video(1000, body.clone()));
        assert_eq!(f.kind, TrackKind::Video);
        assert_eq!((f.dts, f.pts, f.keyframe), (90_000, 90_000 + 33 * 90, true));
        assert_eq!(&f.data[..], &[0, 0, 0, 1, 0x65]);
        assert_eq!(f.data.as_ptr(), body[5..].as_ptr(), "zero-copy");
        assert_eq!(
            d.audio(0, Bytes::from_static(&[0xAF, 1, 7])),
            Err(FlvError::NoConfig("audio"))
        );
        assert!(matches!(
            d.audio(0, Bytes::from_static(AAC_HEADER)).unwrap(),
            Some(DemuxEvent::Config(CodecConfig::Aac(_)))
        ));
        assert_eq!(
            d.audio_config().and_then(|c| c.audio_format()),
            Some((44_100, 2))
        );
        let a = frame(d.audio(1023, Bytes::from_static(&[0xAF, 1, 7])));
        assert_eq!(
            (a.dts, a.pts, a.kind, a.keyframe),
            (1023 * 90, 1023 * 90, TrackKind::Audio, true)
        );
    }

    #[test]
    fn composition_offsets_both_ways() {
        let mut d = configured();
        let f = frame(d.video(
            100,
            Bytes::from_static(&[0x27, 1, 0, 0, 0x42, 0, 0, 0, 1, 0x41]),
        ));
        assert_eq!((f.dts, f.pts, f.keyframe), (9_000, 9_000 + 66 * 90, false));
        // Negative CTS (some encoders shift DTS forward instead of PTS back).
        let f = frame(d.video(
            200,
            Bytes::from_static(&[0x27, 1, 0xFF, 0xFF, 0xDF, 0, 0, 0, 1, 0x41]),
        ));
        assert_eq!((f.dts, f.pts), (18_000, 18_000 - 33 * 90));
    }

    #[test]
    fn nothing_to_package_is_none() {
        let mut d = configured();
        assert_eq!(d.video(5, Bytes::new()), Ok(None));
        assert_eq!(d.audio(5, Bytes::new()), Ok(None));
        assert_eq!(
            d.video(5, Bytes::from_static(&[0x17, 1, 0, 0, 0])),
            Ok(None)
        );
        assert_eq!(d.audio(5, Bytes::from_static(&[0xAF, 1])), Ok(None));
        assert_eq!(d.video(5, Bytes::from_static(&[0x57, 0])), Ok(None));
        assert_eq!(
            d.video(5, Bytes::from_static(&[0x17, 2, 0, 0, 0])),
            Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Video)))
        );
        // Still configured after the end of sequence: the encoder may carry on.
        assert!(d.video_config().is_some());
    }

    #[test]
    fn errors_not_panics() {
        let mut d = configured();
        let unsupported =
            |r: Result<Option<DemuxEvent>, FlvError>| matches!(r, Err(FlvError::Unsupported(_)));
        assert!(unsupported(d.video(0, Bytes::from_static(&[0x12, 0]))));
        assert!(unsupported(d.audio(0, Bytes::from_static(&[0x2F, 0]))));
        assert!(unsupported(
            d.video(0, Bytes::from_static(&[0x90, b'v', b'p', b'0', b'8']))
        ));
        assert!(unsupported(
            d.audio(0, Bytes::from_static(&[0x90, b'f', b'L', b'a', b'C']))
        ));
        assert_eq!(
            d.video(0, Bytes::from_static(&[0x17, 1, 0])),
            Err(FlvError::Truncated("AVC video"))
        );
        assert_eq!(
            d.audio(0, Bytes::from_static(&[0xAF])),
            Err(FlvError::Truncated("AAC audio"))
        );
    }

    #[test]
    fn bad_sequence_header_keeps_the_old_config() {
        let mut d = configured();
        let e = d
            .video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]))
            .unwrap_err();
        assert!(matches!(e, FlvError::BadConfig(_)), "{e:?}");
        assert_eq!(
            d.video_config().and_then(|c| c.resolution()),
            Some((640, 360))
        );
        let e = d
            .audio(0, Bytes::from_static(&[0xAF, 0, 0x16, 0x90]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad sequence header: reserved sampling frequency index 13"
        );
        assert_eq!(
            d.audio_config().and_then(|c| c.audio_format()),
            Some((44_100, 2))
        );
        // A fresh demuxer with only a broken header still has no config.
        let mut d = TagDemuxer::new();
        assert!(d.audio(0, Bytes::from_static(&[0xAF, 0])).is_err());
        assert!(d.audio_config().is_none());
    }

    #[test]
    fn sequence_headers_over_budget_are_limit_errors() {
        let budget = ConfigBudget {
            record_bytes: 256,
            changes: 1,
            span_ms: 10_000,
        };
        let mut d = TagDemuxer::with_budget(budget);
        // A 2 MiB "SPS" is refused by size before it is parsed.
        let mut huge = vec![0x17, 0, 0, 0, 0];
        huge.extend(std::iter::repeat_n(0u8, 2 << 20));
        let e = d.video(0, Bytes::from(huge)).unwrap_err();
        assert!(
            matches!(&e, FlvError::Limit(l) if l.limit == Limit::ConfigRecordBytes),
            "{e:?}"
        );
        assert!(d.video_config().is_none());
        let mut asc = vec![0xAF, 0];
        asc.extend(std::iter::repeat_n(0x12u8, 300));
        assert!(matches!(
            d.audio(0, Bytes::from(asc)),
            Err(FlvError::Limit(_))
        ));
        // Repeats are free; one change per 10 s of media is allowed, a second is not.
        for ts in 0..5 {
            d.audio(ts, Bytes::from_static(AAC_HEADER)).unwrap();
        }
        let other = Bytes::from_static(&[0xAF, 0, 0x11, 0x90]);
        d.audio(100, other.clone()).unwrap();
        let e = d.audio(200, Bytes::from_static(AAC_HEADER)).unwrap_err();
        assert!(
            matches!(&e, FlvError::Limit(l) if l.limit == Limit::InitVersions),
            "{e:?}"
        );
        assert_eq!(
            d.audio_config().and_then(|c| c.audio_format()),
            Some((48_000, 2))
        );
        d.audio(10_100, Bytes::from_static(AAC_HEADER)).unwrap();
        assert_eq!(
            d.audio_config().and_then(|c| c.audio_format()),
            Some((44_100, 2))
        );
    }

    #[test]
    fn one_clock_across_the_wrap() {
        let mut d = configured();
        let v = frame(d.video(u32::MAX - 20, Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])));
        let a = frame(d.audio(u32::MAX - 1, Bytes::from_static(&[0xAF, 1, 7])));
        let v2 = frame(d.video(13, Bytes::from_static(&[0x27, 1, 0, 0, 0, 9])));
        // Audio slightly behind video across the wrap stays behind it.
        let a2 = frame(d.audio(3, Bytes::from_static(&[0xAF, 1, 7])));
        let wrap = (1i64 << 32) * 90;
        assert_eq!(v.dts, (i64::from(u32::MAX) - 20) * 90);
        assert_eq!(a.dts, (i64::from(u32::MAX) - 1) * 90);
        assert_eq!(v2.dts, wrap + 13 * 90);
        assert_eq!(a2.dts, wrap + 3 * 90);
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut noise = crate::codec::noise::Noise::new(0x2545_F491_4F6C_DD1Du64);
        let mut next = move || noise.next();
        let mut d = configured();
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer half the bodies into the interesting AVC/AAC paths.
            if let Some(b) = body.first_mut().filter(|_| next() % 2 == 0) {
                *b = if next() % 2 == 0 { 0x17 } else { 0xAF };
            }
            let ts = next() as u32;
            let _ = d.video(ts, Bytes::from(body.clone()));
            let _ = d.audio(ts, Bytes::from(body));
        }
    }

    #[test]
    fn demuxes_the_sample_file() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/h264_aac_640x360.flv"
        ))
        .unwrap();
        let mut d = TagDemuxer::new();
        let (mut video, mut audio, mut keys, mut configs, mut eos) = (vec![], 0, 0, 0, 0);
        for tag in read_tags(Bytes::from(data)).unwrap() {
            let event = match tag.kind {
                8 => d.audio(tag.timestamp, tag.body),
                9 => d.video(tag.timestamp, tag.body),
                _ => continue,
            };
            match event.unwrap() {
                Some(DemuxEvent::Config(_)) => configs += 1,
                Some(DemuxEvent::Frame(f)) if f.kind == TrackKind::Video => {
                    keys += usize::from(f.keyframe);
                    video.push(f);
                }
                Some(DemuxEvent::Frame(_)) => audio += 1,
                Some(DemuxEvent::EndOfSequence(_)) => eos += 1,
                None => {}
            }
        }
        assert_eq!((configs, eos), (2, 1));
        assert_eq!(video.len(), 360, "12 s at 30 fps");
        assert_eq!(keys, 6, "2 s GOPs");
        assert!(audio > 500);
        assert!(video[0].keyframe);
        assert_eq!(video[0].dts, 0);
        // B-frames: some PTS ahead of DTS, never behind.
        assert!(video.iter().any(|f| f.pts > f.dts));
        assert!(video.iter().all(|f| f.pts >= f.dts));
        assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
        let c = d.video_config().unwrap();
        assert_eq!(
            (c.resolution(), c.frame_rate()),
            (Some((640, 360)), Some(30.0))
        );
    }
}

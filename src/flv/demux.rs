//! Per-stream FLV demuxing: tag bodies in, codec configurations and frames out.

use bytes::Bytes;

use super::tag::{parse_audio, parse_video, AudioTag, FlvError, VideoTag};
use super::timestamp::Unwrapper;
use crate::codec::aac::AacConfig;
use crate::codec::h264::AvcConfig;
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};

const TICKS_PER_MS: i64 = MEDIA_CLOCK as i64 / 1000;

/// Something the demuxer produced.
#[derive(Debug, PartialEq)]
pub enum DemuxEvent {
    /// A (new) decoder configuration for a track.
    Config(CodecConfig),
    /// A frame.
    Frame(Frame),
    /// The encoder ended a track's sequence.
    EndOfSequence(TrackKind),
}

/// Demuxes one published stream.
///
/// Audio and video share one unwrapper: RTMP stamps both from the same clock, and one
/// timeline keeps their relative timing exact across a 2^32 ms wrap.
#[derive(Debug, Default)]
pub struct TagDemuxer {
    clock: Unwrapper,
    video: Option<AvcConfig>,
    audio: Option<AacConfig>,
}

impl TagDemuxer {
    /// A demuxer with no configuration yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current video configuration.
    pub fn video_config(&self) -> Option<&AvcConfig> {
        self.video.as_ref()
    }

    /// The current audio configuration.
    pub fn audio_config(&self) -> Option<&AacConfig> {
        self.audio.as_ref()
    }

    /// One video message body at RTMP time `timestamp_ms`.
    pub fn video(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        if body.is_empty() {
            return Ok(None);
        }
        match parse_video(body)? {
            VideoTag::AvcSequenceHeader(record) => {
                let config =
                    AvcConfig::parse(record).map_err(|e| FlvError::BadConfig(e.to_string()))?;
                self.video = Some(config.clone());
                Ok(Some(DemuxEvent::Config(CodecConfig::H264(config))))
            }
            VideoTag::AvcFrame {
                keyframe,
                cts_ms,
                data,
            } => {
                if self.video.is_none() {
                    return Err(FlvError::NoConfig("video"));
                }
                Ok(Some(self.frame(
                    TrackKind::Video,
                    timestamp_ms,
                    cts_ms,
                    keyframe,
                    data,
                )))
            }
            VideoTag::AvcEndOfSequence => Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Video))),
            VideoTag::Command => Ok(None),
        }
    }

    /// A frame at RTMP time `timestamp_ms`, on the shared unwrapped 90 kHz timeline.
    fn frame(
        &mut self,
        kind: TrackKind,
        timestamp_ms: u32,
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    ) -> DemuxEvent {
        let dts = self.clock.unwrap(timestamp_ms) * TICKS_PER_MS;
        let pts = dts + i64::from(cts_ms) * TICKS_PER_MS;
        DemuxEvent::Frame(Frame {
            kind,
            dts,
            pts,
            keyframe,
            data,
        })
    }

    /// One audio message body at RTMP time `timestamp_ms`.
    pub fn audio(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        if body.is_empty() {
            return Ok(None);
        }
        match parse_audio(body)? {
            AudioTag::AacSequenceHeader(asc) => {
                let config =
                    AacConfig::parse(asc).map_err(|e| FlvError::BadConfig(e.to_string()))?;
                self.audio = Some(config.clone());
                Ok(Some(DemuxEvent::Config(CodecConfig::Aac(config))))
            }
            AudioTag::AacFrame(data) => {
                if self.audio.is_none() {
                    return Err(FlvError::NoConfig("audio"));
                }
                Ok(Some(self.frame(
                    TrackKind::Audio,
                    timestamp_ms,
                    0,
                    true,
                    data,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h264::tests::AVCC_640X360;

    fn avc_header() -> Bytes {
        let mut b = vec![0x17, 0x00, 0, 0, 0];
        b.extend_from_slice(AVCC_640X360);
        Bytes::from(b)
    }

    #[test]
    fn config_then_frames() {
        let mut d = TagDemuxer::new();
        assert_eq!(
            d.video(0, Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])),
            Err(FlvError::NoConfig("video"))
        );
        match d.video(0, avc_header()).unwrap() {
            Some(DemuxEvent::Config(CodecConfig::H264(c))) => assert_eq!(c.width, 640),
            other => panic!("{other:?}"),
        }
        let frame = d
            .video(
                1000,
                Bytes::from_static(&[0x17, 1, 0, 0, 0x21, 0, 0, 0, 1, 0x65]),
            )
            .unwrap();
        let Some(DemuxEvent::Frame(f)) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!((f.dts, f.pts, f.keyframe), (90_000, 90_000 + 33 * 90, true));
        assert_eq!(&f.data[..], &[0, 0, 0, 1, 0x65]);
        assert_eq!(
            d.audio(0, Bytes::from_static(&[0xAF, 1, 7])),
            Err(FlvError::NoConfig("audio"))
        );
        assert!(matches!(
            d.audio(0, Bytes::from_static(&[0xAF, 0, 0x12, 0x10]))
                .unwrap(),
            Some(DemuxEvent::Config(CodecConfig::Aac(_)))
        ));
        let Some(DemuxEvent::Frame(a)) = d.audio(1023, Bytes::from_static(&[0xAF, 1, 7])).unwrap()
        else {
            panic!()
        };
        assert_eq!((a.dts, a.kind), (1023 * 90, TrackKind::Audio));
        assert_eq!(d.video(5, Bytes::new()), Ok(None));
    }

    #[test]
    fn bad_sequence_header_is_an_error() {
        let mut d = TagDemuxer::new();
        let e = d
            .video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]))
            .unwrap_err();
        assert!(matches!(e, FlvError::BadConfig(_)), "{e:?}");
        assert!(d
            .audio(0, Bytes::from_static(&[0xAF, 0, 0x16, 0x90]))
            .is_err());
    }
}

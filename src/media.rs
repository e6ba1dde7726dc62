//! Codec-neutral media types that flow from `flv/` through the segmenter into the muxers.
//!
//! Times are `i64` on a single 90 kHz clock ([`MEDIA_CLOCK`]) so that every track of a
//! stream shares one timeline; RTMP's 32-bit millisecond timestamps are unwrapped into it
//! once, at the `flv/` boundary. Audio muxers convert to their sample-rate timescale.

use bytes::Bytes;

use crate::codec::aac::AacConfig;
use crate::codec::av1::Av1Config;
use crate::codec::h264::AvcConfig;
use crate::codec::hevc::HevcConfig;
use crate::codec::opus::{OpusConfig, OPUS_RATE};
use crate::codec::vp9::Vp9Config;

/// Ticks per second of the stream-wide media clock.
pub const MEDIA_CLOCK: u32 = 90_000;

/// `secs` seconds in ticks of `timescale`, rounded to the nearest tick.
pub fn secs_to_ticks(secs: f64, timescale: u32) -> i64 {
    (secs * f64::from(timescale)).round() as i64
}

/// Whether a track carries video or audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// A video track.
    Video,
    /// An audio track.
    Audio,
}

impl TrackKind {
    /// The short lowercase name used in URLs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }

    /// The kind named `name` ([`TrackKind::as_str`]).
    pub fn parse(name: &str) -> Option<TrackKind> {
        match name {
            "video" => Some(TrackKind::Video),
            "audio" => Some(TrackKind::Audio),
            _ => None,
        }
    }
}

/// Decoder configuration of one track, as announced by the encoder's sequence header.
#[derive(Clone, Debug, PartialEq)]
pub enum CodecConfig {
    /// H.264 / AVC with its AVCDecoderConfigurationRecord.
    H264(AvcConfig),
    /// HEVC with its HEVCDecoderConfigurationRecord (Enhanced RTMP `hvc1`).
    Hevc(HevcConfig),
    /// AV1 with its AV1CodecConfigurationRecord (Enhanced RTMP `av01`).
    Av1(Av1Config),
    /// VP9 with its VP codec configuration record (Enhanced RTMP `vp09`).
    Vp9(Vp9Config),
    /// AAC with its AudioSpecificConfig.
    Aac(AacConfig),
    /// Opus with its identification header (Enhanced RTMP `Opus`).
    Opus(OpusConfig),
}

impl CodecConfig {
    /// The kind of track this configuration describes.
    pub fn kind(&self) -> TrackKind {
        match self {
            CodecConfig::H264(_) | CodecConfig::Hevc(_) | CodecConfig::Av1(_) => TrackKind::Video,
            CodecConfig::Vp9(_) => TrackKind::Video,
            CodecConfig::Aac(_) | CodecConfig::Opus(_) => TrackKind::Audio,
        }
    }

    /// The RFC 6381 `codecs` string (e.g. `avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`).
    pub fn codec_string(&self) -> String {
        match self {
            CodecConfig::H264(c) => c.codec_string(),
            CodecConfig::Hevc(c) => c.codec_string(),
            CodecConfig::Av1(c) => c.codec_string(),
            CodecConfig::Vp9(c) => c.codec_string(),
            CodecConfig::Aac(c) => c.codec_string(),
            CodecConfig::Opus(c) => c.codec_string(),
        }
    }

    /// The timescale the fMP4 track uses: 90 kHz for video, the sample rate for audio.
    pub fn timescale(&self) -> u32 {
        match self {
            CodecConfig::Aac(c) => c.sample_rate,
            CodecConfig::Opus(_) => OPUS_RATE,
            _ => MEDIA_CLOCK,
        }
    }

    /// Picture width and height, when the configuration states them.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        match self {
            CodecConfig::H264(c) => Some((c.width, c.height)),
            CodecConfig::Hevc(c) => Some((c.width, c.height)),
            CodecConfig::Av1(c) => Some((c.width, c.height)),
            CodecConfig::Vp9(c) => c.size,
            _ => None,
        }
    }

    /// Video frames per second, when the configuration states them.
    pub fn frame_rate(&self) -> Option<f64> {
        match self {
            CodecConfig::H264(c) => c.frame_rate,
            CodecConfig::Hevc(c) => c.frame_rate,
            _ => None,
        }
    }

    /// Audio sample rate and channel count.
    pub fn audio_format(&self) -> Option<(u32, u8)> {
        match self {
            CodecConfig::Aac(c) => Some((c.sample_rate, c.channels)),
            CodecConfig::Opus(c) => Some((OPUS_RATE, c.channels)),
            _ => None,
        }
    }

    /// True if MPEG-TS can carry this codec here (H.264, HEVC, AAC); AV1, VP9 and Opus
    /// are packaged as CMAF only.
    pub fn fits_ts(&self) -> bool {
        matches!(
            self,
            CodecConfig::H264(_) | CodecConfig::Hevc(_) | CodecConfig::Aac(_)
        )
    }
}

/// One access unit (a video frame or an audio frame) on the stream's media clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Which track the frame belongs to.
    pub kind: TrackKind,
    /// Decode timestamp, [`MEDIA_CLOCK`] ticks, unwrapped.
    pub dts: i64,
    /// Presentation timestamp, [`MEDIA_CLOCK`] ticks (dts + composition offset).
    pub pts: i64,
    /// True for a sync sample (IDR/IRAP, AV1/VP9 key frames; every audio frame).
    pub keyframe: bool,
    /// The payload: length-prefixed NAL units for H.264/HEVC (as in FLV), an AV1 temporal
    /// unit without its temporal delimiter, a VP9 frame, a raw AAC or Opus packet.
    pub data: Bytes,
}

/// One sample as the fMP4 muxer writes it, in the track's own timescale.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Decode time in the track timescale.
    pub dts: i64,
    /// Duration in the track timescale.
    pub duration: u32,
    /// Composition offset (pts - dts) in the track timescale; may be negative.
    pub cts: i32,
    /// True for a sync sample.
    pub keyframe: bool,
    /// The sample bytes, written to mdat unchanged.
    pub data: Bytes,
}

/// Total duration of `samples`, in their timescale.
pub fn total_duration(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| u64::from(s.duration)).sum()
}

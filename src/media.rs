//! Codec-neutral media types that flow from `flv/` through the segmenter into the muxers.
//!
//! Times are `i64` on a single 90 kHz clock ([`MEDIA_CLOCK`]) so that every track of a
//! stream shares one timeline; RTMP's 32-bit millisecond timestamps are unwrapped into it
//! once, at the `flv/` boundary. Audio muxers convert to their sample-rate timescale.

use bytes::Bytes;

use crate::codec::aac::AacConfig;
use crate::codec::h264::AvcConfig;

/// Ticks per second of the stream-wide media clock.
pub const MEDIA_CLOCK: u32 = 90_000;

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
}

/// Decoder configuration of one track, as announced by the encoder's sequence header.
#[derive(Clone, Debug, PartialEq)]
pub enum CodecConfig {
    /// H.264 / AVC with its AVCDecoderConfigurationRecord.
    H264(AvcConfig),
    /// AAC with its AudioSpecificConfig.
    Aac(AacConfig),
}

impl CodecConfig {
    /// The kind of track this configuration describes.
    pub fn kind(&self) -> TrackKind {
        match self {
            CodecConfig::H264(_) => TrackKind::Video,
            CodecConfig::Aac(_) => TrackKind::Audio,
        }
    }

    /// The RFC 6381 `codecs` string (e.g. `avc1.64001f`, `mp4a.40.2`).
    pub fn codec_string(&self) -> String {
        match self {
            CodecConfig::H264(c) => c.codec_string(),
            CodecConfig::Aac(c) => c.codec_string(),
        }
    }

    /// The timescale the fMP4 track uses: 90 kHz for video, the sample rate for audio.
    pub fn timescale(&self) -> u32 {
        match self {
            CodecConfig::H264(_) => MEDIA_CLOCK,
            CodecConfig::Aac(c) => c.sample_rate,
        }
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
    /// True for a sync sample (IDR for H.264; every AAC frame).
    pub keyframe: bool,
    /// The payload: length-prefixed NAL units for H.264 (as in FLV/avcC), a raw AAC frame.
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

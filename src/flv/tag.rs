//! Parsing one FLV audio or video tag body (FLV 10.1 spec, E.4.2 / E.4.3), as carried in
//! RTMP audio (type 8) and video (type 9) messages. Pure: no state, no timestamps.

use bytes::Bytes;

use super::enhanced;
use super::error::FlvError;

/// What one video tag body holds.
#[derive(Debug, PartialEq)]
pub enum VideoTag {
    /// AVC sequence header: an AVCDecoderConfigurationRecord.
    AvcSequenceHeader(Bytes),
    /// An AVC coded frame (length-prefixed NAL units).
    AvcFrame {
        /// True for a key frame (frame type 1).
        keyframe: bool,
        /// Composition time offset in milliseconds (SI24, may be negative).
        cts_ms: i32,
        /// The NAL units, a zero-copy slice of the body.
        data: Bytes,
    },
    /// AVC end of sequence.
    AvcEndOfSequence,
    /// A video info/command frame (frame type 5) carrying no picture.
    Command,
}

/// What one audio tag body holds.
#[derive(Debug, PartialEq)]
pub enum AudioTag {
    /// AAC sequence header: an AudioSpecificConfig.
    AacSequenceHeader(Bytes),
    /// A raw AAC frame, a zero-copy slice of the body.
    AacFrame(Bytes),
}

const FRAME_KEY: u8 = 1;
const FRAME_COMMAND: u8 = 5;
const CODEC_AVC: u8 = 7;
const FORMAT_AAC: u8 = 10;
/// FrameType/CodecID byte, AVCPacketType, SI24 CompositionTime.
const AVC_HEADER_LEN: usize = 5;

/// A legacy CodecID's name, for telling the publisher what it sent.
fn video_codec_name(id: u8) -> &'static str {
    match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        7 => "AVC",
        // Pre-E-RTMP Chinese CDN extension; OBS and ffmpeg send HEVC as Enhanced RTMP.
        12 => "HEVC, non-standard CodecID",
        _ => "reserved",
    }
}

/// A legacy SoundFormat's name.
fn audio_codec_name(format: u8) -> &'static str {
    match format {
        0 => "linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM, little endian",
        4 => "Nellymoser 16 kHz mono",
        5 => "Nellymoser 8 kHz mono",
        6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        10 => "AAC",
        11 => "Speex",
        // Some servers' pre-E-RTMP Opus extension.
        13 => "Opus, non-standard SoundFormat",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "reserved",
    }
}

/// Parses a video tag body. The caller drops empty bodies; here they are `Truncated`.
pub fn parse_video(body: Bytes) -> Result<VideoTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("video"))?;
    if enhanced::is_ex_video(first) {
        // Legacy tags only: TagDemuxer reads Enhanced RTMP bodies itself (exdemux.rs).
        let header = enhanced::parse_video(&body)?;
        if header.is_command() {
            return Ok(VideoTag::Command);
        }
        return Err(header.unsupported("video"));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0F;
    // Command frames carry seek markers, not an AVCPacketType: ignorable for any codec.
    if frame_type == FRAME_COMMAND {
        return Ok(VideoTag::Command);
    }
    if codec != CODEC_AVC {
        return Err(FlvError::Unsupported(format!(
            "unsupported video codec {codec} ({}); publish H.264",
            video_codec_name(codec)
        )));
    }
    if body.len() < AVC_HEADER_LEN {
        return Err(FlvError::Truncated("AVC video"));
    }
    let raw = (i32::from(body[2]) << 16) | (i32::from(body[3]) << 8) | i32::from(body[4]);
    // SI24: shift the sign bit up to bit 31 and back (arithmetic shift) to sign-extend.
    let cts_ms = (raw << 8) >> 8;
    match body[1] {
        0 => Ok(VideoTag::AvcSequenceHeader(body.slice(AVC_HEADER_LEN..))),
        1 => Ok(VideoTag::AvcFrame {
            keyframe: frame_type == FRAME_KEY,
            cts_ms,
            data: body.slice(AVC_HEADER_LEN..),
        }),
        2 => Ok(VideoTag::AvcEndOfSequence),
        t => Err(FlvError::Unsupported(format!(
            "unsupported AVC packet type {t}"
        ))),
    }
}

/// Parses an audio tag body. The caller drops empty bodies; here they are `Truncated`.
pub fn parse_audio(body: Bytes) -> Result<AudioTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("audio"))?;
    if enhanced::is_ex_audio(first) {
        // Legacy tags only: TagDemuxer reads Enhanced RTMP bodies itself (exdemux.rs).
        return Err(enhanced::parse_audio(&body)?.unsupported("audio"));
    }
    // For AAC the rate/size/type bits are fixed placeholders; the ASC is authoritative.
    let format = first >> 4;
    if format != FORMAT_AAC {
        return Err(FlvError::Unsupported(format!(
            "unsupported audio codec {format} ({}); publish AAC",
            audio_codec_name(format)
        )));
    }
    match body.get(1) {
        None => Err(FlvError::Truncated("AAC audio")),
        Some(0) => Ok(AudioTag::AacSequenceHeader(body.slice(2..))),
        Some(1) => Ok(AudioTag::AacFrame(body.slice(2..))),
        Some(t) => Err(FlvError::Unsupported(format!(
            "unsupported AAC packet type {t}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(body: &'static [u8]) -> Result<VideoTag, FlvError> {
        parse_video(Bytes::from_static(body))
    }

    fn audio(body: &'static [u8]) -> Result<AudioTag, FlvError> {
        parse_audio(Bytes::from_static(body))
    }

    #[test]
    fn video_tags() {
        assert_eq!(
            video(&[0x17, 0x00, 0, 0, 0, 1, 2]),
            Ok(VideoTag::AvcSequenceHeader(Bytes::from_static(&[1, 2])))
        );
        assert_eq!(
            video(&[0x27, 0x01, 0xFF, 0xFF, 0xDF, 9]),
            Ok(VideoTag::AvcFrame {
                keyframe: false,
                cts_ms: -33,
                data: Bytes::from_static(&[9])
            })
        );
        assert_eq!(
            video(&[0x17, 0x01, 0x00, 0x00, 0x42, 9]),
            Ok(VideoTag::AvcFrame {
                keyframe: true,
                cts_ms: 66,
                data: Bytes::from_static(&[9])
            })
        );
        assert_eq!(
            video(&[0x17, 0x02, 0, 0, 0]),
            Ok(VideoTag::AvcEndOfSequence)
        );
        assert_eq!(video(&[0x57, 0x00]), Ok(VideoTag::Command));
        assert_eq!(video(&[0x52, 0x01]), Ok(VideoTag::Command));
    }

    #[test]
    fn composition_time_extremes() {
        let cts = |body: &'static [u8]| match video(body) {
            Ok(VideoTag::AvcFrame { cts_ms, .. }) => cts_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(cts(&[0x27, 1, 0x7F, 0xFF, 0xFF]), 0x7F_FFFF);
        assert_eq!(cts(&[0x27, 1, 0x80, 0x00, 0x00]), -0x80_0000);
        assert_eq!(cts(&[0x27, 1, 0xFF, 0xFF, 0xFF]), -1);
        // Disposable inter (3) and generated key (4) frames are not sync samples.
        assert!(matches!(
            video(&[0x37, 1, 0, 0, 0, 9]),
            Ok(VideoTag::AvcFrame {
                keyframe: false,
                ..
            })
        ));
    }

    #[test]
    fn frame_data_is_a_slice_of_the_body() {
        let body = Bytes::from(vec![0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        let Ok(VideoTag::AvcFrame { data, .. }) = parse_video(body.clone()) else {
            panic!()
        };
        assert_eq!(data.as_ptr(), body[5..].as_ptr(), "zero-copy");
    }

    #[test]
    fn bad_video_tags() {
        assert_eq!(video(&[]), Err(FlvError::Truncated("video")));
        for len in 1..AVC_HEADER_LEN {
            assert_eq!(
                parse_video(Bytes::copy_from_slice(&[0x17, 0x01, 0, 0][..len])),
                Err(FlvError::Truncated("AVC video"))
            );
        }
        assert_eq!(
            video(&[0x12, 0]).unwrap_err().to_string(),
            "unsupported video codec 2 (Sorenson H.263); publish H.264"
        );
        assert!(video(&[0x1C, 0]).unwrap_err().to_string().contains("HEVC"));
        assert_eq!(
            video(&[0x17, 3, 0, 0, 0]),
            Err(FlvError::Unsupported(
                "unsupported AVC packet type 3".into()
            ))
        );
    }

    #[test]
    fn enhanced_video_is_reported() {
        assert_eq!(
            video(&[0x90, b'h', b'v', b'c', b'1', 1, 2]),
            Err(FlvError::Unsupported(
                "Enhanced RTMP video codec FourCC hvc1 not supported; publish H.264 (avc1), HEVC (hvc1), AV1 (av01) or VP9 (vp09)".into()
            ))
        );
        assert_eq!(
            video(&[0x90, b'h', b'v']),
            Err(FlvError::Truncated("Enhanced RTMP video"))
        );
        assert_eq!(video(&[0xD0, 0x01]), Ok(VideoTag::Command));
    }

    #[test]
    fn audio_tags() {
        assert_eq!(
            audio(&[0xAF, 0x00, 0x12, 0x10]),
            Ok(AudioTag::AacSequenceHeader(Bytes::from_static(&[
                0x12, 0x10
            ])))
        );
        assert_eq!(
            audio(&[0xAF, 0x01, 7]),
            Ok(AudioTag::AacFrame(Bytes::from_static(&[7])))
        );
        // Mono/other rate bits do not matter for AAC.
        assert_eq!(
            audio(&[0xA0, 0x01, 7]),
            Ok(AudioTag::AacFrame(Bytes::from_static(&[7])))
        );
    }

    #[test]
    fn bad_audio_tags() {
        assert_eq!(audio(&[]), Err(FlvError::Truncated("audio")));
        assert_eq!(audio(&[0xAF]), Err(FlvError::Truncated("AAC audio")));
        assert_eq!(
            audio(&[0x2F, 0]).unwrap_err().to_string(),
            "unsupported audio codec 2 (MP3); publish AAC"
        );
        assert!(audio(&[0xDF, 0]).unwrap_err().to_string().contains("Opus"));
        assert_eq!(
            audio(&[0xAF, 2]),
            Err(FlvError::Unsupported(
                "unsupported AAC packet type 2".into()
            ))
        );
        assert_eq!(
            audio(&[0x90, b'O', b'p', b'u', b's', 0])
                .unwrap_err()
                .to_string(),
            "Enhanced RTMP audio codec FourCC Opus not supported; publish AAC (mp4a) or Opus"
        );
        assert_eq!(
            audio(&[0x90, b'O']),
            Err(FlvError::Truncated("Enhanced RTMP audio"))
        );
    }
}

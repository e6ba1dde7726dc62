//! Parsing one FLV audio or video tag body (FLV 10.1 spec, E.4.2 / E.4.3).

use bytes::Bytes;

/// Why a tag body was not usable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlvError {
    /// The body ended before its header did.
    #[error("{0} tag body is truncated")]
    Truncated(&'static str),
    /// A codec we do not package (yet).
    #[error("unsupported {0}")]
    Unsupported(String),
    /// A coded frame arrived before the sequence header that describes it.
    #[error("{0} frame before its sequence header")]
    NoConfig(&'static str),
    /// The sequence header did not parse.
    #[error("bad sequence header: {0}")]
    BadConfig(String),
}

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
        /// The NAL units.
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
    /// A raw AAC frame.
    AacFrame(Bytes),
}

const VIDEO_CODECS: [&str; 8] = [
    "0",
    "JPEG",
    "Sorenson H.263",
    "Screen video",
    "On2 VP6",
    "VP6 with alpha",
    "Screen video v2",
    "AVC",
];
const AUDIO_CODECS: [&str; 16] = [
    "linear PCM",
    "ADPCM",
    "MP3",
    "linear PCM LE",
    "Nellymoser 16k",
    "Nellymoser 8k",
    "Nellymoser",
    "G.711 A-law",
    "G.711 mu-law",
    "reserved",
    "AAC",
    "Speex",
    "reserved",
    "Enhanced RTMP audio",
    "MP3 8k",
    "device-specific",
];

/// Parses a video tag body.
pub fn parse_video(body: Bytes) -> Result<VideoTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("video"))?;
    if first & 0x80 != 0 {
        let fourcc = body
            .get(1..5)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        return Err(FlvError::Unsupported(format!(
            "Enhanced RTMP video (FourCC {fourcc:?}) not supported yet"
        )));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0F;
    if frame_type == 5 {
        return Ok(VideoTag::Command);
    }
    if codec != 7 {
        let name = VIDEO_CODECS
            .get(usize::from(codec))
            .copied()
            .unwrap_or("unknown");
        return Err(FlvError::Unsupported(format!(
            "video codec {codec} ({name}); publish H.264"
        )));
    }
    if body.len() < 5 {
        return Err(FlvError::Truncated("AVC video"));
    }
    let raw = (i32::from(body[2]) << 16) | (i32::from(body[3]) << 8) | i32::from(body[4]);
    let cts_ms = (raw << 8) >> 8; // sign-extend SI24
    match body[1] {
        0 => Ok(VideoTag::AvcSequenceHeader(body.slice(5..))),
        1 => Ok(VideoTag::AvcFrame {
            keyframe: frame_type == 1,
            cts_ms,
            data: body.slice(5..),
        }),
        2 => Ok(VideoTag::AvcEndOfSequence),
        t => Err(FlvError::Unsupported(format!("AVC packet type {t}"))),
    }
}

/// Parses an audio tag body.
pub fn parse_audio(body: Bytes) -> Result<AudioTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("audio"))?;
    let format = first >> 4;
    if format != 10 {
        let name = AUDIO_CODECS[usize::from(format)];
        return Err(FlvError::Unsupported(format!(
            "audio codec {format} ({name}); publish AAC"
        )));
    }
    match body.get(1) {
        None => Err(FlvError::Truncated("AAC audio")),
        Some(0) => Ok(AudioTag::AacSequenceHeader(body.slice(2..))),
        Some(1) => Ok(AudioTag::AacFrame(body.slice(2..))),
        Some(t) => Err(FlvError::Unsupported(format!("AAC packet type {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_tags() {
        let b = Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 2]);
        assert_eq!(
            parse_video(b),
            Ok(VideoTag::AvcSequenceHeader(Bytes::from_static(&[1, 2])))
        );
        let b = Bytes::from_static(&[0x27, 0x01, 0xFF, 0xFF, 0xDF, 9]);
        assert_eq!(
            parse_video(b),
            Ok(VideoTag::AvcFrame {
                keyframe: false,
                cts_ms: -33,
                data: Bytes::from_static(&[9])
            })
        );
        let b = Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x42, 9]);
        assert_eq!(
            parse_video(b),
            Ok(VideoTag::AvcFrame {
                keyframe: true,
                cts_ms: 66,
                data: Bytes::from_static(&[9])
            })
        );
        assert_eq!(
            parse_video(Bytes::from_static(&[0x17, 0x02, 0, 0, 0])),
            Ok(VideoTag::AvcEndOfSequence)
        );
        assert_eq!(
            parse_video(Bytes::from_static(&[0x57, 0x00])),
            Ok(VideoTag::Command)
        );
    }

    #[test]
    fn bad_video_tags() {
        assert_eq!(parse_video(Bytes::new()), Err(FlvError::Truncated("video")));
        assert_eq!(
            parse_video(Bytes::from_static(&[0x17, 0x01, 0])),
            Err(FlvError::Truncated("AVC video"))
        );
        let e = parse_video(Bytes::from_static(&[0x12, 0])).unwrap_err();
        assert!(e.to_string().contains("Sorenson"), "{e}");
        let e = parse_video(Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1'])).unwrap_err();
        assert!(e.to_string().contains("hvc1"), "{e}");
    }

    #[test]
    fn audio_tags() {
        let b = Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10]);
        assert_eq!(
            parse_audio(b),
            Ok(AudioTag::AacSequenceHeader(Bytes::from_static(&[
                0x12, 0x10
            ])))
        );
        let b = Bytes::from_static(&[0xAF, 0x01, 7]);
        assert_eq!(
            parse_audio(b),
            Ok(AudioTag::AacFrame(Bytes::from_static(&[7])))
        );
        assert_eq!(
            parse_audio(Bytes::from_static(&[0xAF])),
            Err(FlvError::Truncated("AAC audio"))
        );
        let e = parse_audio(Bytes::from_static(&[0x2F, 0])).unwrap_err();
        assert!(e.to_string().contains("MP3"), "{e}");
    }
}

//! Enhanced RTMP (E-RTMP v2) tag headers: frame and packet type, ModEx prefixes (the
//! nanosecond timestamp offset), the multitrack prefix and the codec FourCC. The bodies
//! are read in `exdemux.rs`.

use std::fmt;

use super::error::FlvError;

/// A FourCC codec identifier from an ExHeader (`hvc1`, `av01`, `vp09`, `Opus`, `mp4a`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes come from the network and end up in logs: escape anything unprintable.
        write!(f, "{}", self.0.escape_ascii())
    }
}

/// The fields of an ExVideoTagHeader or ExAudioTagHeader that say what the body holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ExHeader {
    /// VideoFrameType (1 key, 2 inter, 5 command...); `None` for audio.
    pub frame_type: Option<u8>,
    /// VideoPacketType / AudioPacketType after any ModEx and multitrack prefixes
    /// (0 sequence start, 1 coded frames, 2 sequence end, 3 coded frames without CTS...).
    pub packet_type: u8,
    /// The message carries several tracks (AvMultitrackType follows the packet type).
    pub multitrack: bool,
    /// AvMultitrackType when `multitrack`: 0 OneTrack, 1 ManyTracks, 2 ManyTracksManyCodecs.
    pub multitrack_type: u8,
    /// The codec, when the header names one for the whole message (absent for commands
    /// and for multitrack messages that have a codec per track).
    pub fourcc: Option<FourCc>,
    /// Offset of the first body byte after the header.
    pub body_start: usize,
    /// Nanoseconds to add to the message's millisecond timestamp (ModEx
    /// TimestampOffsetNano), 0..=999_999.
    pub nanos: u32,
}

/// True if a video tag's first byte announces an ExVideoTagHeader (the IsExHeader bit;
/// legacy frame types never reach 8).
pub fn is_ex_video(first: u8) -> bool {
    first & 0x80 != 0
}

/// True if an audio tag's first byte announces an ExAudioTagHeader (SoundFormat 9, which
/// the legacy FLV specification left reserved).
pub fn is_ex_audio(first: u8) -> bool {
    first >> 4 == 9
}

/// Packet type values that the two header kinds share in meaning but not in number.
struct PacketTypes {
    multitrack: u8,
    mod_ex: u8,
}

const VIDEO: PacketTypes = PacketTypes {
    multitrack: 6,
    mod_ex: 7,
};
const AUDIO: PacketTypes = PacketTypes {
    multitrack: 5,
    mod_ex: 7,
};

/// VideoFrameType of a command frame (no picture) and the packet type that still carries
/// a FourCC when combined with it.
const VIDEO_COMMAND: u8 = 5;
const VIDEO_METADATA: u8 = 4;

/// ModExType of the nanosecond timestamp offset (UI24 after the size).
const MOD_EX_TIMESTAMP_OFFSET_NANO: u8 = 0;

/// AvMultitrackType with a single track and no track size.
pub const ONE_TRACK: u8 = 0;
/// AvMultitrackType whose tracks each name their own FourCC.
pub const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// Reads an ExVideoTagHeader (the caller has checked [`is_ex_video`]).
pub fn parse_video(body: &[u8]) -> Result<ExHeader, FlvError> {
    let first = *body.first().ok_or(TRUNCATED_VIDEO)?;
    let frame_type = Some((first >> 4) & 0x07);
    parse(body, first & 0x0F, frame_type, &VIDEO, TRUNCATED_VIDEO)
}

/// Reads an ExAudioTagHeader (the caller has checked [`is_ex_audio`]).
pub fn parse_audio(body: &[u8]) -> Result<ExHeader, FlvError> {
    let first = *body.first().ok_or(TRUNCATED_AUDIO)?;
    parse(body, first & 0x0F, None, &AUDIO, TRUNCATED_AUDIO)
}

const TRUNCATED_VIDEO: FlvError = FlvError::Truncated("Enhanced RTMP video");
const TRUNCATED_AUDIO: FlvError = FlvError::Truncated("Enhanced RTMP audio");

fn parse(
    body: &[u8],
    mut packet_type: u8,
    frame_type: Option<u8>,
    types: &PacketTypes,
    truncated: FlvError,
) -> Result<ExHeader, FlvError> {
    let byte = |pos: usize| body.get(pos).copied().ok_or(truncated.clone());
    let mut pos = 1;
    // ModEx prefixes (e.g. a nanosecond timestamp offset) come before everything else;
    // each is a size, its data, then a byte holding the modifier type and next packet type.
    let mut nanos = 0;
    while packet_type == types.mod_ex {
        let mut size = usize::from(byte(pos)?) + 1;
        pos += 1;
        if size == 256 {
            size = usize::from(u16::from_be_bytes([byte(pos)?, byte(pos + 1)?])) + 1;
            pos += 2;
        }
        let data = pos;
        pos += size;
        let modifier = byte(pos)?;
        if modifier >> 4 == MOD_EX_TIMESTAMP_OFFSET_NANO && size >= 3 {
            let ns = u32::from_be_bytes([0, byte(data)?, byte(data + 1)?, byte(data + 2)?]);
            // The specification caps it below a millisecond; a larger value is not a
            // sub-millisecond offset and is ignored rather than trusted.
            nanos = if ns < 1_000_000 { ns } else { 0 };
        }
        packet_type = modifier & 0x0F;
        pos += 1;
    }
    let mut header = ExHeader {
        frame_type,
        packet_type,
        multitrack: false,
        multitrack_type: 0,
        fourcc: None,
        body_start: pos,
        nanos,
    };
    if frame_type == Some(VIDEO_COMMAND) && packet_type != VIDEO_METADATA {
        return Ok(header); // a one-byte VideoCommand follows, no codec
    }
    let mut names_codec = true;
    if packet_type == types.multitrack {
        let b = byte(pos)?;
        pos += 1;
        header.multitrack = true;
        header.multitrack_type = b >> 4;
        header.packet_type = b & 0x0F;
        names_codec = b >> 4 != MANY_TRACKS_MANY_CODECS;
    }
    if names_codec {
        let fourcc = body.get(pos..pos + 4).ok_or(truncated)?;
        header.fourcc = Some(FourCc([fourcc[0], fourcc[1], fourcc[2], fourcc[3]]));
        pos += 4;
    }
    header.body_start = pos;
    Ok(header)
}

impl ExHeader {
    /// True for a video command frame (seek start/end): no media, safe to ignore.
    pub fn is_command(&self) -> bool {
        self.frame_type == Some(VIDEO_COMMAND) && self.packet_type != VIDEO_METADATA
    }

    /// The error for a header whose codec (or multitrack layout) is not packaged;
    /// `track` is "video" or "audio".
    pub fn unsupported(&self, track: &str) -> FlvError {
        let multi = if self.multitrack { "multitrack " } else { "" };
        match self.fourcc {
            Some(fourcc) if !self.multitrack => unsupported_fourcc(track, fourcc),
            Some(fourcc) => FlvError::Unsupported(format!(
                "Enhanced RTMP {multi}{track} (FourCC {fourcc}) not supported"
            )),
            None => FlvError::Unsupported(format!(
                "Enhanced RTMP {multi}{track} with a codec per track not supported"
            )),
        }
    }
}

/// The refusal of a codec FourCC that is not packaged; `track` is "video" or "audio".
pub fn unsupported_fourcc(track: &str, fourcc: FourCc) -> FlvError {
    let supported = if track == "audio" {
        "AAC (mp4a) or Opus"
    } else {
        "H.264 (avc1), HEVC (hvc1), AV1 (av01) or VP9 (vp09)"
    };
    FlvError::Unsupported(format!(
        "Enhanced RTMP {track} codec FourCC {fourcc} not supported; publish {supported}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_headers() {
        // Key frame, SequenceStart, hvc1.
        let h = parse_video(&[0x90, b'h', b'v', b'c', b'1', 1, 2]).unwrap();
        assert_eq!(h.frame_type, Some(1));
        assert_eq!(h.packet_type, 0);
        assert_eq!(h.fourcc, Some(FourCc(*b"hvc1")));
        assert_eq!(h.body_start, 5);
        assert!(!h.is_command());
        assert_eq!(
            h.unsupported("video"),
            FlvError::Unsupported(
                "Enhanced RTMP video codec FourCC hvc1 not supported; publish H.264 (avc1), HEVC (hvc1), AV1 (av01) or VP9 (vp09)".into()
            )
        );
        // Inter frame, CodedFramesX, av01.
        let h = parse_video(&[0xA3, b'a', b'v', b'0', b'1']).unwrap();
        assert_eq!((h.frame_type, h.packet_type), (Some(2), 3));
        assert_eq!(h.fourcc.unwrap().to_string(), "av01");
    }

    #[test]
    fn command_frames_name_no_codec() {
        let h = parse_video(&[0xD0, 0x00]).unwrap();
        assert!(h.is_command());
        assert_eq!(h.fourcc, None);
    }

    #[test]
    fn mod_ex_and_multitrack_prefixes() {
        // ModEx: 3 bytes of data (size - 1 = 2), then modifier 0 / packet type 1, then vp09.
        let h = parse_video(&[0x97, 2, 0xAA, 0xBB, 0xCC, 0x01, b'v', b'p', b'0', b'9']).unwrap();
        assert_eq!(h.packet_type, 1);
        assert_eq!(h.fourcc, Some(FourCc(*b"vp09")));
        assert_eq!(h.body_start, 10);
        assert_eq!(h.nanos, 0, "0xAABBCC ns is over a millisecond: ignored");
        // TimestampOffsetNano of 500 000 ns (UI24), then CodedFrames hvc1.
        let h = parse_video(&[0x97, 2, 0x07, 0xA1, 0x20, 0x01, b'h', b'v', b'c', b'1']).unwrap();
        assert_eq!((h.nanos, h.packet_type), (500_000, 1));
        // Multitrack, ManyTracks (1) of SequenceStart (0), all hvc1.
        let h = parse_video(&[0x96, 0x10, b'h', b'v', b'c', b'1']).unwrap();
        assert!(h.multitrack);
        assert_eq!((h.packet_type, h.fourcc), (0, Some(FourCc(*b"hvc1"))));
        assert!(h
            .unsupported("video")
            .to_string()
            .contains("multitrack video"));
        // ManyTracksManyCodecs: the FourCCs are per track.
        let h = parse_video(&[0x96, 0x21, 0x00]).unwrap();
        assert_eq!(h.fourcc, None);
        assert!(h
            .unsupported("video")
            .to_string()
            .contains("codec per track"));
    }

    #[test]
    fn audio_headers() {
        assert!(is_ex_audio(0x90));
        assert!(!is_ex_audio(0xAF));
        let h = parse_audio(&[0x90, b'O', b'p', b'u', b's', 0]).unwrap();
        assert_eq!((h.frame_type, h.packet_type), (None, 0));
        assert_eq!(
            h.unsupported("audio").to_string(),
            "Enhanced RTMP audio codec FourCC Opus not supported; publish AAC (mp4a) or Opus"
        );
        // Audio multitrack is packet type 5, ModEx 7.
        let h = parse_audio(&[0x95, 0x01, b'm', b'p', b'4', b'a']).unwrap();
        assert!(h.multitrack);
        let h = parse_audio(&[0x97, 0, 0x00, 0x01, b'f', b'L', b'a', b'C']).unwrap();
        assert_eq!(h.fourcc, Some(FourCc(*b"fLaC")));
    }

    #[test]
    fn truncated_headers_are_errors() {
        let full = [0x97, 0xFF, 0x00, 0x01];
        for len in 0..full.len() {
            assert_eq!(parse_video(&full[..len]), Err(TRUNCATED_VIDEO), "len {len}");
        }
        // A 16-bit ModEx size pointing past the end, then the byte after it is missing.
        assert_eq!(
            parse_video(&[0x97, 0xFF, 0x00, 0x05, 1]),
            Err(TRUNCATED_VIDEO)
        );
        assert_eq!(parse_audio(&[0x90, b'O', b'p']), Err(TRUNCATED_AUDIO));
        assert_eq!(parse_audio(&[0x95]), Err(TRUNCATED_AUDIO));
    }

    #[test]
    fn unprintable_fourcc_is_escaped() {
        assert_eq!(FourCc([b'h', 0x0A, 0xFF, b'1']).to_string(), "h\\n\\xff1");
    }
}

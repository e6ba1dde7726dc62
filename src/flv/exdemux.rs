//! Enhanced RTMP message bodies → codec configurations and frames.
//!
//! Single-track video (`avc1`, `hvc1`, `av01`, `vp09`) and audio (`mp4a`, `Opus`) are
//! packaged; any other FourCC, and multitrack messages, are refused with an error that
//! names the FourCC (the ingest logs it with the connection, app and stream).

use bytes::Bytes;

use super::demux::{DemuxEvent, TagDemuxer};
use super::enhanced::{self, ExHeader, FourCc};
use super::error::FlvError;
use crate::codec::aac::AacConfig;
use crate::codec::av1::{strip_temporal_delimiter, Av1Config};
use crate::codec::h264::AvcConfig;
use crate::codec::hevc::HevcConfig;
use crate::codec::opus::OpusConfig;
use crate::codec::vp9::{key_frame_size, Vp9Config};
use crate::media::{CodecConfig, TrackKind};

/// Packet types shared by ExVideoTagHeader and ExAudioTagHeader.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
/// Video only: coded frames without the SI24 composition time.
const CODED_FRAMES_X: u8 = 3;
/// Video only: AMF metadata (colorInfo, HDR), not needed for packaging.
const VIDEO_METADATA: u8 = 4;
/// Audio only: channel order and count, which Opus and AAC also carry in-band.
const AUDIO_MULTICHANNEL_CONFIG: u8 = 4;
/// VideoFrameType of a key frame.
const FRAME_KEY: u8 = 1;

/// The Enhanced RTMP codecs packaged here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExCodec {
    Avc,
    Hevc,
    Av1,
    Vp9,
    Aac,
    Opus,
}

impl ExCodec {
    fn from_fourcc(fourcc: FourCc) -> Option<ExCodec> {
        Some(match &fourcc.0 {
            b"avc1" => ExCodec::Avc,
            b"hvc1" => ExCodec::Hevc,
            b"av01" => ExCodec::Av1,
            b"vp09" => ExCodec::Vp9,
            b"mp4a" => ExCodec::Aac,
            b"Opus" => ExCodec::Opus,
            _ => return None,
        })
    }

    fn kind(self) -> TrackKind {
        match self {
            ExCodec::Aac | ExCodec::Opus => TrackKind::Audio,
            _ => TrackKind::Video,
        }
    }

    /// True if `config` was made by this codec's sequence start.
    fn configured(self, config: Option<&CodecConfig>) -> bool {
        matches!(
            (self, config),
            (ExCodec::Avc, Some(CodecConfig::H264(_)))
                | (ExCodec::Hevc, Some(CodecConfig::Hevc(_)))
                | (ExCodec::Av1, Some(CodecConfig::Av1(_)))
                | (ExCodec::Vp9, Some(CodecConfig::Vp9(_)))
                | (ExCodec::Aac, Some(CodecConfig::Aac(_)))
                | (ExCodec::Opus, Some(CodecConfig::Opus(_)))
        )
    }

    /// Parses a SequenceStart body into this codec's configuration.
    fn config(self, record: Bytes) -> Result<CodecConfig, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        Ok(match self {
            ExCodec::Avc => CodecConfig::H264(AvcConfig::parse(record).map_err(|x| e(&x))?),
            ExCodec::Hevc => CodecConfig::Hevc(HevcConfig::parse(record).map_err(|x| e(&x))?),
            ExCodec::Av1 => CodecConfig::Av1(Av1Config::parse(record).map_err(|x| e(&x))?),
            ExCodec::Vp9 => CodecConfig::Vp9(Vp9Config::parse(record).map_err(|x| e(&x))?),
            ExCodec::Aac => CodecConfig::Aac(AacConfig::parse(record).map_err(|x| e(&x))?),
            ExCodec::Opus => CodecConfig::Opus(OpusConfig::parse(record).map_err(|x| e(&x))?),
        })
    }
}

/// One track's packet of an Enhanced RTMP message, header already read.
#[derive(Clone, Debug)]
pub(super) struct Packet {
    /// VideoFrameType; `None` for audio.
    pub frame_type: Option<u8>,
    /// The packet type (after ModEx and multitrack prefixes).
    pub packet_type: u8,
    /// The track's codec.
    pub fourcc: FourCc,
    /// ModEx nanosecond timestamp offset.
    pub nanos: u32,
}

impl TagDemuxer {
    /// One Enhanced RTMP video body (the caller has checked the IsExHeader bit).
    pub(super) fn ex_video(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        let header = enhanced::parse_video(&body)?;
        if header.is_command() {
            return Ok(None);
        }
        let packet = single_track(&header, "video")?;
        self.video_packet(timestamp_ms, &packet, body.slice(header.body_start..))
    }

    /// One Enhanced RTMP audio body (the caller has checked SoundFormat 9).
    pub(super) fn ex_audio(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        let header = enhanced::parse_audio(&body)?;
        let packet = single_track(&header, "audio")?;
        self.audio_packet(timestamp_ms, &packet, body.slice(header.body_start..))
    }

    /// One video track's packet body.
    pub(super) fn video_packet(
        &mut self,
        timestamp_ms: u32,
        packet: &Packet,
        data: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        let codec = codec(packet.fourcc, TrackKind::Video)?;
        match packet.packet_type {
            SEQUENCE_START if codec == ExCodec::Vp9 => self.vp9_start(data, timestamp_ms),
            SEQUENCE_START => self.sequence_start(codec, data, timestamp_ms),
            CODED_FRAMES | CODED_FRAMES_X => {
                // Only AVC and HEVC carry a composition time, and only in CodedFrames.
                let with_cts = packet.packet_type == CODED_FRAMES
                    && matches!(codec, ExCodec::Avc | ExCodec::Hevc);
                let (cts_ms, data) = if with_cts {
                    let b = data
                        .get(..3)
                        .ok_or(FlvError::Truncated("Enhanced RTMP video"))?;
                    let raw = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
                    ((raw << 8) >> 8, data.slice(3..))
                } else {
                    (0, data)
                };
                if !codec.configured(self.video.as_ref()) {
                    return Err(FlvError::NoConfig("video"));
                }
                let data = if codec == ExCodec::Av1 {
                    strip_temporal_delimiter(data)
                } else {
                    data
                };
                if data.is_empty() {
                    return Ok(None);
                }
                let keyframe = packet.frame_type == Some(FRAME_KEY);
                if self.vp9_unannounced && !self.announce_vp9(keyframe, &data) {
                    return Ok(None); // nothing decodes before the first key frame anyway
                }
                let at = (timestamp_ms, packet.nanos);
                Ok(Some(self.frame(
                    TrackKind::Video,
                    at,
                    cts_ms,
                    keyframe,
                    data,
                )))
            }
            SEQUENCE_END => Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Video))),
            VIDEO_METADATA => Ok(None),
            other => Err(packet_type_error("video", other, packet.fourcc)),
        }
    }

    /// One audio track's packet body.
    pub(super) fn audio_packet(
        &mut self,
        timestamp_ms: u32,
        packet: &Packet,
        data: Bytes,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        let codec = codec(packet.fourcc, TrackKind::Audio)?;
        match packet.packet_type {
            SEQUENCE_START => self.sequence_start(codec, data, timestamp_ms),
            CODED_FRAMES => {
                if !codec.configured(self.audio.as_ref()) {
                    return Err(FlvError::NoConfig("audio"));
                }
                if data.is_empty() {
                    return Ok(None);
                }
                let at = (timestamp_ms, packet.nanos);
                Ok(Some(self.frame(TrackKind::Audio, at, 0, true, data)))
            }
            SEQUENCE_END => Ok(Some(DemuxEvent::EndOfSequence(TrackKind::Audio))),
            AUDIO_MULTICHANNEL_CONFIG => Ok(None),
            other => Err(packet_type_error("audio", other, packet.fourcc)),
        }
    }

    /// A VP9 SequenceStart: vpcC has no picture size, so a new configuration is announced
    /// (see [`TagDemuxer::take_announcement`]) only with the first key frame, whose header
    /// has it. A repeat of the current record keeps the size already read.
    fn vp9_start(
        &mut self,
        record: Bytes,
        timestamp_ms: u32,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        self.budget.record(record.len())?;
        let mut config =
            Vp9Config::parse(record).map_err(|e| FlvError::BadConfig(e.to_string()))?;
        if let Some(CodecConfig::Vp9(old)) = &self.video {
            if old.record == config.record {
                config.size = old.size;
            }
        }
        let known = config.size.is_some();
        let event = self.configure(CodecConfig::Vp9(config), timestamp_ms)?;
        self.vp9_unannounced = !known;
        Ok(event.filter(|_| known))
    }

    /// Completes an unannounced VP9 configuration with the size in key frame `data`;
    /// false (frame to drop) until a key frame comes.
    fn announce_vp9(&mut self, keyframe: bool, data: &[u8]) -> bool {
        if !keyframe {
            return false;
        }
        self.vp9_unannounced = false;
        if let Some(CodecConfig::Vp9(c)) = self.video.as_mut() {
            c.size = key_frame_size(data);
            self.announcement = self.video.clone();
        }
        true
    }

    /// A configuration announced late, to deliver before the frame just returned (VP9's
    /// picture size comes with its first key frame). [`TagDemuxer::video_tracks`] does this.
    pub(super) fn take_announcement(&mut self) -> Option<CodecConfig> {
        self.announcement.take()
    }

    fn sequence_start(
        &mut self,
        codec: ExCodec,
        record: Bytes,
        timestamp_ms: u32,
    ) -> Result<Option<DemuxEvent>, FlvError> {
        self.budget.record(record.len())?;
        let config = codec.config(record).map_err(FlvError::BadConfig)?;
        self.configure(config, timestamp_ms)
    }
}

/// The packet of a single-track header, or the refusal of a multitrack one (those go
/// through [`TagDemuxer::video_tracks`]).
fn single_track(header: &ExHeader, track: &str) -> Result<Packet, FlvError> {
    match (header.multitrack, header.fourcc) {
        (false, Some(fourcc)) => Ok(Packet {
            frame_type: header.frame_type,
            packet_type: header.packet_type,
            fourcc,
            nanos: header.nanos,
        }),
        _ => Err(header.unsupported(track)),
    }
}

/// The packaged codec `fourcc` names, or the refusal naming it.
fn codec(fourcc: FourCc, kind: TrackKind) -> Result<ExCodec, FlvError> {
    ExCodec::from_fourcc(fourcc)
        .filter(|c| c.kind() == kind)
        .ok_or_else(|| enhanced::unsupported_fourcc(kind.as_str(), fourcc))
}

fn packet_type_error(track: &str, packet_type: u8, fourcc: FourCc) -> FlvError {
    FlvError::Unsupported(format!(
        "Enhanced RTMP {track} packet type {packet_type} ({fourcc}) not supported"
    ))
}

#[cfg(test)]
#[path = "exdemux_tests.rs"]
mod tests;

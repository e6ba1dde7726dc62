//! Enhanced RTMP multitrack messages (AvMultitrackType OneTrack, ManyTracks,
//! ManyTracksManyCodecs): each track id gets its own demuxer state, so every track has
//! its own configuration and its frames come out tagged with the track id. Track 0 is the
//! stream's own demuxer, so an encoder that sends its first track as a plain (legacy or
//! single-track) message and the others as multitrack ones (ffmpeg does) lands in one
//! place per track.

use bytes::Bytes;

use super::demux::{DemuxEvent, TagDemuxer};
use super::enhanced::{
    self, is_ex_audio, is_ex_video, ExHeader, FourCc, MANY_TRACKS_MANY_CODECS, ONE_TRACK,
};
use super::error::FlvError;
use super::exdemux::Packet;
use crate::media::TrackKind;

/// Tracks per kind one connection may use (ids are 0..=255 on the wire); later ones are
/// refused, so a publisher cannot make the server keep state for 256 tracks.
pub const MAX_TRACKS: usize = 8;

/// What one track of a message produced.
#[derive(Debug, PartialEq)]
pub struct TrackEvent {
    /// The track id (0 for single-track messages).
    pub track: u8,
    /// The track's event, as [`TagDemuxer::video`] returns it.
    pub event: Result<Option<DemuxEvent>, FlvError>,
}

impl TagDemuxer {
    /// One video message body of any layout, as one event per track (two for a track
    /// whose configuration is announced with this frame: VP9's waits for a key frame).
    pub fn video_tracks(&mut self, timestamp_ms: u32, body: Bytes) -> Vec<TrackEvent> {
        self.tracks_of(TrackKind::Video, timestamp_ms, body)
    }

    /// One audio message body of any layout, as one event per track.
    pub fn audio_tracks(&mut self, timestamp_ms: u32, body: Bytes) -> Vec<TrackEvent> {
        self.tracks_of(TrackKind::Audio, timestamp_ms, body)
    }

    fn tracks_of(&mut self, kind: TrackKind, timestamp_ms: u32, body: Bytes) -> Vec<TrackEvent> {
        let header = match (kind, body.first()) {
            (TrackKind::Video, Some(b)) if is_ex_video(*b) => enhanced::parse_video(&body).ok(),
            (TrackKind::Audio, Some(b)) if is_ex_audio(*b) => enhanced::parse_audio(&body).ok(),
            _ => None,
        };
        let Some(header) = header.filter(|h| h.multitrack) else {
            let event = match kind {
                TrackKind::Video => self.video(timestamp_ms, body),
                TrackKind::Audio => self.audio(timestamp_ms, body),
            };
            return announced(self, 0, event);
        };
        let parts = match split(&header, &body, kind) {
            Ok(parts) => parts,
            Err(e) => {
                return vec![TrackEvent {
                    track: 0,
                    event: Err(e),
                }]
            }
        };
        parts
            .into_iter()
            .flat_map(|(track, fourcc, data)| {
                let packet = Packet {
                    frame_type: header.frame_type,
                    packet_type: header.packet_type,
                    fourcc,
                    nanos: header.nanos,
                };
                let Some(d) = self.track(track) else {
                    let event = Err(FlvError::Unsupported(format!(
                        "Enhanced RTMP {} track {track}: more than {MAX_TRACKS} tracks",
                        kind.as_str()
                    )));
                    return vec![TrackEvent { track, event }];
                };
                let event = match kind {
                    TrackKind::Video => d.video_packet(timestamp_ms, &packet, data),
                    TrackKind::Audio => d.audio_packet(timestamp_ms, &packet, data),
                };
                announced(d, track, event)
            })
            .collect()
    }

    /// The demuxer of track `id` (this one for 0), made on first use within the cap.
    fn track(&mut self, id: u8) -> Option<&mut TagDemuxer> {
        if id == 0 {
            return Some(self);
        }
        if !self.tracks.contains_key(&id) && self.tracks.len() + 1 >= MAX_TRACKS {
            return None;
        }
        let budget = self.budget.clone();
        Some(
            self.tracks
                .entry(id)
                .or_insert_with(|| TagDemuxer::with_budget(budget)),
        )
    }
}

/// `event` of track `track`, preceded by a configuration `demuxer` announced late.
fn announced(
    demuxer: &mut TagDemuxer,
    track: u8,
    event: Result<Option<DemuxEvent>, FlvError>,
) -> Vec<TrackEvent> {
    let late = demuxer.take_announcement().map(|c| TrackEvent {
        track,
        event: Ok(Some(DemuxEvent::Config(c))),
    });
    late.into_iter()
        .chain(std::iter::once(TrackEvent { track, event }))
        .collect()
}

/// Splits a multitrack body into (track id, codec, track body), zero-copy.
fn split(
    header: &ExHeader,
    body: &Bytes,
    kind: TrackKind,
) -> Result<Vec<(u8, FourCc, Bytes)>, FlvError> {
    let truncated = FlvError::Truncated(match kind {
        TrackKind::Video => "Enhanced RTMP multitrack video",
        TrackKind::Audio => "Enhanced RTMP multitrack audio",
    });
    let get = |range: std::ops::Range<usize>| body.get(range).ok_or(truncated.clone());
    let mut pos = header.body_start;
    let mut out = Vec::new();
    while pos < body.len() {
        let fourcc = match header.fourcc {
            Some(f) if header.multitrack_type != MANY_TRACKS_MANY_CODECS => f,
            _ => {
                let b = get(pos..pos + 4)?;
                pos += 4;
                FourCc([b[0], b[1], b[2], b[3]])
            }
        };
        let track = get(pos..pos + 1)?[0];
        pos += 1;
        let size = if header.multitrack_type == ONE_TRACK {
            body.len() - pos
        } else {
            let b = get(pos..pos + 3)?;
            pos += 3;
            usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
        };
        get(pos..pos + size)?;
        out.push((track, fourcc, body.slice(pos..pos + size)));
        pos += size;
        if header.multitrack_type == ONE_TRACK {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "multitrack_tests.rs"]
mod tests;

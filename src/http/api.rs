//! The JSON API's description of a ladder: what is live, with what codecs and bitrates
//! ([`super::api_streams`] adds the ingest and traffic detail and answers the routes).

use serde::Serialize;

use crate::hub::Ladder;
use crate::media::CodecConfig;
use crate::urls::{Container, LadderFile, ObjectPath};

/// One ladder as the API shows it.
#[derive(Debug, Serialize)]
pub struct StreamInfo {
    /// RTMP application.
    pub app: String,
    /// Ladder base name.
    pub name: String,
    /// True while at least one rendition is being published.
    pub live: bool,
    /// True when every rendition is aligned with the ladder timeline.
    pub aligned: bool,
    /// URL path of the CMAF HLS master playlist.
    pub hls: String,
    /// The renditions.
    pub renditions: Vec<RenditionInfo>,
}

/// One rendition as the API shows it.
#[derive(Debug, Serialize)]
pub struct RenditionInfo {
    /// Label within the ladder (URL path segment).
    pub name: String,
    /// The RTMP stream name it is published as.
    pub stream: String,
    /// True while its publisher is connected.
    pub live: bool,
    /// Lifecycle: `publishing`, `reconnect-wait` (connection dropped, playlists still
    /// live) or `ended`.
    pub state: crate::hub::Phase,
    /// Video width, if there is video.
    pub width: Option<u32>,
    /// Video height, if there is video.
    pub height: Option<u32>,
    /// Video frame rate, if signalled.
    pub frame_rate: Option<f64>,
    /// RFC 6381 codecs of its tracks.
    pub codecs: String,
    /// Peak bits per second over the window, all tracks.
    pub bandwidth: u64,
    /// Segments currently listed.
    pub segments: usize,
    /// Newest segment's sequence number.
    pub last_sequence: Option<u64>,
    /// Largest distance (ms) of its recent cuts from the ladder's shared boundaries.
    pub misalignment_ms: f64,
    /// True when its segments start at the ladder's boundaries with the ladder's numbers.
    pub aligned: bool,
    /// Video has gone longer than `segment.max_keyframe_interval` without a keyframe
    /// (segments are being cut between keyframes).
    pub keyframe_overdue: bool,
}

/// Describes one ladder.
pub fn stream_info(ladder: &Ladder) -> StreamInfo {
    let renditions: Vec<RenditionInfo> = ladder
        .renditions()
        .iter()
        .map(|r| {
            let state = r.read();
            let tracks: Vec<_> = [state.video.as_ref(), state.audio.as_ref()]
                .into_iter()
                .flatten()
                .collect();
            let video = state.video.as_ref().map(|t| &t.config);
            let size = video.and_then(CodecConfig::resolution);
            RenditionInfo {
                name: r.label.clone(),
                stream: r.stream_name.clone(),
                live: state.publishing(),
                state: state.phase(),
                width: size.map(|s| s.0),
                height: size.map(|s| s.1),
                frame_rate: video.and_then(CodecConfig::frame_rate),
                codecs: tracks
                    .iter()
                    .map(|t| t.config.codec_string())
                    .collect::<Vec<_>>()
                    .join(","),
                bandwidth: tracks.iter().map(|t| t.window.bitrates().0).sum(),
                segments: tracks.first().map_or(0, |t| t.window.listed().count()),
                last_sequence: tracks
                    .iter()
                    .filter_map(|t| t.window.last().map(|s| s.seq))
                    .max(),
                misalignment_ms: state.misalignment_ms,
                aligned: state.misalignment_ms == 0.0,
                keyframe_overdue: state.keyframe_overdue,
            }
        })
        .collect();
    StreamInfo {
        app: ladder.app.clone(),
        name: ladder.base.clone(),
        live: renditions.iter().any(|r| r.live),
        aligned: renditions.iter().all(|r| r.aligned),
        hls: ObjectPath::live(
            &ladder.app,
            &ladder.base,
            LadderFile::Master(Container::Cmaf),
        )
        .to_string(),
        renditions,
    }
}

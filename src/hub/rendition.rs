//! One rendition of a ladder: its tracks' codec configs and segment windows.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::media::{CodecConfig, TrackKind};
use crate::store::TrackWindow;

/// What is known about one track of a rendition.
#[derive(Debug)]
pub struct TrackOutput {
    /// The current decoder configuration.
    pub config: CodecConfig,
    /// Version of the current init segment (bumps on reconnect or codec change).
    pub init_version: u64,
    /// Finished segments and their init segments.
    pub window: TrackWindow,
}

/// Mutable state of a rendition, behind its lock.
#[derive(Debug)]
pub struct RenditionState {
    /// The video track, once its sequence header arrived.
    pub video: Option<TrackOutput>,
    /// The audio track, once its sequence header arrived.
    pub audio: Option<TrackOutput>,
    /// Muxed MPEG-TS segments (video + audio), when that output is on.
    pub ts: Option<TrackWindow>,
    /// Wall-clock time of media time zero of the current timeline (DASH's
    /// availabilityStartTime).
    pub timeline_origin: Option<SystemTime>,
    /// Largest distance (ms) of its recent cuts from the ladder's boundaries; 0 = aligned.
    pub misalignment_ms: f64,
    /// Video has gone longer than `segment.max_keyframe_interval` without a keyframe.
    pub keyframe_overdue: bool,
    /// The playlists have ended (EXT-X-ENDLIST): after a clean unpublish, or once the
    /// linger time passed without a reconnect. See [`super::lifecycle`].
    pub ended: bool,
    /// Since when its publisher's connection is gone while a reconnect may still come;
    /// the playlists stay live meanwhile.
    pub reconnect_wait: Option<std::time::Instant>,
    /// Counts publish sessions; lets a delayed removal see a republish happened.
    pub generation: u64,
    /// The connection id of the current (or last) publisher.
    pub publisher: u64,
}

impl RenditionState {
    /// The track of `kind`.
    pub fn track(&self, kind: TrackKind) -> Option<&TrackOutput> {
        match kind {
            TrackKind::Video => self.video.as_ref(),
            TrackKind::Audio => self.audio.as_ref(),
        }
    }

    /// The track of `kind`, mutably.
    pub fn track_mut(&mut self, kind: TrackKind) -> &mut Option<TrackOutput> {
        match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    /// True once every known track has at least one segment, i.e. a player can start.
    pub fn ready(&self) -> bool {
        let tracks = [self.video.as_ref(), self.audio.as_ref()];
        tracks.iter().any(|t| t.is_some()) && tracks.iter().flatten().all(|t| !t.window.is_empty())
    }
}

/// A rendition: one published stream within a ladder.
#[derive(Debug)]
pub struct Rendition {
    /// The label in the ladder (`720p`, `src`, ...), also its URL path segment.
    pub label: String,
    /// The RTMP stream name it was published as.
    pub stream_name: String,
    state: RwLock<RenditionState>,
}

impl Rendition {
    /// A new, live rendition fed by connection `publisher`.
    pub fn new(label: &str, stream_name: &str, publisher: u64) -> Self {
        Rendition {
            label: label.to_string(),
            stream_name: stream_name.to_string(),
            state: RwLock::new(RenditionState {
                video: None,
                audio: None,
                ts: None,
                timeline_origin: None,
                misalignment_ms: 0.0,
                keyframe_overdue: false,
                ended: false,
                reconnect_wait: None,
                generation: 0,
                publisher,
            }),
        }
    }

    /// Shared access to the state. A poisoned lock (a panic while writing) still yields the
    /// data: the window is consistent between statements, and serving on beats failing.
    pub fn read(&self) -> RwLockReadGuard<'_, RenditionState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access to the state.
    pub fn write(&self) -> RwLockWriteGuard<'_, RenditionState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

//! One rendition of a ladder: its tracks' codec configs and segment windows, published as
//! immutable snapshots.
//!
//! Readers (HTTP handlers) take a snapshot, an `Arc` of the whole state, and hold no lock
//! while they render from it or read another rendition: the lock around the current
//! snapshot is held only to clone or replace the `Arc`. The writer (the publisher) changes
//! a copy and publishes it when its guard drops, then moves the channel of each track whose
//! window changed, so a held request wakes only when its own track moves.

use std::ops::Deref;
#[cfg(test)]
use std::ops::DerefMut;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;

use super::renderings::Renderings;
use crate::media::{CodecConfig, TrackKind};
use crate::store::TrackWindow;

/// What is known about one track of a rendition.
#[derive(Clone, Debug)]
pub struct TrackOutput {
    /// The current decoder configuration.
    pub config: CodecConfig,
    /// Version of the current init segment (bumps on reconnect or codec change).
    pub init_version: u64,
    /// Finished segments and their init segments.
    pub window: TrackWindow,
}

/// The state of a rendition; readers see it as an immutable snapshot.
#[derive(Clone, Debug)]
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
    /// The PART-TARGET the playlists advertise, seconds: fixed when the first part is
    /// stored (a playlist's PART-TARGET never changes), `None` before.
    pub part_target: Option<f64>,
}

impl RenditionState {
    /// The track of `kind`.
    pub fn track(&self, kind: TrackKind) -> Option<&TrackOutput> {
        match kind {
            TrackKind::Video => self.video.as_ref(),
            TrackKind::Audio => self.audio.as_ref(),
        }
    }

    /// The track of `kind`, mutably (for the writer's methods).
    fn track_mut(&mut self, kind: TrackKind) -> &mut Option<TrackOutput> {
        match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    /// Where track `kind` stands: changes when its window changes or the rendition ends.
    pub fn position(&self, kind: TrackKind) -> TrackPosition {
        TrackPosition {
            revision: self.track(kind).map(|t| t.window.revision()),
            ended: self.ended,
        }
    }

    /// True once every known track has at least one segment, i.e. a player can start.
    pub fn ready(&self) -> bool {
        let tracks = [self.video.as_ref(), self.audio.as_ref()];
        tracks.iter().any(|t| t.is_some()) && tracks.iter().flatten().all(|t| !t.window.is_empty())
    }
}

/// Where one track stands, as far as a request held for it is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackPosition {
    /// The window's revision; `None` while the track has no window.
    pub revision: Option<u64>,
    /// The rendition has ended.
    pub ended: bool,
}

/// What a track's channel carries: the position of the newest snapshot published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackStamp {
    /// The snapshot's version (publications only move forward).
    version: u64,
    /// The track's position in it.
    pub position: TrackPosition,
}

/// A snapshot and its version.
#[derive(Debug)]
struct Versioned {
    version: u64,
    state: Arc<RenditionState>,
}

/// A rendition: one published stream within a ladder.
#[derive(Debug)]
pub struct Rendition {
    /// The label in the ladder (`720p`, `src`, ...), also its URL path segment.
    pub label: String,
    /// The RTMP stream name it was published as.
    pub stream_name: String,
    /// `Some(id)` for audio track `id` (1..) of an Enhanced RTMP multitrack stream: an
    /// alternative audio rendition of the ladder (EXT-X-MEDIA, its own DASH
    /// AdaptationSet), never a variant nor the source of the ladder's shared audio.
    pub audio_track: Option<u8>,
    /// The newest snapshot; the lock is held only to clone or swap the `Arc`.
    published: RwLock<Versioned>,
    /// The writers' copy. Its lock serialises writers; readers never take it.
    draft: Mutex<Versioned>,
    /// Per track kind (video, audio): moves when that track's position changes.
    moves: [watch::Sender<TrackStamp>; 2],
    /// Its playlists as last rendered, shared by the requests for the same position.
    pub renderings: Renderings,
    /// What its current publisher's encoder sends (see [`super::diagnostics`]).
    pub ingest: super::diagnostics::Shared,
    /// Bytes served and recent viewers (see [`super::traffic`]).
    pub traffic: super::traffic::Traffic,
}

/// The index of a track kind in per-track arrays.
pub(super) fn slot(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl Rendition {
    /// A new, live rendition fed by connection `publisher`.
    pub fn new(label: &str, stream_name: &str, publisher: u64) -> Self {
        let state = Arc::new(RenditionState {
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
            part_target: None,
        });
        let versioned = || Versioned {
            version: 0,
            state: state.clone(),
        };
        Rendition {
            label: label.to_string(),
            stream_name: stream_name.to_string(),
            audio_track: None,
            published: RwLock::new(versioned()),
            draft: Mutex::new(versioned()),
            moves: [
                watch::Sender::new(TrackStamp::default()),
                watch::Sender::new(TrackStamp::default()),
            ],
            renderings: Renderings::default(),
            ingest: Default::default(),
            traffic: Default::default(),
        }
    }

    /// The same rendition as alternative audio track `track` ([`Rendition::audio_track`]).
    pub fn as_audio_track(mut self, track: u8) -> Self {
        self.audio_track = Some(track);
        self
    }

    /// The current snapshot. It stays valid (and unchanged) however long it is kept; no
    /// lock is held while it is. A poisoned lock still yields the data: the `Arc` inside is
    /// always a whole snapshot.
    pub fn read(&self) -> Arc<RenditionState> {
        self.published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .clone()
    }

    /// Changes the state: the returned guard derefs to a private copy (copied on the first
    /// change), published as the new snapshot when the guard drops. Writers queue for each
    /// other but never for readers.
    pub fn write(&self) -> StateWriter<'_> {
        StateWriter {
            rendition: self,
            draft: Some(self.draft.lock().unwrap_or_else(|e| e.into_inner())),
            changed: false,
        }
    }

    /// A receiver that sees every later move of track `kind`: a part or segment stored, an
    /// init segment added, the track appearing, the rendition ending or coming back.
    pub fn subscribe(&self, kind: TrackKind) -> watch::Receiver<TrackStamp> {
        self.moves[slot(kind)].subscribe()
    }

    /// Makes `state` (version `version`) the current snapshot, unless a newer one already
    /// is, and moves the channels of the tracks it changed. Called with no lock held.
    fn publish(&self, version: u64, state: Arc<RenditionState>) {
        {
            let mut published = self.published.write().unwrap_or_else(|e| e.into_inner());
            if published.version >= version {
                return;
            }
            *published = Versioned {
                version,
                state: state.clone(),
            };
        }
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let position = state.position(kind);
            self.moves[slot(kind)].send_if_modified(|stamp| {
                if stamp.version >= version {
                    return false;
                }
                let moved = stamp.position != position;
                *stamp = TrackStamp { version, position };
                moved
            });
        }
    }
}

/// Exclusive access to a rendition's state, published when dropped (see [`Rendition::write`]).
pub struct StateWriter<'a> {
    rendition: &'a Rendition,
    /// Held until drop, then released before publishing.
    draft: Option<MutexGuard<'a, Versioned>>,
    changed: bool,
}

impl StateWriter<'_> {
    fn draft(&self) -> &Versioned {
        self.draft.as_ref().expect("the draft is held until drop")
    }
}

impl Deref for StateWriter<'_> {
    type Target = RenditionState;

    fn deref(&self) -> &RenditionState {
        &self.draft().state
    }
}

impl StateWriter<'_> {
    /// The private copy to change (copied on the first change). Only the named changes
    /// below use it, so every write to a rendition's state is one of them.
    fn state_mut(&mut self) -> &mut RenditionState {
        self.changed = true;
        let draft = self.draft.as_mut().expect("the draft is held until drop");
        // Copy on write: readers may hold the current snapshot; the copy is ours alone.
        Arc::make_mut(&mut draft.state)
    }
}

/// Tests build states field by field; the library changes them only through
/// [`StateWriter`]'s methods (see `rendition_writes.rs`).
#[cfg(test)]
impl DerefMut for StateWriter<'_> {
    fn deref_mut(&mut self) -> &mut RenditionState {
        self.state_mut()
    }
}

impl Drop for StateWriter<'_> {
    fn drop(&mut self) {
        let Some(mut draft) = self.draft.take() else {
            return;
        };
        if !self.changed {
            return;
        }
        draft.version += 1;
        let (version, state) = (draft.version, draft.state.clone());
        // Release the writers' lock first: no lock is held while another is taken. The
        // version keeps publications in order should another writer overtake us here.
        drop(draft);
        self.rendition.publish(version, state);
    }
}

impl std::fmt::Debug for StateWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWriter")
            .field("state", &**self)
            .finish_non_exhaustive()
    }
}

#[path = "rendition_writes.rs"]
mod writes;

#[cfg(test)]
#[path = "rendition_tests.rs"]
pub(crate) mod tests;

//! What the handlers read from the hub, below all of them: a ladder's listed renditions
//! with one snapshot of each, the key a ladder-level rendering is shared under, the wait
//! for a just-published stream's first segment, and where a [`Feed`]'s segments are.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use warp::http::StatusCode;

use super::response::error;
use crate::hub::renderings::RenderKey;
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::store::TrackWindow;
use crate::urls::{Feed, LadderFile};

// Inherent methods on a `urls` type: the URL side names feeds, the HTTP side finds them.
impl Feed {
    /// The feed's window in a rendition, if it has segments there.
    pub fn window(self, state: &RenditionState) -> Option<&TrackWindow> {
        match self {
            Feed::Cmaf(kind) => state.track(kind).map(|t| &t.window),
            Feed::Ts => state.ts.as_ref(),
        }
    }

    /// Whether the feed's output is configured on.
    pub fn enabled(self, hub: &Hub) -> bool {
        let o = &hub.config().outputs;
        match self {
            Feed::Cmaf(_) => o.cmaf(),
            Feed::Ts => o.hls_ts,
        }
    }
}

/// A 404 that says the stream is not live.
pub fn not_found(app: &str, base: &str) -> warp::reply::Response {
    error(
        StatusCode::NOT_FOUND,
        format!("stream {app}/{base} is not live"),
    )
}

/// Waits (bounded by `http.startup_wait`) until `ready` holds for the ladder: a player
/// that asks right after publish starts gets the first playlist as soon as it exists,
/// instead of a 404 it would have to retry.
pub async fn wait_until(hub: &Hub, ladder: &Ladder, ready: impl Fn() -> bool) -> bool {
    let wait = Duration::from_secs_f64(hub.config().http.startup_wait);
    super::blocking::wait_for(hub.drain(), ladder.subscribe(), wait, ready).await
}

/// A rendition with the snapshot of its state a response is made from.
pub type Snapshot = (Arc<Rendition>, Arc<RenditionState>);

/// The renditions a manifest lists as variants, each with one snapshot of its state
/// (taken one at a time): the ready ones being published; when none is, all the ready ones
/// (so a show waiting for its encoder, or its tail, still plays). Alternative audio
/// renditions are not among them ([`alternate_audio`]).
pub fn listed(ladder: &Ladder, feed_ready: impl Fn(&RenditionState) -> bool) -> Vec<Snapshot> {
    listed_of(ladder, false, feed_ready)
}

/// The alternative audio renditions (multitrack audio tracks 1..) ready to be listed, by
/// track id, chosen as [`listed`] chooses.
pub fn alternate_audio(ladder: &Ladder) -> Vec<Snapshot> {
    let mut alternates = listed_of(ladder, true, |s| cmaf_ready(s) && s.audio.is_some());
    alternates.sort_by_key(|(r, _)| r.audio_track);
    alternates
}

fn listed_of(
    ladder: &Ladder,
    alternate: bool,
    feed_ready: impl Fn(&RenditionState) -> bool,
) -> Vec<Snapshot> {
    let ready: Vec<Snapshot> = ladder
        .renditions()
        .into_iter()
        .filter(|r| r.audio_track.is_some() == alternate)
        .map(|r| {
            let state = r.read();
            (r, state)
        })
        .filter(|(_, s)| feed_ready(s))
        .collect();
    if !ready.iter().any(|(_, s)| s.publishing()) {
        return ready;
    }
    ready.into_iter().filter(|(_, s)| s.publishing()).collect()
}

/// What a ladder-level rendering (master playlist, MPD) depends on: the resource and,
/// per listed rendition, its label and the state of its tracks.
#[derive(Debug, PartialEq)]
pub struct LadderKey {
    resource: LadderFile,
    renditions: Vec<RenditionKey>,
}

#[derive(Debug, PartialEq)]
struct RenditionKey {
    label: String,
    /// Window revisions of video, audio and TS: they change with every stored part,
    /// segment or init segment (so with codec and bitrate changes too).
    revisions: [Option<u64>; 3],
    ended: bool,
    publishing: bool,
    misalignment_ms: u64,
    origin: Option<SystemTime>,
}

impl LadderKey {
    /// The key of `resource` rendered from `listed`.
    pub fn new(resource: LadderFile, listed: &[Snapshot]) -> Self {
        let renditions = listed
            .iter()
            .map(|(r, s)| RenditionKey {
                label: r.label.clone(),
                revisions: [
                    s.video.as_ref().map(|t| t.window.revision()),
                    s.audio.as_ref().map(|t| t.window.revision()),
                    s.ts.as_ref().map(|w| w.revision()),
                ],
                ended: s.ended,
                publishing: s.publishing(),
                misalignment_ms: s.misalignment_ms.to_bits(),
                origin: s.timeline_origin,
            })
            .collect();
        LadderKey {
            resource,
            renditions,
        }
    }
}

impl RenderKey for LadderKey {
    fn same_slot(&self, other: &Self) -> bool {
        self.resource == other.resource
    }
}

/// True once a player can start on the CMAF tracks: every known track has a segment.
pub fn cmaf_ready(state: &RenditionState) -> bool {
    state.ready()
}

/// True once a player can start on the TS feed: it has a segment.
pub fn ts_ready(state: &RenditionState) -> bool {
    state.ts.as_ref().is_some_and(|w| !w.is_empty())
}

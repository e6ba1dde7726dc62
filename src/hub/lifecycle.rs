//! A rendition's publish lifecycle.
//!
//! An encoder whose connection drops (socket error, EOF, timeout) usually comes back within
//! seconds, so its playlists stay live while it may: no EXT-X-ENDLIST, which RFC 8216 makes
//! final (a player that saw it stops for good). Only when the linger time passes without a
//! reconnect, or at once when the encoder said it stopped (FCUnpublish, deleteStream or
//! closeStream before the socket closed), do the playlists end. An ended rendition is
//! removed after a while; publishing its name again then starts fresh playlists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::info;

use super::ladder::Ladder;
use super::rendition::{Rendition, RenditionState, StateWriter};
use super::services::Services;

/// Removes an ended rendition of a ladder unless publish session `generation` is no longer
/// its latest: the hub's `expire`, handed down so that this side needs no hub.
pub type Expire = Arc<dyn Fn(&Arc<Ladder>, &Arc<Rendition>, u64) + Send + Sync>;

/// Where a rendition is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A publisher feeds it.
    Publishing,
    /// Its publisher's connection dropped; playlists stay live until it reconnects or the
    /// linger time passes.
    ReconnectWait,
    /// The playlists end with EXT-X-ENDLIST; removal follows.
    Ended,
}

impl Phase {
    /// The name used in the API and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Publishing => "publishing",
            Phase::ReconnectWait => "reconnect-wait",
            Phase::Ended => "ended",
        }
    }
}

/// How a publish session stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// The encoder unpublished (FCUnpublish, deleteStream or closeStream): it means to stop.
    Clean,
    /// The connection went away without that: the encoder may come back.
    Dropped,
}

impl RenditionState {
    /// The lifecycle phase.
    pub fn phase(&self) -> Phase {
        if self.ended {
            Phase::Ended
        } else if self.reconnect_wait.is_some() {
            Phase::ReconnectWait
        } else {
            Phase::Publishing
        }
    }

    /// True while a publisher feeds it.
    pub fn publishing(&self) -> bool {
        self.phase() == Phase::Publishing
    }
}

/// Moves `state` to `to` at `now`, keeping the per-phase gauge right.
fn set_phase(state: &mut StateWriter<'_>, to: Phase, now: Instant) {
    count(state.phase(), -1.0);
    let waiting = (to == Phase::ReconnectWait).then_some(now);
    state.set_lifecycle(to == Phase::Ended, waiting);
    count(to, 1.0);
}

fn count(phase: Phase, delta: f64) {
    metrics::gauge!("packgate_renditions", "state" => phase.as_str()).increment(delta);
}

/// A new rendition starts publishing.
pub(super) fn started(state: &RenditionState) {
    count(state.phase(), 1.0);
}

/// A rendition left the hub (removed, or replaced by a fresh one).
pub(super) fn removed(state: &RenditionState) {
    count(state.phase(), -1.0);
}

/// What a publish request finds under its name.
pub(super) enum Resume {
    /// Somebody publishes it now.
    Busy,
    /// The encoder came back within the linger time: the same playlists continue.
    Continued,
    /// Its playlists ended: the publish starts fresh ones.
    Replace,
}

/// A publisher (connection `conn_id`) asks for an existing rendition at `now`.
pub(super) fn republish(state: &mut StateWriter<'_>, conn_id: u64, now: Instant) -> Resume {
    match state.phase() {
        Phase::Publishing => Resume::Busy,
        Phase::Ended => Resume::Replace,
        Phase::ReconnectWait => {
            let gap =
                (state.reconnect_wait).map(|t| now.saturating_duration_since(t).as_secs_f64());
            set_phase(state, Phase::Publishing, now);
            state.next_session(conn_id);
            info!(gap_secs = gap, "publisher reconnected: playlists continue");
            metrics::counter!("packgate_reconnects_total").increment(1);
            Resume::Continued
        }
    }
}

/// The publish session of `rendition` stopped (its media already flushed). Ends the
/// playlists now or after the linger time, and schedules `expire` on the services'
/// spawner (nothing is scheduled outside a runtime).
pub(super) fn stopped(
    services: &Services,
    expire: &Expire,
    ladder: &Arc<Ladder>,
    rendition: &Arc<Rendition>,
    how: Departure,
) {
    let config = services.config();
    let linger = Duration::from_secs_f64(config.segment.linger);
    // Once ended after a wait, players need only see EXT-X-ENDLIST once: a few target
    // durations (they reload about once per target) before the name is freed.
    let grace = linger.min(3 * config.segment.target());
    let to = match how {
        Departure::Clean => Phase::Ended,
        Departure::Dropped => Phase::ReconnectWait,
    };
    // Read before taking the rendition's lock: a (fake) clock may have a lock of its own.
    let now = services.time().instant();
    let generation = {
        let mut state = rendition.write();
        set_phase(&mut state, to, now);
        state.generation
    };
    ladder.notify();
    info!(app = %ladder.app, stream = %rendition.stream_name, state = to.as_str(), "publish stopped");
    let time = services.time().clone();
    let (expire, ladder, rendition) = (expire.clone(), ladder.clone(), rendition.clone());
    services.time().after(linger, move || {
        let waited = to == Phase::ReconnectWait;
        if waited && !give_up(&ladder, &rendition, generation, time.instant()) {
            return;
        }
        let expire = move || expire(&ladder, &rendition, generation);
        if waited {
            time.after(grace, expire);
        } else {
            expire();
        }
    });
}

/// The linger time passed: if the publisher has not come back, the playlists end.
fn give_up(ladder: &Ladder, rendition: &Rendition, generation: u64, now: Instant) -> bool {
    let mut state = rendition.write();
    if state.phase() != Phase::ReconnectWait || state.generation != generation {
        return false;
    }
    set_phase(&mut state, Phase::Ended, now);
    drop(state);
    ladder.notify();
    info!(app = %ladder.app, stream = %rendition.stream_name, "publisher did not come back: playlists ended");
    true
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;

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

use super::rendition::{Rendition, RenditionState, StateWriter};
use super::{Hub, Ladder};

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
/// playlists now or after the linger time, and schedules the removal on the hub's
/// spawner (nothing is scheduled outside a runtime).
pub(super) fn stopped(
    hub: &Arc<Hub>,
    ladder: &Arc<Ladder>,
    rendition: &Arc<Rendition>,
    how: Departure,
) {
    let config = hub.config();
    let linger = Duration::from_secs_f64(config.segment.linger);
    // Once ended after a wait, players need only see EXT-X-ENDLIST once: a few target
    // durations (they reload about once per target) before the name is freed.
    let grace = linger.min(3 * config.segment.target());
    let to = match how {
        Departure::Clean => Phase::Ended,
        Departure::Dropped => Phase::ReconnectWait,
    };
    // Read before taking the rendition's lock: a (fake) clock may have a lock of its own.
    let now = hub.time().instant();
    let generation = {
        let mut state = rendition.write();
        set_phase(&mut state, to, now);
        state.generation
    };
    ladder.notify();
    info!(app = %ladder.app, stream = %rendition.stream_name, state = to.as_str(), "publish stopped");
    let time = hub.time().clone();
    let (hub, ladder, rendition) = (hub.clone(), ladder.clone(), rendition.clone());
    hub.time().clone().after(linger, move || {
        let waited = to == Phase::ReconnectWait;
        if waited && !give_up(&ladder, &rendition, generation, time.instant()) {
            return;
        }
        let expire = move || hub.expire(&ladder, &rendition, generation);
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
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::hub::Holder;

    #[test]
    fn dropped_waits_clean_ends_and_only_a_waiting_rendition_continues() {
        let hub = Hub::new(Arc::new(Config::default()));
        let mut p = hub.publish("live", "show", Holder::open(1)).unwrap();
        let (ladder, rendition) = (
            p.publisher.ladder().clone(),
            p.publisher.rendition().clone(),
        );
        assert_eq!(rendition.read().phase(), Phase::Publishing);
        p.publisher.finish_as(Departure::Dropped);
        drop(p); // the connection closes: its claim on the name goes
        assert_eq!(rendition.read().phase(), Phase::ReconnectWait);
        assert!(
            !rendition.read().ended,
            "a dropped publisher's playlists stay live"
        );
        // The encoder comes back: same rendition, same playlists.
        let mut again = hub.publish("live", "show", Holder::open(2)).unwrap();
        assert!(Arc::ptr_eq(again.publisher.rendition(), &rendition));
        assert_eq!(rendition.read().phase(), Phase::Publishing);
        assert_eq!(rendition.read().publisher, 2);
        assert!(
            hub.publish("live", "show", Holder::open(3)).is_err(),
            "busy while publishing"
        );
        // A clean unpublish ends at once; a later publish gets fresh playlists.
        again.publisher.finish_as(Departure::Clean);
        drop(again);
        assert_eq!(rendition.read().phase(), Phase::Ended);
        let fresh = hub.publish("live", "show", Holder::open(4)).unwrap();
        assert!(!Arc::ptr_eq(fresh.publisher.rendition(), &rendition));
        assert!(Arc::ptr_eq(
            &ladder.rendition("src").unwrap(),
            fresh.publisher.rendition()
        ));
        // Dropping a publisher without a word is a dropped connection.
        drop(fresh);
        let now = ladder.rendition("src").unwrap();
        assert_eq!(now.read().phase(), Phase::ReconnectWait);
    }

    /// A hub on a fake clock with `linger` seconds of linger time.
    fn fake_hub(linger: f64) -> (Arc<Hub>, Arc<crate::clock::FakeClock>) {
        let config = Config::from_toml(&format!("[segment]\nlinger = {linger}\n")).unwrap();
        let (time, clock) = crate::clock::Time::fake();
        (Hub::with_time(Arc::new(config), time), clock)
    }

    /// Publishes `live/{name}` and ends the session `how`; returns its rendition.
    fn published_then_left(hub: &Arc<Hub>, name: &str, how: Departure) -> Arc<Rendition> {
        let mut p = hub.publish("live", name, Holder::open(1)).unwrap();
        p.publisher.finish_as(how);
        p.publisher.rendition().clone()
    }

    #[test]
    fn the_linger_time_ends_a_wait_then_removes() {
        let (hub, clock) = fake_hub(0.4);
        let rendition = published_then_left(&hub, "gone", Departure::Dropped);
        clock.advance(Duration::from_millis(399));
        assert_eq!(rendition.read().phase(), Phase::ReconnectWait);
        clock.advance(Duration::from_millis(1));
        assert_eq!(rendition.read().phase(), Phase::Ended);
        assert!(
            hub.ladder("live", "gone").is_some(),
            "ENDLIST is served a while"
        );
        // Removed after min(linger, 3 targets) more.
        clock.advance(Duration::from_millis(399));
        assert!(hub.ladder("live", "gone").is_some());
        clock.advance(Duration::from_millis(1));
        assert!(hub.ladder("live", "gone").is_none());
        assert_eq!(clock.pending(), 0);
    }

    #[test]
    fn a_reconnect_within_the_linger_time_cancels_the_expiry() {
        let (hub, clock) = fake_hub(2.0);
        let rendition = published_then_left(&hub, "back", Departure::Dropped);
        clock.advance(Duration::from_millis(1500));
        let again = hub.publish("live", "back", Holder::open(2)).unwrap();
        assert!(Arc::ptr_eq(again.publisher.rendition(), &rendition));
        // The first session's linger and removal come and go without effect.
        clock.advance(Duration::from_secs(30));
        assert_eq!(rendition.read().phase(), Phase::Publishing);
        assert!(hub.ladder("live", "back").is_some());
        assert_eq!(clock.pending(), 0);
    }

    #[test]
    fn a_republish_after_a_clean_end_outlives_the_old_expiry() {
        let (hub, clock) = fake_hub(1.0);
        published_then_left(&hub, "again", Departure::Clean);
        clock.advance(Duration::from_millis(500));
        // Fresh playlists under the name before the old rendition's removal is due.
        let new = hub.publish("live", "again", Holder::open(2)).unwrap();
        clock.advance(Duration::from_secs(30));
        let ladder = hub.ladder("live", "again").expect("ladder kept");
        let mapped = ladder.rendition("src").expect("rendition kept");
        assert!(Arc::ptr_eq(&mapped, new.publisher.rendition()));
        assert_eq!(mapped.read().phase(), Phase::Publishing);
    }

    #[test]
    fn the_reconnect_gap_is_measured_on_the_hubs_clock() {
        let (hub, clock) = fake_hub(5.0);
        let rendition = published_then_left(&hub, "gap", Departure::Dropped);
        let since = rendition.read().reconnect_wait.expect("waiting");
        clock.advance(Duration::from_millis(2500));
        assert_eq!(hub.time().instant() - since, Duration::from_millis(2500));
    }
}

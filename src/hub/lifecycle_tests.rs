//! The lifecycle on a hub: reconnects within the linger time, expiry, on a fake clock.

use std::sync::Arc;
use std::time::Duration;

use super::{Departure, Phase};
use crate::config::Config;
use crate::hub::Holder;
use crate::hub::{Hub, Rendition};

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

//! Publish and expiry of one name are atomic: whatever order they race in, a publish that
//! was granted stays reachable, and an expiry removes only what it was scheduled for.

use std::sync::Arc;

use super::*;

fn open(conn_id: u64) -> Holder {
    Holder::open(conn_id)
}

/// Publishes `live/show` and ends it cleanly; returns what the expiry would be given.
fn ended(hub: &Arc<Hub>, conn_id: u64) -> (Arc<Ladder>, Arc<Rendition>, u64) {
    let mut granted = hub.publish("live", "show", open(conn_id)).unwrap();
    granted.publisher.finish_as(Departure::Clean);
    let (ladder, rendition) = (
        granted.publisher.ladder().clone(),
        granted.publisher.rendition().clone(),
    );
    drop(granted);
    let generation = rendition.read().generation;
    (ladder, rendition, generation)
}

/// True when `rendition` is what the hub serves for `live/show`.
fn reachable(hub: &Hub, rendition: &Arc<Rendition>) -> bool {
    hub.ladder("live", "show")
        .and_then(|l| l.rendition(&rendition.label))
        .is_some_and(|r| Arc::ptr_eq(&r, rendition))
}

#[test]
fn concurrent_publishes_of_one_name_grant_exactly_one_each_round() {
    let hub = Hub::new(Arc::new(Config::default()));
    for round in 0..20u64 {
        let granted = std::thread::scope(|s| {
            let tries: Vec<_> = (0..4)
                .map(|i| {
                    let hub = hub.clone();
                    s.spawn(move || hub.publish("live", "show", open(round * 10 + i)).ok())
                })
                .collect();
            tries
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(granted.len(), 1, "round {round}");
        let winner = granted.into_iter().next().unwrap();
        assert!(reachable(&hub, winner.publisher.rendition()));
        assert_eq!(hub.ladder("live", "show").unwrap().renditions().len(), 1);
        let mut winner = winner;
        winner.publisher.finish_as(Departure::Clean);
    }
}

#[test]
fn expire_after_a_republish_keeps_the_new_rendition() {
    let hub = Hub::new(Arc::new(Config::default()));
    let (ladder, old, generation) = ended(&hub, 1);
    // Republished before the scheduled expiry ran: fresh playlists under the same name.
    let new = hub.publish("live", "show", open(2)).unwrap();
    assert!(!Arc::ptr_eq(new.publisher.rendition(), &old));
    hub.expire(&ladder, &old, generation);
    assert!(reachable(&hub, new.publisher.rendition()));
    assert!(new.publisher.rendition().read().publishing());
}

#[test]
fn expire_after_a_continued_publish_keeps_it() {
    let hub = Hub::new(Arc::new(Config::default()));
    let mut first = hub.publish("live", "show", open(1)).unwrap();
    first.publisher.finish_as(Departure::Dropped);
    let (ladder, rendition) = (
        first.publisher.ladder().clone(),
        first.publisher.rendition().clone(),
    );
    let generation = rendition.read().generation;
    drop(first);
    let again = hub.publish("live", "show", open(2)).unwrap();
    assert!(Arc::ptr_eq(again.publisher.rendition(), &rendition));
    // The expiry scheduled for the first session finds a newer one.
    hub.expire(&ladder, &rendition, generation);
    assert!(reachable(&hub, &rendition));
}

#[test]
fn a_ladder_emptied_by_an_expiry_takes_no_new_rendition() {
    let hub = Hub::new(Arc::new(Config::default()));
    let (ladder, old, generation) = ended(&hub, 1);
    // The expiry has removed the last rendition (the ladder retired) but not yet unmapped
    // the ladder when the name is published again.
    let removed = ladder.remove(&old);
    assert!(removed.removed && removed.retired && ladder.is_retired());
    let new = hub.publish("live", "show", open(2)).unwrap();
    assert!(!Arc::ptr_eq(new.publisher.ladder(), &ladder));
    assert!(
        !ladder.swap(None, old.clone()),
        "a retired ladder takes nothing"
    );
    // The rest of the expiry must not unmap the new ladder.
    hub.expire(&ladder, &old, generation);
    assert!(reachable(&hub, new.publisher.rendition()));
}

#[test]
fn racing_expiry_and_republish_never_lose_the_publish() {
    let hub = Hub::new(Arc::new(Config::default()));
    for round in 0..200u64 {
        let (ladder, old, generation) = ended(&hub, round * 2);
        let new = std::thread::scope(|s| {
            let expiry = s.spawn(|| hub.expire(&ladder, &old, generation));
            let publish = s.spawn(|| hub.publish("live", "show", open(round * 2 + 1)).unwrap());
            expiry.join().unwrap();
            publish.join().unwrap()
        });
        assert!(reachable(&hub, new.publisher.rendition()), "round {round}");
        assert!(!reachable(&hub, &old));
        let mut new = new;
        new.publisher.finish_as(Departure::Clean);
        // Clear the name for the next round, as its own expiry would.
        let generation = new.publisher.rendition().read().generation;
        let (l, r) = (
            new.publisher.ladder().clone(),
            new.publisher.rendition().clone(),
        );
        drop(new);
        hub.expire(&l, &r, generation);
        assert!(hub.ladder("live", "show").is_none());
    }
}

//! Keeps the registry in step with this node's hub: every tick it lists the ladders that
//! are being published here (as `/api/streams` does, from [`Hub::ladders`]); a new one is
//! claimed at once, a gone one (unpublished, dropped) is released at once, and all are
//! refreshed every `cluster.refresh` so they outlive the TTL only while this node lives.
//! A publish of a name another live node holds is cut off (the encoder is disconnected
//! within a tick) with an error log: the stream lives on its first node only.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::registry::{Claim, Owner, Registry};
use crate::hub::Hub;

/// How often the hub's listing is compared with what is registered: bounds how long an
/// unpublished stream stays in the registry and how long a duplicate publish lasts.
const TICK: Duration = Duration::from_millis(250);

type Key = (String, String);

/// How often entries are refreshed and how long each lives.
#[derive(Clone, Copy, Debug)]
pub struct Every {
    /// `cluster.refresh`.
    pub refresh: Duration,
    /// `cluster.ttl`.
    pub ttl: Duration,
}

/// Runs until `stop` resolves; then releases this node's entries (a clean shutdown does
/// not wait for the TTL).
pub async fn run(
    registry: Arc<Registry>,
    me: Owner,
    every: Every,
    hub: Arc<Hub>,
    stop: impl Future<Output = ()>,
) {
    let Every { refresh, ttl } = every;
    let mut registered: HashSet<Key> = HashSet::new();
    let mut interval = tokio::time::interval(TICK.min(refresh));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_refresh = tokio::time::Instant::now();
    let mut stop = std::pin::pin!(stop);
    info!(node = %me.node, advertise = %me.url, "cluster registry sync started");
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = interval.tick() => {}
        }
        let live = publishing(&hub);
        let now = tokio::time::Instant::now();
        let due = now >= next_refresh;
        if due {
            next_refresh = now + refresh;
        }
        for key in &live {
            if registered.contains(key) && !due {
                continue;
            }
            let (app, base) = key;
            match registry.claim(app, base, &me, ttl).await {
                Ok(Claim::Mine) => {
                    if registered.insert(key.clone()) {
                        info!(app = %app, stream = %base, "stream registered in the cluster");
                    }
                }
                Ok(Claim::Theirs(owner)) => {
                    registered.remove(key);
                    metrics::counter!("packgate_cluster_publish_refused_total").increment(1);
                    error!(app = %app, stream = %base, owner = %owner.node, owner_url = %owner.url,
                        "publish refused: stream is live on another cluster node; disconnecting this publisher");
                    hub.disconnect(app, base);
                }
                // Logged (rate-limited) by the registry; retried next tick.
                Err(_) => {}
            }
        }
        let gone: Vec<Key> = registered.difference(&live).cloned().collect();
        for key in gone {
            match registry.release(&key.0, &key.1, &me).await {
                Ok(_) => {
                    info!(app = %key.0, stream = %key.1, "stream removed from the cluster registry");
                    registered.remove(&key);
                }
                // Retried next tick; the TTL removes it in the end anyway.
                Err(e) => {
                    warn!(app = %key.0, stream = %key.1, error = %e, "cluster release failed")
                }
            }
        }
        metrics::gauge!("packgate_cluster_registered_streams").set(registered.len() as f64);
    }
    for (app, base) in &registered {
        let _ = registry.release(app, base, &me).await;
    }
    metrics::gauge!("packgate_cluster_registered_streams").set(0.0);
}

/// The ladders with at least one rendition being published here now.
pub fn publishing(hub: &Hub) -> HashSet<Key> {
    hub.ladders()
        .into_iter()
        .filter(|l| is_publishing(l))
        .map(|l| (l.app.clone(), l.base.clone()))
        .collect()
}

/// True while some rendition of `ladder` has a publisher.
pub fn is_publishing(ladder: &crate::hub::Ladder) -> bool {
    ladder.renditions().iter().any(|r| r.read().publishing())
}

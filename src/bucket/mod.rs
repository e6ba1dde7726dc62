//! Object storage output (`[object_store]`): each live ladder's playlists, init segments
//! and segments copied to an S3-compatible bucket under `{prefix}/{app}/{name}/`, the same
//! relative layout as the HTTP URLs, so the bucket (or a CDN in front of it) serves
//! viewers without packgate. The bucket gets the classic HLS playlists and a DASH MPD
//! without low-latency signalling: it holds whole segments only, no parts.
//!
//! One task finds the ladders ([`run`]); one per ladder keeps its copy ([`sync`]),
//! woken by the ladder's change notification. Layers: [`sync`] → [`plan`] (what a round
//! copies) and [`client`] (the store, with [`budget`] and [`keys`]).

pub mod budget;
pub mod client;
pub mod keys;
pub mod plan;
pub mod sync;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::hub::Hub;

/// How often the hub's ladder list is looked at for new ladders: well within the first
/// segment's time, and a read lock plus a few `Arc` clones each time.
const DISCOVERY: Duration = Duration::from_millis(500);

/// Copies every live ladder to the bucket until `stop` resolves, then lets the copies
/// finish their last round (bounded by the server's drain deadline, which aborts this
/// task and with it every copy). Returns at once when `[object_store]` is off.
pub async fn run(hub: Arc<Hub>, stop: impl Future<Output = ()>) {
    let config = &hub.config().object_store;
    if !config.enabled {
        return;
    }
    let client = match client::Client::from_config(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, bucket = %config.bucket, "object store unusable: no bucket output");
            return;
        }
    };
    // The counters need the process's recorder, whichever task starts first.
    crate::http::metrics::handle();
    tracing::info!(bucket = %config.bucket, endpoint = %config.endpoint,
        prefix = %config.clean_prefix(), "copying live streams to the bucket");
    let shared = Arc::new(sync::Shared {
        hub: hub.clone(),
        client,
        prefix: config.clean_prefix().to_string(),
        delete: config.delete,
    });
    let (stopping, stopped) = watch::channel(false);
    // Dropping the set (this task aborted) aborts every copy.
    let mut copies: JoinSet<usize> = JoinSet::new();
    let mut running: HashSet<usize> = HashSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        for ladder in hub.ladders() {
            let id = Arc::as_ptr(&ladder) as usize;
            if ladder.is_retired() || !running.insert(id) {
                continue;
            }
            let (shared, stopped) = (shared.clone(), stopped.clone());
            copies.spawn(async move {
                sync::sync(shared, ladder, stopped).await;
                id
            });
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(DISCOVERY) => {}
            Some(done) = copies.join_next() => {
                if let Ok(id) = done {
                    running.remove(&id);
                }
            }
        }
    }
    let _ = stopping.send(true);
    while copies.join_next().await.is_some() {}
}

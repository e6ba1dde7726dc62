//! Who holds which rendition: one claim per (app, ladder base, label), checked and taken
//! under one lock, so two simultaneous publishes of a name cannot both succeed. A claim
//! carries a stop signal, which is how a takeover tells the old connection to close.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::auth::{may_take_over, Holder};
use crate::config::Reconnect;

/// (app, ladder base, rendition label).
type Key = (String, String, String);

struct Claim {
    holder: Holder,
    stop: watch::Sender<bool>,
}

/// The held renditions.
#[derive(Default)]
pub struct Claims {
    held: Mutex<HashMap<Key, Claim>>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims").finish_non_exhaustive()
    }
}

/// Why a claim was not granted.
#[derive(Debug)]
pub enum Refused {
    /// Held by someone the newcomer may not take over from.
    Held,
    /// The holder was told to stop; wait for [`Released`] and try again.
    TakingOver(Released),
}

/// Resolves when a claim that was told to stop is gone.
#[derive(Debug)]
pub struct Released(watch::Receiver<bool>);

impl Released {
    /// Waits until the old holder has let go (its publisher finished).
    pub async fn wait(mut self) {
        while self.0.changed().await.is_ok() {}
    }
}

/// A granted claim; dropping it releases the name.
#[derive(Debug)]
pub struct ClaimGuard {
    claims: Arc<Claims>,
    key: Key,
    conn_id: u64,
    stop: watch::Receiver<bool>,
}

impl ClaimGuard {
    /// The holder's connection id.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// A receiver that turns `true` when a newcomer takes the name over.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut held = self.claims.lock();
        if held
            .get(&self.key)
            .is_some_and(|c| c.holder.conn_id == self.conn_id)
        {
            held.remove(&self.key);
        }
    }
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Claim>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims (app, base, label) for `holder`, or tells the current holder to stop when
    /// `policy` lets `holder` take over.
    pub fn claim(
        self: &Arc<Self>,
        key: (&str, &str, &str),
        holder: Holder,
        policy: Reconnect,
    ) -> Result<ClaimGuard, Refused> {
        let key = (key.0.to_string(), key.1.to_string(), key.2.to_string());
        let mut held = self.lock();
        if let Some(current) = held.get(&key) {
            if !may_take_over(policy, &current.holder, &holder) {
                return Err(Refused::Held);
            }
            let released = current.stop.subscribe();
            current.stop.send_replace(true);
            return Err(Refused::TakingOver(Released(released)));
        }
        let (stop, rx) = watch::channel(false);
        let conn_id = holder.conn_id;
        held.insert(key.clone(), Claim { holder, stop });
        Ok(ClaimGuard {
            claims: self.clone(),
            key,
            conn_id,
            stop: rx,
        })
    }
}

impl Claims {
    /// Tells every holder of `app`'s ladder `base` (only rendition `label`, if given) to
    /// stop, as a takeover would; returns how many were told.
    pub fn stop(&self, app: &str, base: &str, label: Option<&str>) -> usize {
        let held = self.lock();
        let mut told = 0;
        for ((a, b, l), claim) in held.iter() {
            if a == app && b == base && label.is_none_or(|x| x == l) {
                claim.stop.send_replace(true);
                told += 1;
            }
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::auth::Credential;

    fn holder(id: u64, ip: &str) -> Holder {
        Holder {
            conn_id: id,
            ip: ip.parse().ok(),
            credential: Credential::Open,
        }
    }

    #[tokio::test]
    async fn one_holder_takeover_and_release() {
        let claims = Arc::new(Claims::default());
        let k = ("live", "show", "src");
        let first = claims
            .claim(k, holder(1, "10.0.0.1"), Reconnect::Takeover)
            .unwrap();
        assert!(matches!(
            claims.claim(k, holder(2, "10.0.0.2"), Reconnect::Takeover),
            Err(Refused::Held)
        ));
        assert!(matches!(
            claims.claim(k, holder(2, "10.0.0.1"), Reconnect::Reject),
            Err(Refused::Held)
        ));
        let mut stop = first.stop_signal();
        let Err(Refused::TakingOver(released)) =
            claims.claim(k, holder(3, "10.0.0.1"), Reconnect::Takeover)
        else {
            panic!("same IP in an open app takes over");
        };
        assert!(*stop.borrow_and_update());
        let waiter = tokio::spawn(released.wait());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        waiter.await.unwrap();
        assert!(claims
            .claim(k, holder(3, "10.0.0.1"), Reconnect::Takeover)
            .is_ok());
    }

    #[test]
    fn racing_claims_grant_one() {
        let claims = Arc::new(Claims::default());
        let granted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let c = claims.clone();
                    s.spawn(move || {
                        c.claim(
                            ("live", "x", "src"),
                            holder(i, "10.0.0.1"),
                            Reconnect::Reject,
                        )
                        .ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(granted.len(), 1);
    }
}

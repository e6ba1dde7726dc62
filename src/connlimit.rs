//! Connection slots: a global cap and a per-IP cap, so one host (or a few) cannot take
//! every slot of a port. A slot is a [`ConnPermit`] held for the connection's life.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot is taken.
    #[error("max_connections reached")]
    Total,
    /// This IP holds its share already.
    #[error("max_connections_per_ip reached")]
    PerIp,
}

#[derive(Debug)]
struct Inner {
    total: Arc<Semaphore>,
    max: usize,
    per_ip: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Hands out connection slots; cheap to clone.
#[derive(Clone, Debug)]
pub struct ConnLimiter {
    inner: Arc<Inner>,
}

/// One connection's slot, given back when dropped.
#[derive(Debug)]
pub struct ConnPermit {
    inner: Arc<Inner>,
    ip: IpAddr,
    _total: OwnedSemaphorePermit,
}

impl ConnLimiter {
    /// `max` connections in all, `per_ip` from one address (0 = no per-IP cap).
    pub fn new(max: usize, per_ip: usize) -> Self {
        ConnLimiter {
            inner: Arc::new(Inner {
                total: Arc::new(Semaphore::new(max)),
                max,
                per_ip,
                by_ip: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A slot for a connection from `ip`, or why not.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let total = self
            .inner
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let mut by_ip = self.inner.lock();
        let n = by_ip.entry(ip).or_insert(0);
        if self.inner.per_ip > 0 && *n >= self.inner.per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(ConnPermit {
            inner: self.inner.clone(),
            ip,
            _total: total,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.max - self.inner.total.available_permits()
    }

    /// Waits until every connection has ended, `limit` at most.
    pub async fn drained(&self, limit: Duration) {
        let all = u32::try_from(self.inner.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(limit, self.inner.total.acquire_many(all)).await;
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map holds counters only; one left by a panicking holder is still usable.
        self.by_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut by_ip = self.inner.lock();
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_caps() {
        let l = ConnLimiter::new(4, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = l.try_acquire(a).unwrap();
        let _a2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::PerIp);
        assert_eq!(l.open(), 2, "a per-IP refusal gives its global slot back");
        let _b1 = l.try_acquire(b).unwrap();
        let _b2 = l.try_acquire(b).unwrap();
        assert_eq!(l.open(), 4);
        drop(a1);
        let _a3 = l.try_acquire(a).unwrap();
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        assert_eq!(l.try_acquire(c).unwrap_err(), Refusal::Total);
        assert_eq!(l.open(), 4);
        assert_eq!(l.inner.lock().len(), 2);
    }

    #[test]
    fn no_per_ip_cap_when_zero_and_map_is_emptied() {
        let l = ConnLimiter::new(100, 0);
        let a: IpAddr = "::1".parse().unwrap();
        let permits: Vec<_> = (0..100).map(|_| l.try_acquire(a).unwrap()).collect();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::Total);
        drop(permits);
        assert!(l.inner.lock().is_empty());
        assert_eq!(l.open(), 0);
    }
}

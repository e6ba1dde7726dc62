//! Connection caps shared by both listeners: a global cap and a per-IP cap, so one
//! address (or a flood) cannot take every slot or every file descriptor.
//!
//! A slot is held by a [`Guard`] and released when the guard drops. The per-IP table only
//! holds addresses with at least one open connection, so it cannot grow without bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot is taken.
    #[error("connection limit reached ({max})")]
    Total {
        /// The global cap.
        max: usize,
    },
    /// This address (or IPv6 /64) holds its share already.
    #[error("per-IP connection limit reached ({max})")]
    PerIp {
        /// The per-IP cap.
        max: usize,
    },
}

impl Refusal {
    /// A short stable name for logs and metric labels.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Total { .. } => "max_connections",
            Refusal::PerIp { .. } => "max_connections_per_ip",
        }
    }
}

/// Counts open connections, in total and per client address.
#[derive(Clone)]
pub struct ConnLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: usize,
    /// 0 = no per-IP cap.
    max_per_ip: usize,
    state: Mutex<State>,
    /// Woken when the last connection closes (for draining).
    empty: Notify,
}

#[derive(Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection's slot; dropping it frees the slot.
#[must_use = "the slot is released when the guard drops"]
pub struct Guard {
    inner: Arc<Inner>,
    key: IpAddr,
}

/// The address a per-IP count is kept under: IPv4-mapped IPv6 counts as its IPv4 address,
/// and other IPv6 addresses by their /64, since one client usually holds a whole /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl ConnLimiter {
    /// A limiter allowing `max_total` connections, at most `max_per_ip` from one address
    /// (0 = no per-IP cap).
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnLimiter {
        ConnLimiter {
            inner: Arc::new(Inner {
                max_total,
                max_per_ip,
                state: Mutex::new(State::default()),
                empty: Notify::new(),
            }),
        }
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<Guard, Refusal> {
        let key = key(ip);
        let mut state = self.inner.lock();
        if state.total >= self.inner.max_total {
            return Err(Refusal::Total {
                max: self.inner.max_total,
            });
        }
        let count = state.per_ip.entry(key).or_insert(0);
        if self.inner.max_per_ip > 0 && *count >= self.inner.max_per_ip {
            // Only an address already holding slots is refused, so no zero entry stays.
            return Err(Refusal::PerIp {
                max: self.inner.max_per_ip,
            });
        }
        *count += 1;
        state.total += 1;
        drop(state);
        Ok(Guard {
            inner: self.inner.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.inner.lock().total
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.inner.lock().per_ip.len()
    }

    /// Resolves once no connection is open.
    pub async fn idle(&self) {
        loop {
            // Created before the check so a release in between is not missed.
            let notified = self.inner.empty.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two counters updated together: still consistent after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.total -= 1;
        if let Some(count) = state.per_ip.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                state.per_ip.remove(&self.key);
            }
        }
        let empty = state.total == 0;
        drop(state);
        if empty {
            self.inner.empty.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_ip_and_in_total() {
        let l = ConnLimiter::new(3, 2);
        let a1 = l.try_acquire(ip("10.0.0.1")).unwrap();
        let a2 = l.try_acquire(ip("10.0.0.1")).unwrap();
        assert_eq!(
            l.try_acquire(ip("10.0.0.1")).err(),
            Some(Refusal::PerIp { max: 2 })
        );
        let b1 = l.try_acquire(ip("10.0.0.2")).unwrap();
        assert_eq!(
            l.try_acquire(ip("10.0.0.3")).err(),
            Some(Refusal::Total { max: 3 })
        );
        assert_eq!(l.active(), 3);
        drop(a1);
        let _a3 = l.try_acquire(ip("10.0.0.1")).unwrap();
        drop((a2, b1));
        assert_eq!(l.active(), 1);
    }

    #[test]
    fn table_forgets_addresses_at_zero() {
        let l = ConnLimiter::new(10_000, 1);
        for i in 0..1000u32 {
            let g = l.try_acquire(IpAddr::from(i.to_be_bytes())).unwrap();
            drop(g);
        }
        assert_eq!(l.addresses(), 0);
        assert_eq!(l.active(), 0);
        // A refusal leaves no entry behind either.
        let held = l.try_acquire(ip("10.0.0.1")).unwrap();
        assert!(l.try_acquire(ip("10.0.0.1")).is_err());
        assert_eq!(l.addresses(), 1);
        drop(held);
        assert_eq!(l.addresses(), 0);
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_v4_as_v4() {
        let l = ConnLimiter::new(100, 1);
        let _a = l.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(l.try_acquire(ip("2001:db8:1:2::ffff")).is_err());
        let _b = l.try_acquire(ip("2001:db8:1:3::1")).unwrap();
        let _c = l.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(l.try_acquire(ip("::ffff:192.0.2.1")).is_err());
    }

    #[test]
    fn no_per_ip_cap_when_zero() {
        let l = ConnLimiter::new(5, 0);
        let guards: Vec<_> = (0..5)
            .map(|_| l.try_acquire(ip("127.0.0.1")).unwrap())
            .collect();
        assert!(matches!(
            l.try_acquire(ip("127.0.0.1")),
            Err(Refusal::Total { .. })
        ));
        drop(guards);
        assert_eq!(l.addresses(), 0);
    }

    #[tokio::test]
    async fn idle_resolves_when_the_last_slot_goes() {
        let l = ConnLimiter::new(5, 0);
        tokio::time::timeout(std::time::Duration::from_secs(1), l.idle())
            .await
            .expect("idle at once when empty");
        let g = l.try_acquire(ip("127.0.0.1")).unwrap();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.idle().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("idle after the last release")
            .unwrap();
    }
}

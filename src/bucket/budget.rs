//! The byte budget of the upload queue: media cloned out of the windows for upload is
//! counted here until its upload ends, so a store slower than the streams makes the
//! uploader skip objects instead of holding ever more of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes waiting for or under upload, all streams, against a limit.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes counted against the budget until dropped.
#[derive(Debug)]
pub struct Reserved {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Counts `bytes` if they fit; `None` when they would exceed the limit.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        metrics::gauge!("packgate_bucket_queue_bytes").increment(bytes as f64);
        Some(Reserved {
            budget: self.clone(),
            bytes,
        })
    }

    /// Bytes counted now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        metrics::gauge!("packgate_bucket_queue_bytes").decrement(self.bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_limit_and_return_on_drop() {
        let b = Budget::new(100);
        let a = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none());
        let c = b.try_reserve(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        assert!(b.try_reserve(60).is_some());
        drop(c);
        assert_eq!(b.used(), 0);
    }
}

//! The server-wide "shutting down" signal: once started, listeners stop accepting, idle
//! keep-alive connections close, and every held request (LL-HLS blocking reload, preload
//! hint, startup wait) is answered at once with what exists instead of waiting on.

use tokio::sync::watch;

/// A one-way switch from serving to draining, observed by waits without polling.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            tx: watch::Sender::new(false),
        }
    }
}

impl Drain {
    /// Starts draining; idempotent.
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// True once draining has started.
    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver for waits that check again and again (`wait_for(|d| *d)`).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once draining has started (at once if it already has).
    pub fn started(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // The sender lives in the hub; if it is gone, so is the server: stop waiting.
            let _ = rx.wait_for(|d| *d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_resolve_when_draining_starts() {
        let drain = Drain::default();
        let before = drain.started();
        let pending = tokio::time::timeout(Duration::from_millis(20), drain.started()).await;
        assert!(pending.is_err(), "not draining yet");
        assert!(!drain.is_draining());
        drain.start();
        tokio::time::timeout(Duration::from_secs(1), before)
            .await
            .expect("a wait made before start resolves");
        tokio::time::timeout(Duration::from_secs(1), drain.started())
            .await
            .expect("a wait made after start resolves at once");
        assert!(drain.is_draining());
    }
}

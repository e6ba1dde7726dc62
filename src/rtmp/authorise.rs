//! The driver side of publish authorisation: carries out what [`Ingest`] asks (a webhook
//! call, waiting for a taken-over publisher to let go), sends its webhook notifications,
//! and tells a connection when a newcomer took its stream over.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, Instrument};

use super::ingest::{AuthAnswer, AuthRequest, Ingest};
use crate::limit::LimitExceeded;

/// Longest wait for a taken-over publisher to finish (it is told at once; this only bounds
/// a connection stuck in a write).
const TAKEOVER_WAIT: Duration = Duration::from_secs(3);

/// Answers the connection's pending requests, each within its own deadline, and sends its
/// notifications in the background.
pub async fn settle(conn: &mut Ingest) -> Result<(), LimitExceeded> {
    loop {
        send_notices(conn);
        let Some(request) = conn.take_request() else {
            return Ok(());
        };
        let answer = match request {
            AuthRequest::Webhook(call) => {
                AuthAnswer::Webhook(call.send().await.map_err(|e| e.to_string()))
            }
            AuthRequest::Takeover(released) => {
                let _ = tokio::time::timeout(TAKEOVER_WAIT, released.wait()).await;
                AuthAnswer::Released
            }
            AuthRequest::Cluster(check) => AuthAnswer::Cluster(check.run().await),
        };
        conn.answer(answer)?;
    }
}

/// Sends the connection's webhook notifications in the background (they need no answer).
pub fn send_notices(conn: &mut Ingest) {
    for call in conn.take_notices() {
        tokio::spawn(
            async move {
                if let Err(e) = call.send().await {
                    debug!(error = %e, "webhook notification not delivered");
                }
            }
            .in_current_span(),
        );
    }
}

/// Resolves when a newcomer took over the stream `signal` belongs to; never without one.
pub async fn taken_over(signal: Option<watch::Receiver<bool>>) {
    if let Some(mut rx) = signal {
        if rx.wait_for(|stop| *stop).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

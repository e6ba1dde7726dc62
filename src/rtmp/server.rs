//! The tokio driver around the sans-IO RTMP session: it only moves bytes between the
//! socket and the session, and hands media to the hub. No protocol logic lives here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{info, info_span, warn, Instrument};

use super::authorise;
use super::ingest::Ingest;
use crate::hub::Hub;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Accepts RTMP connections until `shutdown` resolves, then closes them all.
pub async fn run(hub: Arc<Hub>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(hub.config().rtmp.max_connections));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        warn!(%peer, "refusing RTMP connection: rtmp.max_connections reached");
                        continue;
                    };
                    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
                    let span = info_span!("rtmp", conn = id, %peer, app = tracing::field::Empty, stream = tracing::field::Empty);
                    let (hub, stopped) = (hub.clone(), stopped.clone());
                    tokio::spawn(async move {
                        connection(hub, socket, peer, id, stopped).await;
                        drop(permit);
                    }.instrument(span));
                }
                Err(e) => {
                    // Usually fd exhaustion: back off instead of spinning.
                    warn!(error = %e, "RTMP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let _ = stop.send(true);
    // Let connections flush their last segments (bounded).
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        limit.acquire_many(hub.config().rtmp.max_connections as u32),
    )
    .await;
}

/// One client: read, feed the session, act on its events, write its replies.
async fn connection(
    hub: Arc<Hub>,
    mut socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    metrics::gauge!("packgate_rtmp_connections").increment(1.0);
    let idle = Duration::from_secs_f64(hub.config().rtmp.idle_timeout);
    let mut conn = Ingest::new(hub.clone(), id).with_peer(peer.ip());
    let mut buf = vec![0u8; 64 * 1024];
    let reason = loop {
        let n = tokio::select! {
            _ = stopped.changed() => break "server shutting down".to_string(),
            _ = authorise::taken_over(conn.takeover_signal()) => break "taken over by a new publisher".to_string(),
            r = tokio::time::timeout(idle, socket.read(&mut buf)) => match r {
                Err(_) => break format!("no data for {} s", idle.as_secs()),
                Ok(Err(e)) => break format!("read error: {e}"),
                Ok(Ok(0)) => break "peer closed the connection".to_string(),
                Ok(Ok(n)) => n,
            },
        };
        metrics::counter!("packgate_rtmp_bytes_received_total").increment(n as u64);
        if let Err(e) = conn.input(&buf[..n]) {
            break e;
        }
        authorise::settle(&mut conn).await;
        let pending = std::mem::take(&mut conn.out);
        for chunk in pending {
            if let Err(e) = socket.write_all(&chunk).await {
                return finish(conn, peer, &format!("write error: {e}"));
            }
        }
    };
    finish(conn, peer, &reason);
}

fn finish(mut conn: Ingest, peer: SocketAddr, reason: &str) {
    let was_publishing = conn.is_publishing();
    conn.unpublish();
    authorise::send_notices(&mut conn);
    metrics::gauge!("packgate_rtmp_connections").decrement(1.0);
    if was_publishing {
        warn!(%peer, reason, "RTMP connection closed while publishing");
    } else {
        info!(%peer, reason, "RTMP connection closed");
    }
}

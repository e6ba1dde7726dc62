//! The tokio driver around the sans-IO RTMP session: it only moves bytes between the
//! socket and the session, and enforces the connection caps and deadlines. No protocol
//! logic lives here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use super::authorise;
use super::deadline::Deadline;
use super::ingest::{Ingest, IngestError};
use crate::hub::Hub;
use crate::lograte::LogRate;
use crate::netlimit::{ConnLimiter, Refusal};
use crate::rate_limited_warn;
use crate::tls::{Listener, Tls};

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);
/// Refused connections and failed accepts are logged at most once a second per reason.
static REFUSALS: LogRate = LogRate::per_second();

/// An RTMPS listener and the TLS it speaks.
pub type TlsListener = (TcpListener, Arc<Tls>);

/// Accepts RTMP connections (and RTMPS ones on `tls`, under the same caps) until
/// `shutdown` resolves, then closes them all.
pub async fn run(
    hub: Arc<Hub>,
    listener: TcpListener,
    tls: Option<TlsListener>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &hub.config().rtmp;
    let limiter = ConnLimiter::new(config.max_connections, config.max_connections_per_ip);
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (accepted, secure) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => (accepted, None),
            accepted = accept_tls(&tls) => (accepted, tls.as_ref().map(|(_, t)| t.clone())),
        };
        match accepted {
            Ok((socket, peer)) => {
                let permit = match limiter.try_acquire(peer.ip()) {
                    Ok(p) => p,
                    Err(why) => {
                        refused(why, peer);
                        continue;
                    }
                };
                let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
                let span = info_span!("rtmp", conn = id, %peer, tls = secure.is_some(), app = tracing::field::Empty, stream = tracing::field::Empty);
                let (hub, stopped) = (hub.clone(), stopped.clone());
                tokio::spawn(
                    async move {
                        let _ = socket.set_nodelay(true);
                        let at = Instant::now();
                        match secure {
                            None => connection(hub, socket, peer, id, at, stopped).await,
                            Some(tls) => {
                                // The handshake counts against the publish deadline too.
                                match tls.accept(Listener::Rtmps, socket, peer).await {
                                    Ok(s) => connection(hub, s, peer, id, at, stopped).await,
                                    Err(e) => info!(%peer, error = %e, "RTMPS connection closed"),
                                }
                            }
                        }
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // Usually fd exhaustion: back off instead of spinning.
                rate_limited_warn!(REFUSALS, "accept_failed", error = %e, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Stop accepting now, not after the flush below.
    drop(listener);
    drop(tls);
    let _ = stop.send(true);
    // Let connections flush their last segments (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(5), limiter.idle()).await;
}

/// The next connection on the RTMPS listener; never resolves without one.
async fn accept_tls(tls: &Option<TlsListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// A refused connection: counted, and logged at a bounded rate.
fn refused(why: Refusal, peer: SocketAddr) {
    let reason = why.reason();
    metrics::counter!("packgate_rtmp_refused_total", "reason" => reason).increment(1);
    rate_limited_warn!(REFUSALS, reason, %peer, "refusing RTMP connection: rtmp.{reason} reached");
}

/// One client: read, feed the session, act on its events, write its replies, until the
/// peer leaves, breaks a rule, or misses its deadline. `socket` is TCP or TLS over TCP;
/// the deadlines count from `accepted`.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    hub: Arc<Hub>,
    mut socket: S,
    peer: SocketAddr,
    id: u64,
    accepted: Instant,
    stopped: watch::Receiver<bool>,
) {
    metrics::gauge!("packgate_rtmp_connections").increment(1.0);
    let config = &hub.config().rtmp;
    let secs = Duration::from_secs_f64;
    let write_timeout = secs(config.write_timeout);
    let mut deadline = Deadline::new(
        accepted,
        secs(config.publish_timeout),
        secs(config.idle_timeout),
    );
    let mut conn = Ingest::new(hub.clone(), id).with_peer(peer.ip());
    let mut buf = vec![0u8; 64 * 1024];
    let mut over_budget = false;
    // Made once, not per read: the stop signals stay registered, the timer is moved only
    // when it fires before the deadline (which every media message pushes on), and the
    // counter is looked up once. Per read these cost more than the packaging.
    let received = metrics::counter!("packgate_rtmp_bytes_received_total");
    let mut takeover_known = false;
    let mut stop = Box::pin(stop_or_takeover(stopped.clone(), None));
    let timer = tokio::time::sleep_until(deadline.at().into());
    tokio::pin!(timer);
    // Why the connection ended, and the error kind counted in packgate_errors_total
    // (None for an ordinary end).
    let (kind, reason): (Option<&str>, String) = 'conn: loop {
        if !takeover_known {
            if let Some(signal) = conn.takeover_signal() {
                stop = Box::pin(stop_or_takeover(stopped.clone(), Some(signal)));
                takeover_known = true;
            }
        }
        let n = tokio::select! {
            why = &mut stop => break why,
            _ = &mut timer => {
                if Instant::now() >= deadline.at() {
                    break (Some("rtmp_deadline"), deadline.reason());
                }
                timer.as_mut().reset(deadline.at().into());
                continue;
            }
            r = socket.read(&mut buf) => match r {
                Err(e) => break (Some("rtmp_read"), format!("read error: {e}")),
                Ok(0) => break (None, "peer closed the connection".to_string()),
                Ok(n) => n,
            },
        };
        received.increment(n as u64);
        if let Err(e) = conn.input(&buf[..n]) {
            let kind = if let IngestError::Limit(hit) = &e {
                hit.count();
                over_budget = true;
                "rtmp_limit"
            } else {
                "rtmp_protocol"
            };
            break (Some(kind), e.to_string());
        }
        if let Err(hit) = authorise::settle(&mut conn).await {
            hit.count();
            over_budget = true;
            break (Some("rtmp_limit"), hit.to_string());
        }
        deadline.update(Instant::now(), conn.is_publishing(), conn.frames());
        let out = std::mem::take(&mut conn.out);
        let wrote = !out.is_empty();
        for chunk in out {
            match tokio::time::timeout(write_timeout, socket.write_all(&chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break 'conn (Some("rtmp_write"), format!("write error: {e}")),
                Err(_) => {
                    break 'conn (
                        Some("rtmp_write_timeout"),
                        format!(
                            "write blocked for rtmp.write_timeout ({} s)",
                            write_timeout.as_secs_f64()
                        ),
                    )
                }
            }
        }
        // TLS may keep encrypted bytes until flushed (a no-op for plain TCP).
        if wrote {
            match tokio::time::timeout(write_timeout, socket.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break 'conn (Some("rtmp_write"), format!("write error: {e}")),
                Err(_) => {
                    break 'conn (
                        Some("rtmp_write_timeout"),
                        "flush blocked for rtmp.write_timeout".to_string(),
                    )
                }
            }
        }
    };
    if let Some(kind) = kind {
        metrics::counter!("packgate_errors_total", "kind" => kind).increment(1);
    }
    finish(conn, peer, &reason, over_budget);
}

/// Resolves when the server shuts down or (with `signal`) a newcomer takes the stream over,
/// with the reason the connection ends.
async fn stop_or_takeover(
    mut stopped: watch::Receiver<bool>,
    signal: Option<watch::Receiver<bool>>,
) -> (Option<&'static str>, String) {
    tokio::select! {
        // wait_for, not changed(): a clone made after the shutdown began still sees it.
        _ = stopped.wait_for(|stop| *stop) => (None, "server shutting down".to_string()),
        _ = authorise::taken_over(signal) => (
            None,
            "told to stop (taken over by a new publisher, or disconnected through the API)"
                .to_string(),
        ),
    }
}

/// Ends the publish and logs the one line of the connection's end: a warning when it
/// was publishing or hit a budget.
fn finish(mut conn: Ingest, peer: SocketAddr, reason: &str, over_budget: bool) {
    let was_publishing = conn.is_publishing();
    conn.unpublish();
    authorise::send_notices(&mut conn);
    metrics::gauge!("packgate_rtmp_connections").decrement(1.0);
    if was_publishing {
        warn!(%peer, reason, "RTMP connection closed while publishing");
    } else if over_budget {
        warn!(%peer, reason, "RTMP connection closed");
    } else {
        info!(%peer, reason, "RTMP connection closed");
    }
}

//! Accepting HTTP connections: the plain listener (HTTP/1.1) and, when configured, the
//! HTTPS one (HTTP/2 or HTTP/1.1 by ALPN), under one connection cap and one drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use super::conn::{self, Closed, Timeouts};
use super::{http2, metrics, routes};
use crate::hub::Hub;
use crate::lograte::LogRate;
use crate::netlimit::{ConnLimiter, Guard, Refusal};
use crate::rate_limited_warn;
use crate::tls::{Listener, Tls, ALPN_H2};

/// Refusals (connection caps) are logged at most once a second.
static REFUSALS: LogRate = LogRate::per_second();

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// The sockets HTTP is served on.
pub struct Listeners {
    /// Plain HTTP/1.1.
    pub plain: TcpListener,
    /// HTTPS, with the TLS it speaks.
    pub tls: Option<(TcpListener, Arc<Tls>)>,
}

/// Serves HTTP on `listeners` until `shutdown` resolves; then stops accepting, lets open
/// connections finish their current request (held ones are released by the hub's drain),
/// and returns once all are closed or `http.drain_timeout` has passed.
pub async fn serve(
    hub: Arc<Hub>,
    listeners: Listeners,
    limiter: ConnLimiter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    metrics::handle();
    let config = &hub.config().http;
    let timeouts = Timeouts::new(config);
    let drain_timeout = Duration::from_secs_f64(config.drain_timeout);
    let draining = hub.drain().subscribe();
    let service = warp::service(routes::routes(hub.clone()));
    let Listeners { plain, tls } = listeners;
    // Connections still open at the drain deadline are dropped with this.
    let (abort, aborted) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (accepted, secure) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = plain.accept() => (accepted, None),
            accepted = accept_tls(&tls) => (accepted, tls.as_ref().map(|(_, t)| t.clone())),
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                rate_limited_warn!(REFUSALS, "accept_failed", error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = match limiter.try_acquire(peer.ip()) {
            Ok(g) => g,
            Err(refusal) => {
                refuse(stream, peer, refusal, secure.is_some());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("http", conn = id, %peer, tls = secure.is_some());
        let (service, draining) = (service.clone(), draining.clone());
        // Two task types, so a plain connection's task is no larger than before TLS.
        match secure {
            None => spawn(
                conn::serve(stream, peer.ip(), service, timeouts, draining),
                guard,
                aborted.clone(),
                span,
            ),
            Some(tls) => spawn(
                serve_tls(tls, stream, peer, service, timeouts, draining),
                guard,
                aborted.clone(),
                span,
            ),
        }
    }
    drop(plain);
    drop(tls);
    let open = limiter.active();
    if tokio::time::timeout(drain_timeout, limiter.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            open = limiter.active(),
            "HTTP connections still open after http.drain_timeout: closing them"
        );
    } else {
        tracing::info!(drained = open, "HTTP connections drained");
    }
    let _ = abort.send(true);
}

/// Runs one connection's task: it holds its cap slot, and ends with the drain's abort.
fn spawn(
    served: impl Future<Output = Closed> + Send + 'static,
    guard: Guard,
    mut aborted: watch::Receiver<bool>,
    span: tracing::Span,
) {
    tokio::spawn(
        async move {
            let _open = Open::new(guard);
            tokio::select! {
                closed = served => {
                    ::metrics::counter!("packgate_http_closed_total", "reason" => closed.as_str()).increment(1);
                    tracing::debug!(reason = closed.as_str(), "HTTP connection closed");
                }
                _ = aborted.wait_for(|a| *a) => {}
            }
        }
        .instrument(span),
    );
}

/// The next connection on the HTTPS listener; never resolves without one.
async fn accept_tls(
    tls: &Option<(TcpListener, Arc<Tls>)>,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// An HTTPS connection: the handshake (within `tls.handshake_timeout`), then HTTP/2 when
/// ALPN chose it, HTTP/1.1 otherwise.
async fn serve_tls<S>(
    tls: Arc<Tls>,
    stream: TcpStream,
    peer: SocketAddr,
    service: S,
    timeouts: Timeouts,
    draining: watch::Receiver<bool>,
) -> Closed
where
    S: tower_service::Service<
            warp::http::Request<http_body_util::Empty<bytes::Bytes>>,
            Response = warp::reply::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let Ok(stream) = tls.accept(Listener::Https, stream, peer).await else {
        return Closed::TlsHandshake;
    };
    if stream.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        http2::serve(stream, peer.ip(), service, timeouts, draining).await
    } else {
        conn::serve(stream, peer.ip(), service, timeouts, draining).await
    }
}

/// Closes a connection over a cap at once. The short 503 goes out without waiting (a fresh
/// socket's send buffer is empty), so a refusal costs no task and no buffer; a TLS client
/// could not read it, so an HTTPS connection is just closed.
fn refuse(stream: TcpStream, peer: SocketAddr, refusal: Refusal, tls: bool) {
    ::metrics::counter!("packgate_http_refused_total", "reason" => refusal.reason()).increment(1);
    rate_limited_warn!(REFUSALS, refusal.reason(), %peer, "refusing HTTP connection: {refusal}");
    if tls {
        return;
    }
    let body = format!("{refusal}\n");
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Through the std socket: tokio's try_write would refuse until the reactor has seen the
    // socket writable, which it may not have yet right after accept. The socket stays
    // non-blocking, so this never waits.
    if let Ok(mut std) = stream.into_std() {
        let _ = std::io::Write::write(&mut std, reply.as_bytes());
    }
}

/// An accepted connection: holds its cap slot and counts in `packgate_http_connections`.
struct Open(#[allow(dead_code)] Guard);

impl Open {
    fn new(guard: Guard) -> Open {
        ::metrics::gauge!("packgate_http_connections").increment(1.0);
        Open(guard)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ::metrics::gauge!("packgate_http_connections").decrement(1.0);
    }
}

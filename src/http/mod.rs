//! HTTP output (warp): playlists, segments, the JSON API, metrics and the web page.
//!
//! Layers, top down: this file accepts connections ([`conn`] serves each); [`observe`]
//! parses the path once into a [`crate::urls::ObjectPath`] and counts the request;
//! [`router`] dispatches on it to the handlers ([`master`], [`dash`], [`playlist`],
//! [`objects`], [`vod`], [`api_streams`], [`web`]); below them sit [`snapshot`] (what
//! they read from the hub), [`blocking`] (held requests) and [`response`].

pub mod api;
pub mod api_streams;
pub mod blocking;
pub mod conn;
pub mod dash;
pub mod encoding;
pub mod file_range;
pub mod lifetimes;
pub mod master;
pub mod media;
pub mod metrics;
pub mod objects;
pub mod observe;
pub mod playlist;
pub mod request;
pub mod response;
pub mod router;
pub mod snapshot;
pub mod validators;
pub mod vod;
pub mod web;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;
use warp::http::{header, HeaderValue};
use warp::Filter;

use crate::hub::Hub;
use crate::lograte::LogRate;
use crate::netlimit::{ConnLimiter, Refusal};
use crate::rate_limited_warn;

/// Refusals (connection caps) are logged at most once a second.
static REFUSALS: LogRate = LogRate::per_second();

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Serves HTTP on `listener` until `shutdown` resolves; then stops accepting, lets open
/// connections finish their current request (held ones are released by the hub's drain),
/// and returns once all are closed or `http.drain_timeout` has passed.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    limiter: ConnLimiter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    metrics::handle();
    let config = &hub.config().http;
    let timeouts = conn::Timeouts::new(config);
    let drain_timeout = Duration::from_secs_f64(config.drain_timeout);
    let cors = config.cors_origin.clone();
    let draining = hub.drain().subscribe();
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let routes_hub = hub.clone();
    let headers = request::headers();
    let routes = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(headers)
        .and(warp::ext::optional::<observe::PeerIp>())
        .and(warp::any().map(move || routes_hub.clone()))
        .then(observe::handle)
        .map(move |mut resp: warp::reply::Response| {
            if !cors.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&cors) {
                    let h = resp.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                    h.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static("*"),
                    );
                }
            }
            resp
        });
    let service = warp::service(routes);
    // Connections still open at the drain deadline are dropped with this.
    let (abort, aborted) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let guard = match limiter.try_acquire(peer.ip()) {
                        Ok(g) => g,
                        Err(refusal) => {
                            refuse(stream, peer, refusal);
                            continue;
                        }
                    };
                    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
                    let span = tracing::debug_span!("http", conn = id, %peer);
                    let served = conn::serve(stream, service.clone(), timeouts, draining.clone());
                    let mut aborted = aborted.clone();
                    tokio::spawn(async move {
                        let _open = Open::new(guard);
                        tokio::select! {
                            closed = served => {
                                ::metrics::counter!("packgate_http_closed_total", "reason" => closed.as_str()).increment(1);
                                tracing::debug!(reason = closed.as_str(), "HTTP connection closed");
                            }
                            _ = aborted.wait_for(|a| *a) => {}
                        }
                    }.instrument(span));
                }
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    rate_limited_warn!(REFUSALS, "accept_failed", error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
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

/// Closes a connection over a cap at once. The short 503 goes out without waiting (a fresh
/// socket's send buffer is empty), so a refusal costs no task and no buffer.
fn refuse(stream: TcpStream, peer: SocketAddr, refusal: Refusal) {
    ::metrics::counter!("packgate_http_refused_total", "reason" => refusal.reason()).increment(1);
    rate_limited_warn!(REFUSALS, refusal.reason(), %peer, "refusing HTTP connection: {refusal}");
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
struct Open(#[allow(dead_code)] crate::netlimit::Guard);

impl Open {
    fn new(guard: crate::netlimit::Guard) -> Open {
        ::metrics::gauge!("packgate_http_connections").increment(1.0);
        Open(guard)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ::metrics::gauge!("packgate_http_connections").decrement(1.0);
    }
}

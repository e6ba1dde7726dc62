//! HTTP/2 connections (HTTPS, ALPN `h2`): hyper's server in front of the same warp
//! routes as the HTTP/1.1 driver ([`super::conn`]).
//!
//! Many requests share one connection here, so a held LL-HLS request costs its stream and
//! its route's future, not a socket and its TLS buffers. Everything a client can make the
//! server hold is bounded: streams per connection, header list size, flow-control windows
//! (no request has a body; bodies are dropped unread) and the send buffer per stream.
//!
//! Deadlines: the first request must come within `http.head_timeout` of the handshake; a
//! connection with no request in flight closes after `http.keepalive_timeout`; a peer that
//! stops answering PINGs (gone, or no longer reading) is dropped after twice
//! `http.write_timeout`. Draining sends GOAWAY and lets in-flight requests finish.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tower_service::Service;
use warp::http::Request;

use super::conn::{Closed, Timeouts};
use super::observe::PeerIp;

/// Concurrent streams (requests) one connection may have open.
pub const MAX_STREAMS: u32 = 256;
/// Receive window per stream: requests carry no body, so a small one suffices.
const STREAM_WINDOW: u32 = 16 * 1024;
/// Receive window of the whole connection.
const CONNECTION_WINDOW: u32 = 64 * 1024;
/// Largest frame either side sends (the protocol's minimum, and its default).
const MAX_FRAME: u32 = 16 * 1024;
/// Largest header list of a request, as the HTTP/1.1 driver's head limit.
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// Response bytes buffered per stream ahead of the peer's flow-control window.
const SEND_BUFFER: usize = 64 * 1024;

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
struct Activity {
    origin: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// Milliseconds after `origin` at which the last request ended.
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_end_ms: AtomicU64::new(0),
        })
    }

    /// When the connection became idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.origin + Duration::from_millis(self.last_end_ms.load(Ordering::Acquire)))
    }
}

/// One request in flight: counted from its headers until its response body is dropped.
struct Active(Arc<Activity>);

impl Active {
    fn begin(activity: &Arc<Activity>) -> Active {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Active(activity.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let ms = self.0.origin.elapsed().as_millis() as u64;
        self.0.last_end_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it is sent or dropped.
struct Tracked<B> {
    body: B,
    _active: Active,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves one HTTP/2 connection from `peer` until the client closes it, a deadline passes,
/// or a drain has let its in-flight requests finish.
pub async fn serve<IO, S>(
    io: IO,
    peer: IpAddr,
    service: S,
    timeouts: Timeouts,
    mut draining: watch::Receiver<bool>,
) -> Closed
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Empty<Bytes>>, Response = warp::reply::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Activity::new();
    let counted = activity.clone();
    let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
        // No route takes a body: dropping it unread keeps nothing of it buffered.
        let mut request = request.map(|_| Empty::<Bytes>::new());
        request.extensions_mut().insert(PeerIp(peer));
        let active = Active::begin(&counted);
        let answer = service.clone().call(request);
        async move {
            let Ok(response) = answer.await;
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _active: active,
            }))
        }
    });
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buf_size(SEND_BUFFER)
        .keep_alive_interval(timeouts.write)
        .keep_alive_timeout(timeouts.write);
    let connection = builder.serve_connection(TokioIo::new(io), handler);
    tokio::pin!(connection);
    // Why we are closing, once we started to (GOAWAY sent).
    let mut closing: Option<Closed> = None;
    let check = tokio::time::sleep_until(activity.origin + timeouts.head);
    tokio::pin!(check);
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                return match (closing, ended) {
                    (Some(why), _) => why,
                    (None, Ok(())) => Closed::Normal,
                    (None, Err(e)) if e.is_timeout() => Closed::WriteTimeout,
                    (None, Err(_)) => Closed::IoError,
                };
            }
            _ = draining.wait_for(|d| *d), if closing.is_none() => {
                // In-flight requests finish (held ones are released by the hub's drain);
                // the listener drops what is still open at http.drain_timeout.
                connection.as_mut().graceful_shutdown();
                closing = Some(Closed::Draining);
                check.as_mut().reset(Instant::now() + Duration::from_secs(86_400));
            }
            _ = &mut check => {
                if let Some(why) = closing {
                    // GOAWAY sent a write timeout ago and the peer still holds on.
                    return why;
                }
                let now = Instant::now();
                let next = match activity.idle_since() {
                    _ if activity.started.load(Ordering::Relaxed) == 0 => {
                        closing = Some(Closed::HeadTimeout);
                        now
                    }
                    Some(since) if now >= since + timeouts.keepalive => {
                        closing = Some(Closed::Idle);
                        now
                    }
                    Some(since) => since + timeouts.keepalive,
                    None => now + timeouts.keepalive,
                };
                if closing.is_some() {
                    connection.as_mut().graceful_shutdown();
                    check.as_mut().reset(now + timeouts.write);
                } else {
                    check.as_mut().reset(next);
                }
            }
        }
    }
}

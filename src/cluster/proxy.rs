//! Forwarding a viewer's request to the node that owns the stream: an HTTP/1.1 client
//! with pooled keep-alive connections; the query string (LL-HLS `_HLS_msn`/`_HLS_part`
//! blocking reloads), `Range`, the conditional headers and `Accept-Encoding` go along, the owner's caching and validator headers come
//! back, and the body is streamed through as it arrives, within a byte budget and an idle
//! deadline between chunks. The request carries [`HOP_HEADER`], so the owner serves it
//! from its own hub and never forwards it again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use warp::http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use warp::reply::Reply;

use super::registry::Owner;
use crate::config::cluster::ClusterConfig;

/// Marks a request forwarded by a cluster node (value: the forwarding node's id).
pub const HOP_HEADER: &str = "x-packgate-hop";
/// Names the node that produced a proxied or redirected answer.
pub const NODE_HEADER: &str = "x-packgate-node";

/// Response headers passed back from the owner (hop-by-hop ones never are).
const PASSED: [HeaderName; 11] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::CONTENT_ENCODING,
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
    header::EXPIRES,
    header::VARY,
    header::AGE,
];

/// The proxy's HTTP client.
#[derive(Debug)]
pub struct Proxy {
    client: HyperClient<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    budget: u64,
}

impl Proxy {
    /// A client with `[cluster]`'s timeouts and body budget.
    pub fn new(config: &ClusterConfig) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs_f64(config.proxy_connect_timeout)));
        connector.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Proxy {
            client,
            timeout: Duration::from_secs_f64(config.proxy_timeout),
            budget: config.proxy_body_bytes,
        }
    }

    /// Fetches `path?query` from `owner` for a viewer's `method` request and answers with
    /// the owner's answer; 502/504 when the owner cannot be reached in time.
    pub async fn forward(
        &self,
        owner: &Owner,
        me: &str,
        method: &Method,
        path: &str,
        query: &str,
        forward: &[(HeaderName, &str)],
    ) -> warp::reply::Response {
        let start = Instant::now();
        let uri = owner.url_of(path, query);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(HOP_HEADER, me);
        for (name, value) in forward {
            req = req.header(name, *value);
        }
        let req = match req.body(Empty::new()) {
            Ok(r) => r,
            Err(e) => return failed("bad_request", StatusCode::BAD_GATEWAY, e.to_string()),
        };
        let answer = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                return failed(
                    "connect",
                    StatusCode::BAD_GATEWAY,
                    format!("owner node {} unreachable: {e}", owner.node),
                )
            }
            Err(_) => {
                return failed(
                    "timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("owner node {} did not answer in time", owner.node),
                )
            }
        };
        let (parts, body) = answer.into_parts();
        metrics::counter!("packgate_cluster_proxied_total", "status" => parts.status.as_str().to_string())
            .increment(1);
        metrics::histogram!("packgate_cluster_proxy_head_seconds")
            .record(start.elapsed().as_secs_f64());
        let stream = relay(body, self.timeout, self.budget);
        let mut resp = warp::reply::stream(stream).into_response();
        *resp.status_mut() = parts.status;
        let h = resp.headers_mut();
        for name in PASSED {
            if let Some(v) = parts.headers.get(&name) {
                h.insert(name, v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&owner.node) {
            h.insert(NODE_HEADER, v);
        }
        resp
    }
}

/// The owner's body as a stream of chunks; ends with an error (the viewer's connection is
/// cut) when a chunk takes longer than `idle` or the total passes `budget`.
fn relay(
    body: hyper::body::Incoming,
    idle: Duration,
    budget: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    // The stream must be Sync for warp; a channel decouples it from hyper's body.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut body = body;
        let mut sent = 0u64;
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Ok(Some(Ok(f))) => f,
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    break;
                }
                Err(_) => {
                    metrics::counter!("packgate_cluster_proxy_errors_total", "reason" => "body_timeout").increment(1);
                    let _ = tx.send(Err(std::io::ErrorKind::TimedOut.into())).await;
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            sent += data.len() as u64;
            if sent > budget {
                metrics::counter!("packgate_cluster_proxy_errors_total", "reason" => "body_budget")
                    .increment(1);
                let _ = tx
                    .send(Err(std::io::Error::other(
                        "proxied body over cluster.proxy_body_bytes",
                    )))
                    .await;
                break;
            }
            metrics::counter!("packgate_cluster_proxy_bytes_total").increment(data.len() as u64);
            if tx.send(Ok(data)).await.is_err() {
                break;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// A gateway error, counted.
fn failed(reason: &'static str, status: StatusCode, text: String) -> warp::reply::Response {
    metrics::counter!("packgate_cluster_proxy_errors_total", "reason" => reason).increment(1);
    tracing::warn!(reason, %status, "{text}");
    text_answer(status, text)
}

/// A short plain-text answer that no cache keeps (ownership moves).
pub fn text_answer(status: StatusCode, text: String) -> warp::reply::Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(format!("{text}\n"))
        .map(Reply::into_response)
        .unwrap_or_else(|_| status.into_response())
}

//! Several nodes, one service (`[cluster]`): a stream lives on the node that ingests it;
//! [`sync`] keeps that node's entry in the shared Redis [`registry`] (TTL, refreshed while
//! it publishes, released on unpublish, expiring when the node dies); any node asked for a
//! stream it does not publish looks the owner up (cached briefly) and [`proxy`]-forwards
//! the request or redirects the viewer there. Depends on `hub` and `config` only, so
//! `http::router` and `server` can call in without a circle.

pub mod proxy;
pub mod registry;
pub mod resp;
pub mod sync;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::Instrument;
use warp::http::{header, HeaderName, HeaderValue, Method, StatusCode};

use crate::config::cluster::{ClusterConfig, ClusterMode, RedisAddr};
use crate::hub::Hub;
use proxy::Proxy;
use registry::{Owner, Registry};

/// Lookups remembered at most; past that the cache starts over (a flood of made-up names
/// cannot grow it).
const CACHE_ENTRIES: usize = 65_536;

type Key = (String, String);

/// One node's cluster state, attached to its hub.
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    me: Owner,
    registry: Arc<Registry>,
    proxy: Proxy,
    cache: Mutex<HashMap<Key, (Instant, Option<Owner>)>>,
}

/// Starts the registry sync when `[cluster]` is on and attaches the cluster to `hub`
/// (so the HTTP router finds it); `http_port` names the node when `node_id` is empty.
pub fn start(
    hub: &Arc<Hub>,
    http_port: u16,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Option<JoinHandle<()>> {
    let config = &hub.config().cluster;
    if !config.enabled {
        return None;
    }
    let cluster = Arc::new(Cluster::new(config, http_port));
    hub.attach_cluster(cluster.clone());
    let every = sync::Every {
        refresh: Duration::from_secs_f64(config.refresh_secs()),
        ttl: Duration::from_secs_f64(config.ttl),
    };
    let (registry, me) = (cluster.registry.clone(), cluster.me.clone());
    Some(tokio::spawn(sync::run(
        registry,
        me,
        every,
        hub.clone(),
        stop,
    )))
}

impl Cluster {
    fn new(config: &ClusterConfig, http_port: u16) -> Cluster {
        // Validated at start.
        let addr = RedisAddr::parse(&config.redis).unwrap_or(RedisAddr {
            host_port: "127.0.0.1:6379".into(),
            password: None,
            db: 0,
        });
        let node = if config.node_id.is_empty() {
            default_node_id(http_port)
        } else {
            config.node_id.clone()
        };
        Cluster {
            me: Owner {
                node,
                url: config.advertise.trim_end_matches('/').to_string(),
            },
            registry: Arc::new(Registry::new(
                addr,
                Duration::from_secs_f64(config.redis_timeout),
            )),
            proxy: Proxy::new(config),
            cache: Mutex::new(HashMap::new()),
            config: config.clone(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.me.node
    }

    /// The owner of `app/base` per the registry, through the lookup cache; `None` when no
    /// node has it or Redis cannot be asked (then local streams are all we serve).
    async fn owner(&self, app: &str, base: &str) -> Option<Owner> {
        let key = (app.to_string(), base.to_string());
        let fresh = Duration::from_secs_f64(self.config.lookup_cache);
        let now = Instant::now();
        if let Some((at, owner)) = self.lock_cache().get(&key) {
            if now.saturating_duration_since(*at) < fresh {
                metrics::counter!("packgate_cluster_lookups_total", "result" => "cached")
                    .increment(1);
                return owner.clone();
            }
        }
        let owner = match self.registry.lookup(app, base).await {
            Ok(o) => o,
            Err(_) => {
                metrics::counter!("packgate_cluster_lookups_total", "result" => "error")
                    .increment(1);
                return None;
            }
        };
        let result = if owner.is_some() { "owner" } else { "none" };
        metrics::counter!("packgate_cluster_lookups_total", "result" => result).increment(1);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), owner.clone()));
        owner
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, Option<Owner>)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The check a publish of `app/base` waits for: refused when another live node owns the
/// name (one stream, one origin). A registry that cannot be asked lets the publish go on
/// (availability first); [`sync`] then settles a race by disconnecting the later one.
#[derive(Debug)]
pub struct PublishCheck {
    cluster: Arc<Cluster>,
    app: String,
    base: String,
}

/// The check for a publish of `app/base`, when `[cluster]` is on.
pub fn publish_check(hub: &Hub, app: &str, base: &str) -> Option<PublishCheck> {
    let cluster = hub.cluster()?.clone().downcast::<Cluster>().ok()?;
    Some(PublishCheck {
        cluster,
        app: app.to_string(),
        base: base.to_string(),
    })
}

impl PublishCheck {
    /// Asks the registry (uncached, within `cluster.redis_timeout`); `Err` says why the
    /// publish is refused.
    pub async fn run(self) -> Result<(), String> {
        let c = &self.cluster;
        match c.registry.lookup(&self.app, &self.base).await {
            Ok(Some(owner)) if owner.node != c.me.node => {
                metrics::counter!("packgate_cluster_publish_refused_total").increment(1);
                tracing::error!(app = %self.app, stream = %self.base, owner = %owner.node, owner_url = %owner.url,
                    "publish refused: the stream is live on another cluster node");
                Err(format!("live on cluster node {}", owner.node))
            }
            Ok(_) => Ok(()),
            // Logged (rate-limited) by the registry.
            Err(_) => Ok(()),
        }
    }
}

/// The request a live path's handler would answer, as far as the cluster cares.
#[derive(Debug)]
pub struct LiveRequest<'a> {
    /// GET or HEAD.
    pub method: &'a Method,
    /// RTMP app.
    pub app: &'a str,
    /// Ladder base name.
    pub base: &'a str,
    /// The whole request path, as asked.
    pub path: &'a str,
    /// The raw query string (`_HLS_msn=…`), empty if none.
    pub query: &'a str,
    /// [`proxy::HOP_HEADER`], when another node forwarded the request.
    pub hop: Option<&'a str>,
    /// The viewer's headers that go along: `Range`, the conditional ones and
    /// `Accept-Encoding`, so ranges, 304s and gzip work through a proxy node too.
    pub forward: Vec<(HeaderName, &'a str)>,
}

/// The answer for a live path when another node owns the stream (proxied, or a 307 to
/// it); `None` when this node should answer itself: the cluster is off, the stream is
/// published here, the request was already forwarded once, or no node has the stream.
pub async fn route(hub: &Hub, req: LiveRequest<'_>) -> Option<warp::reply::Response> {
    let cluster = hub.cluster()?.downcast_ref::<Cluster>()?;
    if req.hop.is_some() {
        return None;
    }
    if hub
        .ladder(req.app, req.base)
        .is_some_and(|l| sync::is_publishing(&l))
    {
        return None;
    }
    let owner = cluster.owner(req.app, req.base).await?;
    if owner.node == cluster.me.node {
        return None;
    }
    Some(match cluster.config.mode {
        ClusterMode::Proxy => {
            let span = tracing::debug_span!("cluster_proxy", app = req.app, stream = req.base, owner = %owner.node);
            cluster
                .proxy
                .forward(
                    &owner,
                    &cluster.me.node,
                    req.method,
                    req.path,
                    req.query,
                    &req.forward,
                )
                .instrument(span)
                .await
        }
        ClusterMode::Redirect => redirect(&owner, req.path, req.query),
    })
}

/// A 307 to the owner: the viewer repeats the same request there (method and query kept).
fn redirect(owner: &Owner, path: &str, query: &str) -> warp::reply::Response {
    metrics::counter!("packgate_cluster_redirects_total").increment(1);
    let url = owner.url_of(path, query);
    let mut resp = proxy::text_answer(StatusCode::TEMPORARY_REDIRECT, format!("see {url}"));
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&owner.node) {
        resp.headers_mut().insert(proxy::NODE_HEADER, v);
    }
    resp
}

/// `{hostname}:{http_port}`, or a random name when the hostname is unknown.
fn default_node_id(http_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()));
    format!("{host}:{http_port}")
}

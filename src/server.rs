//! Starting and stopping the whole gateway: RTMP ingest plus HTTP output around one hub.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hub::Hub;
use crate::netlimit::ConnLimiter;

/// A running gateway.
pub struct Server {
    /// Where RTMP listens (the real port when the config said port 0).
    pub rtmp_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    hub: Arc<Hub>,
    http_limiter: ConnLimiter,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binding a listener failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {source}")]
pub struct BindError {
    /// "RTMP" or "HTTP".
    pub what: &'static str,
    /// The address asked for.
    pub addr: SocketAddr,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Connections the kernel queues before we accept them (capped by `net.core.somaxconn`):
/// a burst of a few thousand (a CDN reconnecting, a flood) is queued rather than dropped
/// into SYN retransmits.
const BACKLOG: u32 = 4096;

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As TcpListener::bind does: a restart may bind while old connections linger.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)
    };
    listen().map_err(|source| BindError { what, addr, source })
}

impl Server {
    /// Binds both listeners and starts serving.
    pub async fn start(config: Config) -> Result<Server, BindError> {
        let rtmp = bind("RTMP", config.rtmp.listen).await?;
        let http = bind("HTTP", config.http.listen).await?;
        let rtmp_addr = rtmp.local_addr().map_err(|source| BindError {
            what: "RTMP",
            addr: config.rtmp.listen,
            source,
        })?;
        let http_addr = http.local_addr().map_err(|source| BindError {
            what: "HTTP",
            addr: config.http.listen,
            source,
        })?;
        let http_limiter = ConnLimiter::new(
            config.http.max_connections,
            config.http.max_connections_per_ip,
        );
        let hub = Hub::new(Arc::new(config));
        // Recordings a killed predecessor left open end here, before anything records.
        let recovering = hub.clone();
        let _ = tokio::task::spawn_blocking(move || recovering.recorder().recover()).await;
        let (stop, stopped) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let cluster = crate::cluster::start(&hub, http_addr.port(), wait(stopped.clone()));
        let mut tasks = vec![
            tokio::spawn(crate::rtmp::server::run(
                hub.clone(),
                rtmp,
                wait(stopped.clone()),
            )),
            tokio::spawn(crate::bucket::run(hub.clone(), wait(stopped.clone()))),
            tokio::spawn(crate::http::serve(
                hub.clone(),
                http,
                http_limiter.clone(),
                wait(stopped),
            )),
        ];
        tasks.extend(cluster);
        tracing::info!(%rtmp_addr, %http_addr, "packgate listening");
        Ok(Server {
            rtmp_addr,
            http_addr,
            hub,
            http_limiter,
            stop,
            tasks,
        })
    }

    /// The hub, for tests and embedding.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// HTTP connections open now.
    pub fn http_connections(&self) -> usize {
        self.http_limiter.active()
    }

    /// Drains and stops, within `http.drain_timeout` whatever clients do: both listeners
    /// stop accepting at once, held requests are answered with what exists, in-flight
    /// requests finish, idle keep-alive connections close, RTMP publishers end (flushing
    /// their last segments); whatever is still running at the deadline is dropped.
    pub async fn shutdown(self) {
        let limit = Duration::from_secs_f64(self.hub.config().http.drain_timeout);
        let deadline = tokio::time::Instant::now() + limit;
        self.hub.drain().start();
        let _ = self.stop.send(true);
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        let all = async {
            for t in self.tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            tracing::warn!(
                drain_timeout = limit.as_secs_f64(),
                "drain not finished within http.drain_timeout: stopping anyway"
            );
            for a in aborts {
                a.abort();
            }
        }
    }
}

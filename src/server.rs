//! Starting and stopping the whole gateway: RTMP ingest plus HTTP output around one hub,
//! each also over TLS (RTMPS, HTTPS) when configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::Listeners;
use crate::hub::Hub;
use crate::netlimit::ConnLimiter;
use crate::tls::Tls;

/// A running gateway.
pub struct Server {
    /// Where RTMP listens (the real port when the config said port 0).
    pub rtmp_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Where RTMPS listens, when `tls.rtmps_listen` is set.
    pub rtmps_addr: Option<SocketAddr>,
    /// Where HTTPS listens, when `tls.https_listen` is set.
    pub https_addr: Option<SocketAddr>,
    hub: Arc<Hub>,
    tls: Option<Arc<Tls>>,
    http_limiter: ConnLimiter,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binding a listener failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {source}")]
pub struct BindError {
    /// "RTMP", "HTTP", "RTMPS" or "HTTPS".
    pub what: &'static str,
    /// The address asked for.
    pub addr: SocketAddr,
    /// The I/O error.
    pub source: std::io::Error,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::LoadError),
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

/// Binds `addr` and returns the listener with its real address (port 0 resolved).
async fn bind_addr(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), BindError> {
    let listener = bind(what, addr).await?;
    let real = listener
        .local_addr()
        .map_err(|source| BindError { what, addr, source })?;
    Ok((listener, real))
}

/// Binds `addr` when set.
async fn bind_optional(
    what: &'static str,
    addr: Option<SocketAddr>,
) -> Result<Option<(TcpListener, SocketAddr)>, BindError> {
    match addr {
        Some(addr) => Ok(Some(bind_addr(what, addr).await?)),
        None => Ok(None),
    }
}

impl Server {
    /// Loads the TLS certificate (when a TLS listener is configured), binds the listeners
    /// and starts serving.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let tls = match config.tls.enabled() {
            true => Some(Arc::new(Tls::new(&config.tls)?)),
            false => None,
        };
        let (rtmp, rtmp_addr) = bind_addr("RTMP", config.rtmp.listen).await?;
        let (http, http_addr) = bind_addr("HTTP", config.http.listen).await?;
        let rtmps = bind_optional("RTMPS", config.tls.rtmps_listen).await?;
        let https = bind_optional("HTTPS", config.tls.https_listen).await?;
        let rtmps_addr = rtmps.as_ref().map(|(_, a)| *a);
        let https_addr = https.as_ref().map(|(_, a)| *a);
        // Both are Some only when tls is (a TLS listener needs the certificate).
        let with_tls = |l: Option<(TcpListener, SocketAddr)>| {
            l.zip(tls.clone())
                .map(|((listener, _), tls)| (listener, tls))
        };
        let (rtmps, https) = (with_tls(rtmps), with_tls(https));
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
                rtmps,
                wait(stopped.clone()),
            )),
            tokio::spawn(crate::bucket::run(hub.clone(), wait(stopped.clone()))),
            tokio::spawn(crate::http::serve(
                hub.clone(),
                Listeners {
                    plain: http,
                    tls: https,
                },
                http_limiter.clone(),
                wait(stopped),
            )),
        ];
        tasks.extend(cluster);
        tracing::info!(%rtmp_addr, %http_addr, ?rtmps_addr, ?https_addr, "packgate listening");
        Ok(Server {
            rtmp_addr,
            http_addr,
            rtmps_addr,
            https_addr,
            hub,
            tls,
            http_limiter,
            stop,
            tasks,
        })
    }

    /// The hub, for tests and embedding.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Re-reads the TLS certificate and key (what SIGHUP does): new handshakes get the new
    /// certificate, whose SHA-256 is returned; on failure the old one stays. `None` when no
    /// TLS listener is configured.
    pub fn reload_tls(&self) -> Option<Result<String, crate::tls::LoadError>> {
        self.tls.as_ref().map(|t| t.reload())
    }

    /// The TLS side, when a TLS listener is configured.
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
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

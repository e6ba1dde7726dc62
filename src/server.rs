//! Starting and stopping the whole gateway: RTMP ingest plus HTTP output around one hub.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hub::Hub;

/// A running gateway.
pub struct Server {
    /// Where RTMP listens (the real port when the config said port 0).
    pub rtmp_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    hub: Arc<Hub>,
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

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
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
        let hub = Hub::new(Arc::new(config));
        let (stop, stopped) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let tasks = vec![
            tokio::spawn(crate::rtmp::server::run(
                hub.clone(),
                rtmp,
                wait(stopped.clone()),
            )),
            tokio::spawn(crate::http::serve(hub.clone(), http, wait(stopped))),
        ];
        tracing::info!(%rtmp_addr, %http_addr, "packgate listening");
        Ok(Server {
            rtmp_addr,
            http_addr,
            hub,
            stop,
            tasks,
        })
    }

    /// The hub, for tests and embedding.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Stops accepting, closes connections, and waits for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

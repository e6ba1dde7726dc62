//! TLS for RTMPS ingest and HTTPS output (rustls with the ring provider). Both listeners
//! present the one certificate of [`reload::CertResolver`], reloaded on SIGHUP; HTTPS
//! offers HTTP/2 and HTTP/1.1 by ALPN, RTMPS none.

pub mod reload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
pub use reload::{CertResolver, LoadError};

/// ALPN identifier of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN identifier of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Which listener a handshake is for (metric label and the ALPN offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// RTMPS ingest: no ALPN.
    Rtmps,
    /// HTTPS: `h2` preferred, then `http/1.1`.
    Https,
}

impl Listener {
    fn label(self) -> &'static str {
        match self {
            Listener::Rtmps => "rtmps",
            Listener::Https => "https",
        }
    }
}

/// Why a TLS connection never got past its handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not finished within `tls.handshake_timeout`.
    #[error("TLS handshake not finished within tls.handshake_timeout")]
    Timeout,
    /// The client spoke something else, or the handshake failed.
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
}

/// The TLS side of the server: the reloadable certificate and one acceptor per listener.
pub struct Tls {
    resolver: Arc<CertResolver>,
    rtmps: TlsAcceptor,
    https: TlsAcceptor,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("resolver", &self.resolver)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate and key named in `config`.
    pub fn new(config: &TlsConfig) -> Result<Tls, LoadError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(CertResolver::load(
            &config.cert,
            &config.key,
            provider.clone(),
        )?);
        let base = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| LoadError::Pair {
                cert: config.cert.display().to_string(),
                key: config.key.display().to_string(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        let mut https = base.clone();
        https.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        Ok(Tls {
            resolver,
            rtmps: TlsAcceptor::from(Arc::new(base)),
            https: TlsAcceptor::from(Arc::new(https)),
            handshake_timeout: Duration::from_secs_f64(config.handshake_timeout),
        })
    }

    /// Re-reads the certificate and key (what SIGHUP does); see [`CertResolver::reload`].
    pub fn reload(&self) -> Result<String, LoadError> {
        self.resolver.reload()
    }

    /// SHA-256 of the certificate new handshakes get.
    pub fn fingerprint(&self) -> String {
        self.resolver.fingerprint()
    }

    /// Runs the server side of the handshake on an accepted socket, within
    /// `tls.handshake_timeout`. Failures are counted in
    /// `packgate_tls_handshake_failures_total{listener,reason}`.
    pub async fn accept(
        &self,
        listener: Listener,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let acceptor = match listener {
            Listener::Rtmps => &self.rtmps,
            Listener::Https => &self.https,
        };
        let result =
            match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return Ok(tls),
                Ok(Err(e)) => HandshakeError::Failed(e),
                Err(_) => HandshakeError::Timeout,
            };
        let reason = match result {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Failed(_) => "failed",
        };
        metrics::counter!(
            "packgate_tls_handshake_failures_total",
            "listener" => listener.label(),
            "reason" => reason
        )
        .increment(1);
        tracing::debug!(%peer, listener = listener.label(), error = %result, "TLS handshake failed");
        Err(result)
    }
}

//! TLS settings (`[tls]`): RTMPS ingest and HTTPS output on their own ports, both off by
//! default, sharing one certificate that SIGHUP reloads from the same files.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::ConfigError;

/// `[tls]`: where the certificate and key live and which TLS listeners run.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first), read at start and on every SIGHUP.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key: PathBuf,
    /// Address of the RTMPS listener (`rtmps://`); unset = no RTMPS.
    pub rtmps_listen: Option<SocketAddr>,
    /// Address of the HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN); unset = no HTTPS.
    pub https_listen: Option<SocketAddr>,
    /// Seconds a client has to finish the TLS handshake (counted from accept).
    pub handshake_timeout: f64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            rtmps_listen: None,
            https_listen: None,
            handshake_timeout: 10.0,
        }
    }
}

impl TlsConfig {
    /// True when a TLS listener is configured (and so a certificate is needed).
    pub fn enabled(&self) -> bool {
        self.rtmps_listen.is_some() || self.https_listen.is_some()
    }

    /// Checks that a configured listener has its certificate and key paths; the files
    /// themselves are read (and their errors reported) when the server starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::error::seconds("tls.handshake_timeout", self.handshake_timeout, 600.0)?;
        if !self.enabled() {
            return Ok(());
        }
        for (key, path) in [("tls.cert", &self.cert), ("tls.key", &self.key)] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    key,
                    problem:
                        "must name a PEM file when tls.rtmps_listen or tls.https_listen is set"
                            .to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn off_by_default_and_listeners_need_files() {
        let c = Config::default();
        assert!(!c.tls.enabled());
        let err = Config::from_toml("[tls]\nhttps_listen = \"127.0.0.1:8443\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.cert"), "{err}");
        let c = Config::from_toml(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nrtmps_listen = \"127.0.0.1:1936\"\n",
        )
        .unwrap();
        assert!(c.tls.enabled() && c.tls.https_listen.is_none());
        let err = Config::from_toml("[tls]\nhandshake_timeout = 0\n").unwrap_err();
        assert!(err.to_string().contains("tls.handshake_timeout"), "{err}");
    }
}

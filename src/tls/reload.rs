//! The certificate every TLS listener presents, swappable while serving: SIGHUP re-reads
//! the PEM files, and a new handshake gets the new certificate while established
//! connections keep theirs. A file that does not load (missing, malformed, key not matching
//! the certificate) leaves the old certificate in place.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// PEM files larger than this are refused: a certificate chain is a few KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Loading the certificate or key failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than a PEM file of certificates or a key can be.
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The file is not PEM or holds no object of the kind needed.
    #[error("{path}: {problem}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The key is of an unsupported type or does not match the certificate.
    #[error("certificate {cert} and key {key} do not make a usable pair: {source}")]
    Pair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// Serves whichever certificate was loaded last; [`CertResolver::reload`] swaps it.
#[derive(Debug)]
pub struct CertResolver {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Loads `cert` and `key` (PEM); fails if they do not make a usable pair.
    pub fn load(
        cert: &Path,
        key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<CertResolver, LoadError> {
        let loaded = load_pair(cert, key, &provider)?;
        tracing::info!(
            cert = %cert.display(),
            sha256 = %fingerprint(&loaded.cert[0]),
            "TLS certificate loaded"
        );
        Ok(CertResolver {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Re-reads the files. On success new handshakes use the new certificate and its
    /// SHA-256 fingerprint is returned; on failure the old one stays and the error is
    /// logged (and returned).
    pub fn reload(&self) -> Result<String, LoadError> {
        match load_pair(&self.cert, &self.key, &self.provider) {
            Ok(loaded) => {
                let sha = fingerprint(&loaded.cert[0]);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                metrics::counter!("packgate_tls_reloads_total", "result" => "ok").increment(1);
                tracing::info!(cert = %self.cert.display(), sha256 = %sha, "TLS certificate reloaded");
                Ok(sha)
            }
            Err(e) => {
                metrics::counter!("packgate_tls_reloads_total", "result" => "error").increment(1);
                tracing::error!(error = %e, "TLS certificate reload failed: keeping the old certificate");
                Err(e)
            }
        }
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SHA-256 of the leaf certificate served now (lowercase hex), for logs and checks.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current().cert[0])
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let name = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| LoadError::Read {
        path: name(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Read {
            path: name(),
            source,
        })?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(LoadError::TooLarge { path: name() });
    }
    Ok(bytes)
}

fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, LoadError> {
    let pem_error = |path: &Path, problem: String| LoadError::Pem {
        path: path.display().to_string(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(&read_bounded(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(cert, "no CERTIFICATE section".to_string()));
    }
    let private = PrivateKeyDer::from_pem_slice(&read_bounded(key)?)
        .map_err(|e| pem_error(key, format!("no usable private key: {e}")))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| LoadError::Pair {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh self-signed certificate and key, written to `dir`.
    fn write_pair(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (
            dir.join(format!("{tag}.crt")),
            dir.join(format!("{tag}.key")),
        );
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn reload_swaps_and_a_bad_file_keeps_the_old_certificate() {
        let dir = std::env::temp_dir().join(format!("packgate-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = write_pair(&dir, "a");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = CertResolver::load(&cert, &key, provider).unwrap();
        let first = resolver.fingerprint();
        let (cert_b, key_b) = write_pair(&dir, "b");
        std::fs::copy(&cert_b, &cert).unwrap();
        std::fs::copy(&key_b, &key).unwrap();
        let second = resolver.reload().unwrap();
        assert_ne!(first, second);
        assert_eq!(resolver.fingerprint(), second);
        // A key of another pair: refused, the served certificate stays.
        let (_, key_c) = write_pair(&dir, "c");
        std::fs::copy(&key_c, &key).unwrap();
        assert!(matches!(resolver.reload(), Err(LoadError::Pair { .. })));
        std::fs::write(&cert, "not pem").unwrap();
        assert!(matches!(resolver.reload(), Err(LoadError::Pem { .. })));
        std::fs::remove_file(&cert).unwrap();
        assert!(matches!(resolver.reload(), Err(LoadError::Read { .. })));
        assert_eq!(resolver.fingerprint(), second);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The bucket client: `object_store`'s S3 store built from `[object_store]`, with the
//! shared concurrency limit, the per-request deadline and the upload metrics.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload, RetryConfig,
};
use tokio::sync::Semaphore;

use super::budget::Budget;
use super::keys::Kind;
use crate::config::object_store::ObjectStoreConfig;

/// Why a request to the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store answered with an error (after the configured retries).
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// No answer within the deadline (retries included).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The store and what every upload shares.
#[derive(Debug)]
pub struct Client {
    store: Arc<dyn ObjectStore>,
    permits: Semaphore,
    budget: Arc<Budget>,
    deadline: Duration,
}

impl Client {
    /// The S3 store `config` describes (credentials from the file or the environment).
    pub fn from_config(config: &ObjectStoreConfig) -> Result<Client, StoreError> {
        let (key_id, secret) = config.credentials();
        let timeout = Duration::from_secs_f64(config.timeout);
        let backoff = Duration::from_secs_f64(config.retry_backoff);
        let mut builder = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(timeout.min(Duration::from_secs(5)))
                    .with_allow_http(config.allow_http),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: backoff,
                    max_backoff: backoff * 10,
                    base: 2.0,
                },
                max_retries: config.retries,
                retry_timeout: retry_window(config),
            });
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        if !key_id.is_empty() {
            builder = builder.with_access_key_id(key_id);
        }
        if !secret.is_empty() {
            builder = builder.with_secret_access_key(secret);
        }
        if let Ok(token) = std::env::var("AWS_SESSION_TOKEN") {
            builder = builder.with_token(token);
        }
        Ok(Client::with_store(Arc::new(builder.build()?), config))
    }

    /// A client over `store` (an in-memory one in tests) with `config`'s limits.
    pub fn with_store(store: Arc<dyn ObjectStore>, config: &ObjectStoreConfig) -> Client {
        Client {
            store,
            permits: Semaphore::new(config.concurrency),
            budget: Budget::new(config.queue_bytes),
            // Every try and backoff, plus one request's time for the last answer.
            deadline: retry_window(config) + Duration::from_secs_f64(config.timeout),
        }
    }

    /// The upload queue's byte budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Stores `payload` under `key`, counted under `kind`.
    pub async fn put(
        &self,
        key: &Path,
        kind: Kind,
        content_type: &'static str,
        payload: PutPayload,
    ) -> Result<(), StoreError> {
        let bytes = payload.content_length() as u64;
        let attributes = Attributes::from_iter([
            (Attribute::ContentType, content_type),
            (Attribute::CacheControl, kind.cache_control()),
        ]);
        let opts = PutOptions {
            attributes,
            ..Default::default()
        };
        let result = self
            .limited(self.store.put_opts(key, payload, opts))
            .await
            .map(|_| ());
        let label = kind.label();
        match &result {
            Ok(()) => {
                metrics::counter!("packgate_bucket_uploads_total", "kind" => label).increment(1);
                metrics::counter!("packgate_bucket_upload_bytes_total", "kind" => label)
                    .increment(bytes);
            }
            Err(_) => {
                metrics::counter!("packgate_bucket_upload_failures_total", "kind" => label)
                    .increment(1);
            }
        }
        result
    }

    /// Deletes `key` (a missing key is no error).
    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        let result = match self.limited(self.store.delete(key)).await {
            Err(StoreError::Store(object_store::Error::NotFound { .. })) => Ok(()),
            other => other,
        };
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("packgate_bucket_deletes_total", "outcome" => outcome).increment(1);
        result
    }

    /// Runs `request` holding one of the shared permits, within the deadline.
    async fn limited<T>(
        &self,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, StoreError> {
        // The semaphore is never closed.
        let _permit = self.permits.acquire().await;
        match tokio::time::timeout(self.deadline, request).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.deadline)),
        }
    }
}

/// How long `object_store` keeps retrying one request: every try and its backoff.
fn retry_window(config: &ObjectStoreConfig) -> Duration {
    let tries = config.retries as f64 + 1.0;
    Duration::from_secs_f64(tries * (config.timeout + 10.0 * config.retry_backoff))
}

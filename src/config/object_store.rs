//! Object storage output (`[object_store]`): every live stream's playlists and segments
//! copied to an S3-compatible bucket, which then serves viewers (or a CDN) without
//! packgate. Off by default.

use std::fmt;

use serde::Deserialize;

use super::error::ConfigError;

/// What becomes of objects whose segments left the playlists.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeletePolicy {
    /// Deleted once no playlist a player may still hold names them.
    #[default]
    Window,
    /// Left in place for a bucket lifecycle rule to expire.
    Lifecycle,
}

/// A credential: read from the file, never written to logs or `Debug` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// The bucket output.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// Upload the streams to the bucket.
    pub enabled: bool,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`; empty = AWS S3 in `region`.
    pub endpoint: String,
    /// Region the requests are signed for.
    pub region: String,
    /// Bucket name (must exist).
    pub bucket: String,
    /// Key prefix: `/{app}/{name}/index.m3u8` is stored as `{prefix}/{app}/{name}/index.m3u8`.
    pub prefix: String,
    /// Access key id; empty = the `AWS_ACCESS_KEY_ID` environment variable.
    pub access_key_id: Secret,
    /// Secret access key; empty = the `AWS_SECRET_ACCESS_KEY` environment variable.
    pub secret_access_key: Secret,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
    /// Path-style requests (`{endpoint}/{bucket}/{key}`), as most S3-compatible servers
    /// want; false = virtual-hosted style (`{bucket}.{endpoint}/{key}`).
    pub path_style: bool,
    /// `"window"`: delete segments once they left every playlist a player may hold;
    /// `"lifecycle"`: leave them to a bucket lifecycle rule.
    pub delete: DeletePolicy,
    /// Requests to the store in flight at once, all streams.
    pub concurrency: usize,
    /// Bytes of media waiting for or under upload at most, all streams; past that, objects
    /// are skipped (counted and logged) rather than held in memory.
    pub queue_bytes: usize,
    /// Seconds one request may take.
    pub timeout: f64,
    /// Retries of a failed request, with exponential backoff.
    pub retries: usize,
    /// First retry backoff, seconds (doubling up to ten times that).
    pub retry_backoff: f64,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        ObjectStoreConfig {
            enabled: false,
            endpoint: String::new(),
            region: "us-east-1".to_string(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: Secret::default(),
            secret_access_key: Secret::default(),
            allow_http: false,
            path_style: true,
            delete: DeletePolicy::Window,
            concurrency: 8,
            queue_bytes: 64 * 1024 * 1024,
            timeout: 10.0,
            retries: 3,
            retry_backoff: 0.2,
        }
    }
}

impl ObjectStoreConfig {
    /// The key prefix without leading or trailing slashes (empty: keys start at the app).
    pub fn clean_prefix(&self) -> &str {
        self.prefix.trim_matches('/')
    }

    /// The access key id and secret: from the file, else from the environment.
    pub fn credentials(&self) -> (String, String) {
        let pick = |s: &Secret, var: &str| {
            if s.0.is_empty() {
                std::env::var(var).unwrap_or_default()
            } else {
                s.0.clone()
            }
        };
        (
            pick(&self.access_key_id, "AWS_ACCESS_KEY_ID"),
            pick(&self.secret_access_key, "AWS_SECRET_ACCESS_KEY"),
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let bad = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        if self.bucket.is_empty() {
            return bad(
                "object_store.bucket",
                "must be set when enabled".to_string(),
            );
        }
        let endpoint = self.endpoint.as_str();
        if !endpoint.is_empty() {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return bad(
                    "object_store.endpoint",
                    format!("must be an http:// or https:// URL, got {endpoint:?}"),
                );
            }
            if endpoint.starts_with("http://") && !self.allow_http {
                return bad(
                    "object_store.endpoint",
                    "is plain http://: set object_store.allow_http = true".to_string(),
                );
            }
        }
        let prefix_ok = self
            .clean_prefix()
            .split('/')
            .all(|p| p != "." && p != ".." && (self.clean_prefix().is_empty() || !p.is_empty()));
        if !prefix_ok {
            return bad(
                "object_store.prefix",
                format!("{:?} has an empty, `.` or `..` segment", self.prefix),
            );
        }
        if !(1..=1024).contains(&self.concurrency) {
            return bad(
                "object_store.concurrency",
                format!("must be between 1 and 1024, got {}", self.concurrency),
            );
        }
        if self.queue_bytes == 0 {
            return bad("object_store.queue_bytes", "must be at least 1".to_string());
        }
        super::error::seconds("object_store.timeout", self.timeout, 600.0)?;
        if self.retries > 20 {
            return bad(
                "object_store.retries",
                format!("must be at most 20, got {}", self.retries),
            );
        }
        super::error::seconds("object_store.retry_backoff", self.retry_backoff, 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn off_by_default_and_checked_when_on() {
        assert!(!Config::default().object_store.enabled);
        let on = "[object_store]\nenabled = true\n";
        let err = Config::from_toml(on).unwrap_err();
        assert!(err.to_string().contains("object_store.bucket"), "{err}");
        let http = format!("{on}bucket = \"b\"\nendpoint = \"http://127.0.0.1:9000\"\n");
        let err = Config::from_toml(&http).unwrap_err();
        assert!(err.to_string().contains("allow_http"), "{err}");
        let c = Config::from_toml(&format!(
            "{http}allow_http = true\nprefix = \"/cdn/x/\"\ndelete = \"lifecycle\"\nsecret_access_key = \"s3cr3t\"\n"
        ))
        .unwrap();
        assert_eq!(c.object_store.clean_prefix(), "cdn/x");
        assert_eq!(c.object_store.delete, DeletePolicy::Lifecycle);
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "secrets stay out of Debug"
        );
        let err = Config::from_toml(&format!("{http}allow_http = true\nprefix = \"a//b\"\n"))
            .unwrap_err();
        assert!(err.to_string().contains("object_store.prefix"), "{err}");
        let err = Config::from_toml("[object_store]\ndelete = \"never\"\n").unwrap_err();
        assert!(err.to_string().contains("delete"), "{err}");
    }
}

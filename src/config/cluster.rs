//! Several nodes behind one name (`[cluster]`, off by default): each stream lives on the
//! node that ingests it, a Redis registry says which node that is, and any node answers a
//! viewer for any stream by proxying to, or redirecting to, the owner.

use serde::Deserialize;

use super::error::ConfigError;

/// How a node answers a request for a stream another node owns.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMode {
    /// Fetch from the owner and stream the answer back (viewers see one origin).
    #[default]
    Proxy,
    /// Answer 307 with the owner's URL (the owner must be reachable by viewers).
    Redirect,
}

/// The cluster registry and routing settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Join the cluster.
    pub enabled: bool,
    /// The shared registry: `redis://[:password@]host:port[/db]`.
    pub redis: String,
    /// This node's name in the registry; empty = hostname and HTTP port.
    pub node_id: String,
    /// This node's HTTP base URL as the other nodes (and, in redirect mode, viewers)
    /// reach it, e.g. `http://10.0.0.5:8080`.
    pub advertise: String,
    /// Seconds a registry entry lives unless refreshed: how long a dead node's streams
    /// stay claimed.
    pub ttl: f64,
    /// Seconds between refreshes of this node's entries; `None` = a third of `ttl`.
    pub refresh: Option<f64>,
    /// `proxy` or `redirect`.
    pub mode: ClusterMode,
    /// Seconds a registry lookup is remembered (spares Redis under many viewers).
    pub lookup_cache: f64,
    /// Seconds any one Redis call (connect included) may take.
    pub redis_timeout: f64,
    /// Seconds to connect to the owner when proxying.
    pub proxy_connect_timeout: f64,
    /// Seconds the owner may take to start answering, and at most between two body
    /// chunks (longer than an LL-HLS blocking reload's hold).
    pub proxy_timeout: f64,
    /// Bytes of one proxied response body at most; past that the response is cut.
    pub proxy_body_bytes: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            redis: "redis://127.0.0.1:6379".to_string(),
            node_id: String::new(),
            advertise: String::new(),
            ttl: 10.0,
            refresh: None,
            mode: ClusterMode::Proxy,
            lookup_cache: 1.0,
            redis_timeout: 0.5,
            proxy_connect_timeout: 2.0,
            proxy_timeout: 15.0,
            proxy_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Where Redis is, parsed from `cluster.redis`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisAddr {
    /// `host:port`.
    pub host_port: String,
    /// The AUTH password, if any.
    pub password: Option<String>,
    /// The database number (SELECT), 0 by default.
    pub db: u32,
}

impl RedisAddr {
    /// Parses `redis://[user:password@]host[:port][/db]`.
    pub fn parse(url: &str) -> Result<RedisAddr, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url:?} must start with redis://"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (host, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse()
                    .map_err(|_| format!("{url:?}: database {d:?} is not a number"))?,
            ),
            None => (rest, 0),
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let host_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        let password = auth
            .map(|a| a.split_once(':').map_or(a, |(_, p)| p).to_string())
            .filter(|p| !p.is_empty());
        Ok(RedisAddr {
            host_port,
            password,
            db,
        })
    }
}

impl ClusterConfig {
    /// The refresh interval in seconds.
    pub fn refresh_secs(&self) -> f64 {
        self.refresh.unwrap_or(self.ttl / 3.0)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        let secs = |key, v: f64, min: f64, max: f64| {
            if v.is_finite() && v >= min && v <= max {
                Ok(())
            } else {
                bad(
                    key,
                    format!("must be a number of seconds in [{min}, {max}], got {v}"),
                )
            }
        };
        secs("cluster.ttl", self.ttl, 1.0, 3_600.0)?;
        secs("cluster.refresh", self.refresh_secs(), 0.1, self.ttl / 2.0)?;
        secs("cluster.lookup_cache", self.lookup_cache, 0.0, 60.0)?;
        secs("cluster.redis_timeout", self.redis_timeout, 0.01, 60.0)?;
        secs(
            "cluster.proxy_connect_timeout",
            self.proxy_connect_timeout,
            0.01,
            60.0,
        )?;
        secs("cluster.proxy_timeout", self.proxy_timeout, 0.1, 600.0)?;
        if self.proxy_body_bytes == 0 {
            return bad("cluster.proxy_body_bytes", "must be at least 1".to_string());
        }
        if let Err(problem) = RedisAddr::parse(&self.redis) {
            return bad("cluster.redis", problem);
        }
        if self.enabled {
            let a = &self.advertise;
            let host = a.strip_prefix("http://").unwrap_or("");
            if host.is_empty() || host.contains('/') {
                return bad(
                    "cluster.advertise",
                    format!(
                        "must be this node's HTTP base URL like \"http://10.0.0.5:8080\" (no path), got {a:?}"
                    ),
                );
            }
        }
        if self
            .node_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad(
                "cluster.node_id",
                "must not contain spaces or control characters".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        let a = RedisAddr::parse("redis://127.0.0.1:7000").unwrap();
        assert_eq!(
            (a.host_port.as_str(), a.password, a.db),
            ("127.0.0.1:7000", None, 0)
        );
        let a = RedisAddr::parse("redis://:s3cret@cache/2").unwrap();
        assert_eq!(a.host_port, "cache:6379");
        assert_eq!((a.password.as_deref(), a.db), (Some("s3cret"), 2));
        assert!(RedisAddr::parse("http://x").is_err());
        assert!(RedisAddr::parse("redis://h/x").is_err());
    }

    #[test]
    fn enabled_needs_advertise() {
        let c = ClusterConfig {
            enabled: true,
            ..ClusterConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("cluster.advertise"), "{err}");
        let c = ClusterConfig {
            enabled: true,
            advertise: "http://10.0.0.5:8080".into(),
            ttl: 3.0,
            ..ClusterConfig::default()
        };
        c.validate().unwrap();
        assert_eq!(c.refresh_secs(), 1.0);
        let c = ClusterConfig {
            refresh: Some(9.0),
            ..c
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cluster.refresh"));
    }
}

//! The shared registry in Redis: `packgate:stream:{app}/{base}` → the owning node's id and
//! advertised URL, written with a TTL by the owner and refreshed while it publishes.
//! Claims and releases are compare-and-set Lua scripts, so a node never overwrites or
//! deletes another node's entry. Connections are pooled without a lock held across an
//! await (one is taken out, used, put back); after a failure calls fail fast for a
//! growing back-off, so a Redis outage costs viewers of local streams nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::resp::{Conn, RespError, Value};
use crate::config::cluster::RedisAddr;
use crate::lograte::LogRate;
use crate::rate_limited_warn;

/// Redis failures are logged at most once a second.
static REDIS_ERRORS: LogRate = LogRate::per_second();

/// Idle connections kept for reuse.
const POOL: usize = 8;
/// First and longest pause after a failed call.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Sets the key to ARGV[1] with TTL ARGV[2] ms unless another value holds it; returns 1,
/// or the other value.
const CLAIM: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == false or v == ARGV[1] then \
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
    return v";

/// Deletes the key only while it still holds ARGV[1].
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
      return redis.call('DEL', KEYS[1]) end return 0";

/// A node as the registry names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// `cluster.node_id`.
    pub node: String,
    /// `cluster.advertise`: its HTTP base URL.
    pub url: String,
}

impl Owner {
    /// This node's URL of `path?query`.
    pub fn url_of(&self, path: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{}{path}", self.url)
        } else {
            format!("{}{path}?{query}", self.url)
        }
    }
}

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The entry is ours (new or refreshed).
    Mine,
    /// Another node holds it.
    Theirs(Owner),
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The call itself failed.
    #[error(transparent)]
    Redis(#[from] RespError),
    /// A recent call failed: not retried before the back-off ends.
    #[error("redis unreachable; next try in {0:?}")]
    BackingOff(Duration),
    /// Redis answered something the scripts never return.
    #[error("unexpected registry reply {0:?}")]
    Unexpected(Value),
}

#[derive(Debug, Default)]
struct Backoff {
    until: Option<Instant>,
    delay: Duration,
}

/// The registry client.
#[derive(Debug)]
pub struct Registry {
    addr: RedisAddr,
    timeout: Duration,
    prefix: String,
    idle: Mutex<Vec<Conn>>,
    backoff: Mutex<Backoff>,
}

impl Registry {
    /// A client of the Redis at `addr`; connects on first use.
    pub fn new(addr: RedisAddr, timeout: Duration) -> Registry {
        Registry {
            addr,
            timeout,
            prefix: "packgate:stream:".to_string(),
            idle: Mutex::new(Vec::new()),
            backoff: Mutex::new(Backoff::default()),
        }
    }

    /// The Redis key of ladder `app/base`.
    pub fn key(&self, app: &str, base: &str) -> String {
        format!("{}{app}/{base}", self.prefix)
    }

    /// Claims `app/base` for `me` for `ttl`, or refreshes our claim.
    pub async fn claim(
        &self,
        app: &str,
        base: &str,
        me: &Owner,
        ttl: Duration,
    ) -> Result<Claim, RegistryError> {
        let value = encode(me);
        let ttl = ttl.as_millis().max(1).to_string();
        let key = self.key(app, base);
        let args: [&[u8]; 6] = [
            b"EVAL",
            CLAIM.as_bytes(),
            b"1",
            key.as_bytes(),
            value.as_bytes(),
            ttl.as_bytes(),
        ];
        match self.call(&args).await? {
            Value::Int(1) => Ok(Claim::Mine),
            Value::Bulk(other) => Ok(decode(&other).map_or(Claim::Mine, Claim::Theirs)),
            v => Err(RegistryError::Unexpected(v)),
        }
    }

    /// Deletes `app/base`'s entry if it is still `me`'s; true when it was deleted.
    pub async fn release(&self, app: &str, base: &str, me: &Owner) -> Result<bool, RegistryError> {
        let value = encode(me);
        let key = self.key(app, base);
        let args: [&[u8]; 5] = [
            b"EVAL",
            RELEASE.as_bytes(),
            b"1",
            key.as_bytes(),
            value.as_bytes(),
        ];
        match self.call(&args).await? {
            Value::Int(n) => Ok(n == 1),
            v => Err(RegistryError::Unexpected(v)),
        }
    }

    /// The owner of `app/base`, if any node publishes it.
    pub async fn lookup(&self, app: &str, base: &str) -> Result<Option<Owner>, RegistryError> {
        let key = self.key(app, base);
        match self.call(&[b"GET", key.as_bytes()]).await? {
            Value::Nil => Ok(None),
            Value::Bulk(v) => Ok(decode(&v)),
            v => Err(RegistryError::Unexpected(v)),
        }
    }

    /// One call on a pooled connection, with the back-off.
    async fn call(&self, args: &[&[u8]]) -> Result<Value, RegistryError> {
        if let Some(until) = self.lock_backoff().until {
            let now = Instant::now();
            if until > now {
                return Err(RegistryError::BackingOff(until - now));
            }
        }
        let start = Instant::now();
        let pooled = self.lock_idle().pop();
        let result = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => Conn::connect(&self.addr, self.timeout).await?,
            };
            let v = conn.call(args).await?;
            Ok::<_, RespError>((conn, v))
        }
        .await;
        metrics::histogram!("packgate_cluster_redis_seconds").record(start.elapsed().as_secs_f64());
        match result {
            Ok((conn, v)) => {
                let mut idle = self.lock_idle();
                if idle.len() < POOL {
                    idle.push(conn);
                }
                drop(idle);
                *self.lock_backoff() = Backoff::default();
                Ok(v)
            }
            Err(e) => {
                metrics::counter!("packgate_cluster_redis_errors_total").increment(1);
                // A server error (a script bug) is not an outage; anything else may be.
                if !matches!(e, RespError::Server(_)) {
                    let mut b = self.lock_backoff();
                    b.delay = (b.delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                    b.until = Some(Instant::now() + b.delay);
                    let delay = b.delay;
                    drop(b);
                    self.lock_idle().clear();
                    rate_limited_warn!(REDIS_ERRORS, "redis_unreachable", error = %e, redis = %self.addr.host_port, retry_in = ?delay, "cluster registry unreachable: serving local streams only");
                }
                Err(e.into())
            }
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn encode(owner: &Owner) -> String {
    serde_json::to_string(owner).unwrap_or_default()
}

fn decode(value: &[u8]) -> Option<Owner> {
    serde_json::from_slice(value).ok()
}

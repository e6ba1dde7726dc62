//! A real nginx proxy_cache in front of packgate, as a CDN edge would be: run in the
//! foreground from a generated config in its own temporary directory (cache, temp files,
//! logs), on a free loopback port, killed when dropped. Its access log records, per
//! request, whether the cache answered and whether the origin was asked.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{poll, tools, Proc};

/// The `location` block of the CDN config (also the README's "Behind a CDN" snippet):
/// the cache key keeps the query string (`_HLS_msn`/`_HLS_part` blocking reloads are
/// distinct objects), concurrent misses are collapsed into one origin request whose lock
/// outlasts a blocking reload's hold, origin Cache-Control decides lifetimes, and origin
/// connections are kept alive.
pub const LOCATION: &str = r#"    location / {
        proxy_pass http://packgate;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_cache packgate;
        proxy_cache_key $scheme$proxy_host$request_uri;
        proxy_cache_lock on;
        proxy_cache_lock_timeout 10s;
        proxy_cache_lock_age 10s;
        proxy_read_timeout 20s;
        add_header X-Cache-Status $upstream_cache_status always;
    }"#;

/// A running nginx.
pub struct Nginx {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its directory (config, cache, logs).
    pub dir: PathBuf,
    proc: Proc,
}

/// The whole config for an nginx in `dir` listening on `port`, caching `origin`.
pub fn config(dir: &std::path::Path, port: u16, origin: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format cdn '$msec\t$upstream_cache_status\t$status\t$request_uri\t$upstream_addr\t$request_time';
    access_log {d}/access.log cdn;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=packgate:16m max_size=1g inactive=10m use_temp_path=off;
    upstream packgate {{
        server {origin};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
{LOCATION}
    }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx in front of `origin`; panics (naming the install step) without nginx.
    pub fn start(origin: SocketAddr) -> Nginx {
        let bin = tools::nginx();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("packgate-nginx-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nginx dir");
        // Workers run as an unprivileged user when the test runs as root.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, port, origin)).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let mut proc = Proc(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let up = poll(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        if up.is_none() {
            let exited = proc.wait_for(Duration::from_millis(100));
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx did not start (exit {exited:?}):\n{log}");
        }
        Nginx { addr, dir, proc }
    }

    /// The access log so far, one entry per request.
    pub fn log(&self) -> Vec<LogLine> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines().filter_map(LogLine::parse).collect()
    }

    /// The error log, for failure messages.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Quick shutdown of master and workers, then the directory.
        self.proc.signal("TERM");
        let _ = self.proc.wait_for(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One access-log entry.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// `$upstream_cache_status`: HIT, MISS, EXPIRED, UPDATING, … or `-`.
    pub cache: String,
    /// Response status.
    pub status: u16,
    /// `$request_uri` (path and query).
    pub uri: String,
    /// True when the origin was asked (`$upstream_addr` is set).
    pub origin: bool,
}

impl LogLine {
    fn parse(line: &str) -> Option<LogLine> {
        let f: Vec<&str> = line.split('\t').collect();
        Some(LogLine {
            cache: f.get(1)?.to_string(),
            status: f.get(2)?.parse().ok()?,
            uri: f.get(3)?.to_string(),
            origin: f.get(4).is_some_and(|a| *a != "-"),
        })
    }

    /// The kind of object: `part`, `segment`, `init`, `blocking` (a playlist with
    /// `_HLS_msn`), `playlist`, `mpd` or `other`.
    pub fn kind(&self) -> &'static str {
        let (path, query) = self.uri.split_once('?').unwrap_or((&self.uri, ""));
        let file = path.rsplit('/').next().unwrap_or("");
        if file.starts_with("part-") {
            "part"
        } else if file.starts_with("init-") {
            "init"
        } else if file.ends_with(".m4s") || file.ends_with(".ts") {
            "segment"
        } else if file.ends_with(".m3u8") && query.contains("_HLS_msn") {
            "blocking"
        } else if file.ends_with(".m3u8") {
            "playlist"
        } else if file.ends_with(".mpd") {
            "mpd"
        } else {
            "other"
        }
    }

    /// True when the cache answered without asking the origin.
    pub fn hit(&self) -> bool {
        !self.origin && matches!(self.cache.as_str(), "HIT" | "UPDATING" | "STALE")
    }
}

/// What the log says about one kind of object.
#[derive(Debug, Default)]
pub struct KindReport {
    /// Requests.
    pub requests: usize,
    /// Answered by the cache alone.
    pub hits: usize,
    /// Distinct URLs.
    pub objects: usize,
    /// Origin requests, per URL: the most any URL took.
    pub max_origin_per_object: usize,
    /// Origin requests in all.
    pub origin_requests: usize,
    /// Requests answered with a status other than 200 (or 304).
    pub errors: usize,
}

impl KindReport {
    /// Hits / requests.
    pub fn hit_ratio(&self) -> f64 {
        self.hits as f64 / self.requests.max(1) as f64
    }
}

/// The log summed up per kind of object.
pub fn report(log: &[LogLine]) -> BTreeMap<&'static str, KindReport> {
    let mut per_url: BTreeMap<(&'static str, &str), usize> = BTreeMap::new();
    let mut out: BTreeMap<&'static str, KindReport> = BTreeMap::new();
    for l in log {
        let k = l.kind();
        let r = out.entry(k).or_default();
        r.requests += 1;
        r.hits += usize::from(l.hit());
        r.errors += usize::from(!matches!(l.status, 200 | 304));
        let n = per_url.entry((k, l.uri.as_str())).or_default();
        if l.origin {
            *n += 1;
            r.origin_requests += 1;
        }
    }
    for ((k, _), n) in per_url {
        let r = out.entry(k).or_default();
        r.objects += 1;
        r.max_origin_per_object = r.max_origin_per_object.max(n);
    }
    out
}

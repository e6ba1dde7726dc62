//! Configuration: every default lives here, read from TOML with `serde`, validated at start.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and every
//! validation message names the key it is about, so a bad file fails fast with exit code 2.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub mod auth;
pub mod cluster;
pub mod error;
pub mod ladder;
pub mod limits;
pub mod object_store;
pub mod record;
pub mod tls;

pub use auth::{AppAuthConfig, AuthConfig, Reconnect, WebhookDefault, WebhookUrl};
pub use error::ConfigError;
pub use ladder::{AppLadderConfig, LadderConfig};
pub use limits::LimitsConfig;
pub use record::{ApiConfig, AppRecordConfig, RecordConfig};
pub use tls::TlsConfig;

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// RTMP ingest.
    pub rtmp: RtmpConfig,
    /// HTTP output.
    pub http: HttpConfig,
    /// Segmenting and the playlist window.
    pub segment: SegmentConfig,
    /// Ladder grouping of stream names.
    pub ladder: LadderConfig,
    /// Which outputs are produced.
    pub outputs: OutputConfig,
    /// Low-Latency HLS parts and low-latency DASH chunks.
    pub low_latency: LowLatencyConfig,
    /// Byte budgets for what a client can make the server hold.
    pub limits: LimitsConfig,
    /// Who may publish (off by default).
    pub auth: AuthConfig,
    /// Recording to disk and VOD (off unless an app enables it or the API starts it).
    pub record: RecordConfig,
    /// The JSON API's mutating calls.
    pub api: ApiConfig,
    /// Several nodes sharing a Redis registry (off by default).
    pub cluster: cluster::ClusterConfig,
    /// Copies of the live streams in an S3-compatible bucket (off by default).
    pub object_store: object_store::ObjectStoreConfig,
    /// RTMPS and HTTPS (off by default).
    pub tls: TlsConfig,
}

/// Low-latency output: the segmenter also cuts parts, which LL-HLS lists as EXT-X-PART and
/// LL-DASH streams as CMAF chunks of the segment in progress. Players without LL support
/// ignore the extra tags and play the whole segments.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LowLatencyConfig {
    /// Cut parts and publish the LL-HLS / LL-DASH signalling.
    pub enabled: bool,
    /// Part target duration in seconds (EXT-X-PART-INF PART-TARGET); no part is longer.
    pub part_target: f64,
    /// PART-HOLD-BACK in part targets: how far behind the live edge LL-HLS players
    /// start and aim (RFC 8216bis: at least 2; 3 recommended).
    pub part_hold_back: f64,
    /// Live latency low-latency DASH players aim for (MPD ServiceDescription), seconds.
    pub dash_target_latency: f64,
}

impl Default for LowLatencyConfig {
    fn default() -> Self {
        LowLatencyConfig {
            enabled: true,
            part_target: 0.2,
            part_hold_back: 3.0,
            dash_target_latency: 1.0,
        }
    }
}

impl LowLatencyConfig {
    /// The part target, or `None` when low latency is off.
    pub fn part_target(&self) -> Option<Duration> {
        self.enabled
            .then(|| Duration::from_secs_f64(self.part_target))
    }
}

/// Which outputs are produced for every stream. Each is made once per segment, whatever
/// the number of viewers; DASH and CMAF HLS share the same CMAF segments.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// HLS with CMAF (fMP4) segments: `/{app}/{name}/index.m3u8`.
    pub hls_cmaf: bool,
    /// HLS with MPEG-TS segments: `/{app}/{name}/ts.m3u8`.
    pub hls_ts: bool,
    /// DASH: `/{app}/{name}/index.mpd`.
    pub dash: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            hls_cmaf: true,
            hls_ts: true,
            dash: true,
        }
    }
}

impl OutputConfig {
    /// True when CMAF segments are needed (for CMAF HLS or DASH).
    pub fn cmaf(&self) -> bool {
        self.hls_cmaf || self.dash
    }
}

/// RTMP ingest settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpConfig {
    /// Address the RTMP listener binds.
    pub listen: SocketAddr,
    /// Chunk size we announce and send with (RTMP's default of 128 costs CPU on both ends).
    pub chunk_size: u32,
    /// Connections accepted at once; more are refused so a flood cannot exhaust memory.
    pub max_connections: usize,
    /// Seconds without media (audio/video messages) from a publishing client, or without
    /// any progress from one that has not published yet, before its connection is closed.
    /// Keep-alive trickles (pings, acknowledgements) do not reset it.
    pub idle_timeout: f64,
    /// Seconds from accept to an accepted publish (handshake, connect, publish); a
    /// connection that has not published by then is closed.
    pub publish_timeout: f64,
    /// Seconds a write to a client may stay blocked before the connection is closed.
    pub write_timeout: f64,
    /// Connections accepted at once from one IP address; 0 = no per-IP cap.
    pub max_connections_per_ip: usize,
    /// Input bitrate (bits/s, all tracks of a rendition) above which the ingest
    /// diagnostics warn `bitrate_over_limit`; 0 = no limit.
    pub warn_bitrate: u64,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            chunk_size: 4096,
            max_connections: 1000,
            idle_timeout: 30.0,
            publish_timeout: 10.0,
            write_timeout: 10.0,
            max_connections_per_ip: 32,
            warn_bitrate: 0,
        }
    }
}

/// HTTP output settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP listener binds.
    pub listen: SocketAddr,
    /// Value of `Access-Control-Allow-Origin`; empty disables CORS headers.
    pub cors_origin: String,
    /// Seconds a playlist request for a stream that is publishing but has no segment yet
    /// waits for the first one before giving up with 503.
    pub startup_wait: f64,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// Connections served at once from one IP address; 0 = no per-IP cap.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a complete request head (slowloris guard).
    pub head_timeout: f64,
    /// Seconds a keep-alive connection may wait for its next request.
    pub keepalive_timeout: f64,
    /// Seconds a response write may stay blocked before the connection is closed.
    pub write_timeout: f64,
    /// Seconds SIGTERM waits for in-flight and held requests before exiting.
    pub drain_timeout: f64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            cors_origin: "*".to_string(),
            startup_wait: 6.0,
            max_connections: 8192,
            max_connections_per_ip: 1024,
            head_timeout: 10.0,
            keepalive_timeout: 60.0,
            write_timeout: 10.0,
            drain_timeout: 5.0,
        }
    }
}

/// Segmenter settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentConfig {
    /// Target segment duration in seconds: a segment is cut at the first keyframe at or
    /// after this much media time.
    pub target_duration: f64,
    /// Segments listed in a live playlist (and kept in memory).
    pub window: usize,
    /// Seconds an ended stream's playlists stay served before removal. While an encoder
    /// that dropped its connection may still come back, playlists stay live.
    pub linger: f64,
    /// Longest wait for a keyframe, seconds: a segment open this long is closed anyway.
    /// `None` means three target durations.
    pub max_keyframe_interval: Option<f64>,
    /// A step between consecutive timestamps larger than this many seconds (either way)
    /// is a discontinuity: the stream is re-anchored, not given a frame that long.
    pub timestamp_jump: f64,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            target_duration: 2.0,
            window: 6,
            linger: 60.0,
            max_keyframe_interval: None,
            timestamp_jump: 3.0,
        }
    }
}

impl SegmentConfig {
    /// The target duration as a `Duration`.
    pub fn target(&self) -> Duration {
        Duration::from_secs_f64(self.target_duration)
    }

    /// The keyframe wait cap: `max_keyframe_interval`, or three target durations.
    pub fn keyframe_cap(&self) -> Duration {
        Duration::from_secs_f64(
            self.max_keyframe_interval
                .unwrap_or(3.0 * self.target_duration),
        )
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use error::seconds as positive;
        positive(
            "segment.target_duration",
            self.segment.target_duration,
            60.0,
        )?;
        positive("segment.linger", self.segment.linger, 86_400.0)?;
        positive("rtmp.idle_timeout", self.rtmp.idle_timeout, 3_600.0)?;
        positive("rtmp.publish_timeout", self.rtmp.publish_timeout, 3_600.0)?;
        positive("rtmp.write_timeout", self.rtmp.write_timeout, 3_600.0)?;
        positive("http.startup_wait", self.http.startup_wait, 600.0)?;
        positive("http.head_timeout", self.http.head_timeout, 3_600.0)?;
        positive(
            "http.keepalive_timeout",
            self.http.keepalive_timeout,
            3_600.0,
        )?;
        positive("http.write_timeout", self.http.write_timeout, 3_600.0)?;
        positive("http.drain_timeout", self.http.drain_timeout, 3_600.0)?;
        positive(
            "segment.timestamp_jump",
            self.segment.timestamp_jump,
            86_400.0,
        )?;
        if self.segment.timestamp_jump < 1.0 {
            return Err(ConfigError::Invalid {
                key: "segment.timestamp_jump",
                problem: format!(
                    "must be at least 1 s (audio may run ahead of video by a second), got {}",
                    self.segment.timestamp_jump
                ),
            });
        }
        if let Some(cap) = self.segment.max_keyframe_interval {
            positive("segment.max_keyframe_interval", cap, 3_600.0)?;
            if cap < self.segment.target_duration {
                return Err(ConfigError::Invalid {
                    key: "segment.max_keyframe_interval",
                    problem: format!(
                        "must be at least segment.target_duration ({} s), got {cap}",
                        self.segment.target_duration
                    ),
                });
            }
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "http.max_connections",
                problem: "must be at least 1".to_string(),
            });
        }
        self.limits.validate()?;
        self.record.validate()?;
        self.cluster.validate()?;
        self.object_store.validate()?;
        self.tls.validate()?;
        self.auth.validate(&self.ladder)?;
        positive(
            "low_latency.dash_target_latency",
            self.low_latency.dash_target_latency,
            60.0,
        )?;
        if !(self.low_latency.part_hold_back.is_finite()
            && (2.0..=10.0).contains(&self.low_latency.part_hold_back))
        {
            return Err(ConfigError::Invalid {
                key: "low_latency.part_hold_back",
                problem: format!(
                    "must be between 2 and 10 part targets (RFC 8216bis requires at least 2), got {}",
                    self.low_latency.part_hold_back
                ),
            });
        }
        let max_part = self.segment.target_duration / 2.0;
        if !(self.low_latency.part_target.is_finite()
            && (0.05..=max_part).contains(&self.low_latency.part_target))
        {
            return Err(ConfigError::Invalid {
                key: "low_latency.part_target",
                problem: format!(
                    "must be between 0.05 s and half the segment target ({max_part} s), got {}",
                    self.low_latency.part_target
                ),
            });
        }
        if !(2..=1000).contains(&self.segment.window) {
            return Err(ConfigError::Invalid {
                key: "segment.window",
                problem: format!(
                    "must be between 2 and 1000 segments, got {}",
                    self.segment.window
                ),
            });
        }
        if !(128..=65_536).contains(&self.rtmp.chunk_size) {
            return Err(ConfigError::Invalid {
                key: "rtmp.chunk_size",
                problem: format!(
                    "must be between 128 and 65536 bytes, got {}",
                    self.rtmp.chunk_size
                ),
            });
        }
        if self.rtmp.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "rtmp.max_connections",
                problem: "must be at least 1".to_string(),
            });
        }
        if !(self.outputs.hls_cmaf || self.outputs.hls_ts || self.outputs.dash) {
            return Err(ConfigError::Invalid {
                key: "outputs",
                problem: "at least one of hls_cmaf, hls_ts, dash must be true".to_string(),
            });
        }
        let per_app = self.ladder.apps.values().flat_map(|a| a.labels.iter());
        for label in self.ladder.labels.iter().chain(per_app) {
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ConfigError::Invalid {
                    key: "ladder.labels",
                    problem: format!(
                        "label {label:?} must be non-empty ASCII letters, digits or '-'"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The configuration as TOML, for `--print-config` and the README.
    pub fn defaults_toml() -> &'static str {
        DEFAULTS_TOML
    }
}

/// The built-in defaults, written out; a test keeps this text equal to `Config::default()`.
const DEFAULTS_TOML: &str = r#"[rtmp]
listen = "0.0.0.0:1935"
chunk_size = 4096
max_connections = 1000
idle_timeout = 30.0
publish_timeout = 10.0
write_timeout = 10.0
max_connections_per_ip = 32
warn_bitrate = 0

[http]
listen = "0.0.0.0:8080"
cors_origin = "*"
startup_wait = 6.0
max_connections = 8192
max_connections_per_ip = 1024
head_timeout = 10.0
keepalive_timeout = 60.0
write_timeout = 10.0
drain_timeout = 5.0

[segment]
target_duration = 2.0
window = 6
linger = 60.0

timestamp_jump = 3.0
[ladder]
labels = ["src", "hi", "mid", "low"]

[outputs]
hls_cmaf = true
hls_ts = true
dash = true

[low_latency]
enabled = true
part_target = 0.2
part_hold_back = 3.0
dash_target_latency = 1.0

[limits]
held_bytes = 16777216
config_record_bytes = 65536
init_versions = 4
message_bytes = 8388608
unfinished_bytes = 16777216

[record]
dir = "recordings"
queue = 256
queue_bytes = 67108864
hook = ""
hook_timeout = 5.0
dvr_dir = "dvr"
dvr_disk_bytes = 10737418240

[api]
token = ""

[cluster]
enabled = false
redis = "redis://127.0.0.1:6379"
node_id = ""
advertise = ""
ttl = 10.0
mode = "proxy"
lookup_cache = 1.0
redis_timeout = 0.5
proxy_connect_timeout = 2.0
proxy_timeout = 15.0
proxy_body_bytes = 67108864
[object_store]
enabled = false
endpoint = ""
region = "us-east-1"
bucket = ""
prefix = ""
access_key_id = ""
secret_access_key = ""
allow_http = false
path_style = true
delete = "window"
concurrency = 8
queue_bytes = 67108864
timeout = 10.0
retries = 3
retry_backoff = 0.2
[tls]
cert = ""
key = ""
# rtmps_listen = "0.0.0.0:1936"
# https_listen = "0.0.0.0:8443"
handshake_timeout = 10.0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_text_matches_defaults() {
        assert_eq!(Config::from_toml(DEFAULTS_TOML).unwrap(), Config::default());
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = Config::from_toml("[segment]\ntarget_duration = 4\n").unwrap();
        assert_eq!(c.segment.target_duration, 4.0);
        assert_eq!(c.segment.window, 6);
        assert_eq!(c.http, HttpConfig::default());
    }

    #[test]
    fn ladder_labels_per_app() {
        let c = Config::from_toml("[ladder.apps.tv]\nlabels = [\"hd\", \"sd\"]\n").unwrap();
        assert_eq!(c.ladder.labels_for("tv"), ["hd", "sd"]);
        assert_eq!(c.ladder.labels_for("live"), ["src", "hi", "mid", "low"]);
        let err = Config::from_toml("[ladder.apps.tv]\nlabels = [\"a b\"]\n").unwrap_err();
        assert!(err.to_string().contains("ladder.labels"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[segment]\ntarget_duraton = 4\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("target_duraton"), "{text}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::from_toml("[rtmp]\nlisten = 5\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_key() {
        let err = Config::from_toml("[segment]\nwindow = 1\n").unwrap_err();
        assert!(err.to_string().contains("segment.window"), "{err}");
        let err = Config::from_toml("[outputs]\nhls_cmaf = false\nhls_ts = false\ndash = false\n")
            .unwrap_err();
        assert!(err.to_string().contains("outputs"), "{err}");
        let err = Config::from_toml("[segment]\ntarget_duration = -2\n").unwrap_err();
        assert!(err.to_string().contains("segment.target_duration"), "{err}");
        let err = Config::from_toml("[low_latency]\npart_target = 1.5\n").unwrap_err();
        assert!(err.to_string().contains("low_latency.part_target"), "{err}");
        let err = Config::from_toml("[record]\nhook = \"ftp://x\"\n").unwrap_err();
        assert!(err.to_string().contains("record.hook"), "{err}");
    }

    #[test]
    fn recording_per_app() {
        let c = Config::from_toml("[record.apps.tv]\nenabled = true\n").unwrap();
        assert!(c.record.app_enabled("tv"));
        assert!(!c.record.app_enabled("live"));
        let c = Config::from_toml("[record.apps.tv]\ndvr_window = \"2h\"\n").unwrap();
        assert_eq!(c.record.dvr_secs("tv"), Some(7200.0));
        assert!(!c.record.app_enabled("tv") && c.record.any_dvr());
        assert_eq!(record::parse_duration("90m"), Ok(5400.0));
        assert_eq!(record::parse_duration("45"), Ok(45.0));
        let err = Config::from_toml("[record.apps.tv]\ndvr_window = \"2 days\"\n").unwrap_err();
        assert!(err.to_string().contains("dvr_window"), "{err}");
    }
}

//! Recording and VOD settings (`[record]`), and the bearer token of the mutating API
//! calls (`[api]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::auth::WebhookUrl;
use super::error::ConfigError;

/// Recording to disk: which apps are recorded from the first segment, where, and who is
/// told when a recording file is complete.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Directory recordings go to: `{dir}/{app}/{name}/{start}/…`.
    pub dir: PathBuf,
    /// Segments waiting for the disk writer, all streams together; past that, segments are
    /// dropped from the recording (counted and logged), never held up in the live path.
    pub queue: usize,
    /// Bytes of segments waiting for the disk writer at most, all streams; past that,
    /// segments are dropped from the recording like a full queue.
    pub queue_bytes: usize,
    /// `http://` URL POSTed a JSON body when a recording file is complete; empty = none.
    pub hook: String,
    /// Seconds a hook call may take.
    pub hook_timeout: f64,
    /// Per-app recording and DVR (`[record.apps.live] enabled = true`, `dvr_window = "2h"`).
    pub apps: BTreeMap<String, AppRecordConfig>,
    /// Directory of the DVR disk tier (a cache, emptied at start).
    pub dvr_dir: PathBuf,
    /// Bytes the DVR disk tier holds at most, all streams; past that the oldest spilled
    /// segments are deleted first.
    pub dvr_disk_bytes: u64,
}

/// Recording for one app.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AppRecordConfig {
    /// Record every stream of the app from its first segment.
    pub enabled: bool,
    /// DVR window of the app's live playlists and MPDs, e.g. `"2h"`, `"90m"`, `"600s"`
    /// (a bare number is seconds); empty = off. Segments past the live window's worth
    /// (`segment.window`) live on disk in `record.dvr_dir`.
    pub dvr_window: String,
}

/// Parses `"2h"`, `"90m"`, `"30s"` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, 'h')) => (&t[..i], 3600.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 's')) => (&t[..i], 1.0),
        _ => (t, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v * unit),
        _ => Err(format!(
            "{text:?} is not a duration like \"2h\", \"90m\" or \"600s\""
        )),
    }
}

impl AppRecordConfig {
    /// The DVR window in seconds, when on (validated at start).
    pub fn dvr_secs(&self) -> Option<f64> {
        if self.dvr_window.is_empty() {
            return None;
        }
        parse_duration(&self.dvr_window).ok()
    }
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            dir: PathBuf::from("recordings"),
            queue: 256,
            queue_bytes: 64 * 1024 * 1024,
            hook: String::new(),
            hook_timeout: 5.0,
            apps: BTreeMap::new(),
            dvr_dir: PathBuf::from("dvr"),
            dvr_disk_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

impl RecordConfig {
    /// True when `app` is recorded by configuration.
    pub fn app_enabled(&self, app: &str) -> bool {
        self.apps.get(app).is_some_and(|a| a.enabled)
    }

    /// The DVR window of `app` in seconds, when on.
    pub fn dvr_secs(&self, app: &str) -> Option<f64> {
        self.apps.get(app).and_then(AppRecordConfig::dvr_secs)
    }

    /// True when some app has a DVR window.
    pub fn any_dvr(&self) -> bool {
        self.apps.values().any(|a| a.dvr_secs().is_some())
    }

    /// The hook's address, when one is configured.
    pub fn hook_url(&self) -> Option<WebhookUrl> {
        WebhookUrl::parse(&self.hook).ok()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        if !(1..=1_000_000).contains(&self.queue) {
            return bad(
                "record.queue",
                format!("must be between 1 and 1000000, got {}", self.queue),
            );
        }
        if self.queue_bytes == 0 {
            return bad("record.queue_bytes", "must be at least 1".to_string());
        }
        if !self.hook.is_empty() {
            if let Err(problem) = WebhookUrl::parse(&self.hook) {
                return bad("record.hook", problem);
            }
        }
        for a in self.apps.values().filter(|a| !a.dvr_window.is_empty()) {
            match parse_duration(&a.dvr_window) {
                Ok(secs) if secs <= 86_400.0 => {}
                Ok(secs) => {
                    return bad(
                        "record.apps.<app>.dvr_window",
                        format!("at most 24h, got {secs} s"),
                    )
                }
                Err(problem) => return bad("record.apps.<app>.dvr_window", problem),
            }
        }
        if self.any_dvr() && self.dir.starts_with(&self.dvr_dir) {
            return bad(
                "record.dvr_dir",
                "must not hold record.dir (the DVR tier is a cache)".to_string(),
            );
        }
        if self.dvr_disk_bytes == 0 {
            return bad("record.dvr_disk_bytes", "must be at least 1".to_string());
        }
        super::error::seconds("record.hook_timeout", self.hook_timeout, 60.0)
    }
}

/// The JSON API's mutating calls (recording start/stop).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer token the mutating calls need (`Authorization: Bearer …`); empty = those
    /// calls are refused.
    pub token: String,
}

//! Recording and VOD settings (`[record]`), and the bearer token of the mutating API
//! calls (`[api]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, WebhookUrl};

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
    /// `http://` URL POSTed a JSON body when a recording file is complete; empty = none.
    pub hook: String,
    /// Seconds a hook call may take.
    pub hook_timeout: f64,
    /// Per-app recording (`[record.apps.live] enabled = true`).
    pub apps: BTreeMap<String, AppRecordConfig>,
}

/// Recording for one app.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AppRecordConfig {
    /// Record every stream of the app from its first segment.
    pub enabled: bool,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            dir: PathBuf::from("recordings"),
            queue: 256,
            hook: String::new(),
            hook_timeout: 5.0,
            apps: BTreeMap::new(),
        }
    }
}

impl RecordConfig {
    /// True when `app` is recorded by configuration.
    pub fn app_enabled(&self, app: &str) -> bool {
        self.apps.get(app).is_some_and(|a| a.enabled)
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
        if !self.hook.is_empty() {
            if let Err(problem) = WebhookUrl::parse(&self.hook) {
                return bad("record.hook", problem);
            }
        }
        let t = self.hook_timeout;
        if !(t.is_finite() && t > 0.0 && t <= 60.0) {
            return bad(
                "record.hook_timeout",
                format!("must be a number of seconds in (0, 60], got {t}"),
            );
        }
        Ok(())
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

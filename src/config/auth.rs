//! `[auth]`: who may publish. Off by default (anyone may publish any name).
//!
//! Each app gets its own section, `[auth.apps.live]`, with any of three mechanisms: static
//! stream keys per ladder, HMAC-signed expiring tokens, and an HTTP webhook. An app without
//! a section, or with a section that configures none of them, is open.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ConfigError;
use super::ladder::LadderConfig;

/// Publish authorisation settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Per-app settings, by app name (`[auth.apps.live]`).
    pub apps: BTreeMap<String, AppAuthConfig>,
}

/// What happens when a name is published while it is still held by another connection.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reconnect {
    /// The newcomer takes the name over at once if it proves the same credential (or, in
    /// an open app, comes from the same IP address); the old connection is closed.
    #[default]
    Takeover,
    /// The newcomer is refused while the old connection lives.
    Reject,
}

/// What a publish gets when the webhook cannot be asked (unreachable, timeout, garbage).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookDefault {
    /// Refuse the publish.
    #[default]
    Deny,
    /// Let it publish (as if unauthenticated: a takeover then needs the same IP).
    Allow,
}

/// Authorisation for one app. Static keys and tokens are alternatives (either one valid
/// credential suffices); the webhook, when set, must also allow the publish.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AppAuthConfig {
    /// Stream key per ladder base: `show = "key1"` lets `show` and every `show_<label>`
    /// publish with `?key=key1`.
    pub keys: BTreeMap<String, String>,
    /// Secret for HMAC-SHA256 tokens: `?expires=UNIX&token=HEX`, where the token signs
    /// `{app}/{base}/{expires}`.
    pub token_secret: Option<String>,
    /// `http://host:port/path` called (POST, JSON) on publish and on unpublish.
    pub webhook: Option<String>,
    /// Seconds the webhook has to answer.
    pub webhook_timeout: f64,
    /// Decision when the webhook cannot be asked.
    pub webhook_default: WebhookDefault,
    /// Publishing a name that is still held: take it over or refuse.
    pub reconnect: Reconnect,
}

impl Default for AppAuthConfig {
    fn default() -> Self {
        AppAuthConfig {
            keys: BTreeMap::new(),
            token_secret: None,
            webhook: None,
            webhook_timeout: 2.0,
            webhook_default: WebhookDefault::Deny,
            reconnect: Reconnect::Takeover,
        }
    }
}

impl AppAuthConfig {
    /// True when a publisher must present a key or a token.
    pub fn needs_credential(&self) -> bool {
        !self.keys.is_empty() || self.token_secret.is_some()
    }

    /// True when any mechanism is configured, i.e. the app is not open.
    pub fn enabled(&self) -> bool {
        self.needs_credential() || self.webhook.is_some()
    }
}

impl AuthConfig {
    /// The settings of `app`, if it has a section.
    pub fn app(&self, app: &str) -> Option<&AppAuthConfig> {
        self.apps.get(app)
    }

    /// Checks every app section; `ladder` gives each app's labels, so a key given for a
    /// rendition name (which would never match) is reported.
    pub fn validate(&self, ladder: &LadderConfig) -> Result<(), ConfigError> {
        for (app, a) in &self.apps {
            let bad = |key: &'static str, problem: String| {
                Err(ConfigError::Invalid {
                    key,
                    problem: format!("in [auth.apps.{app}]: {problem}"),
                })
            };
            if !plain_name(app) {
                return bad(
                    "auth.apps",
                    format!("app name {app:?} must be ASCII letters, digits, '_', '-' or '.'"),
                );
            }
            for (base, key) in &a.keys {
                if !plain_name(base) {
                    return bad(
                        "auth.apps.<app>.keys",
                        format!(
                            "ladder name {base:?} must be ASCII letters, digits, '_', '-' or '.'"
                        ),
                    );
                }
                if let Some(label) = rendition_label(base, ladder.labels_for(app)) {
                    return bad(
                        "auth.apps.<app>.keys",
                        format!("{base:?} is rendition {label:?} of a ladder; keys are per ladder base, give it for {:?}",
                            &base[..base.len() - label.len() - 1]),
                    );
                }
                if key.is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
                    return bad(
                        "auth.apps.<app>.keys",
                        format!(
                            "the key of {base:?} must be 1 to 256 bytes without control characters"
                        ),
                    );
                }
            }
            if let Some(secret) = &a.token_secret {
                if secret.len() < 16 {
                    return bad(
                        "auth.apps.<app>.token_secret",
                        "must be at least 16 bytes".to_string(),
                    );
                }
            }
            if let Some(url) = &a.webhook {
                if let Err(problem) = WebhookUrl::parse(url) {
                    return bad("auth.apps.<app>.webhook", problem);
                }
            }
            super::error::seconds("auth.apps.<app>.webhook_timeout", a.webhook_timeout, 60.0)?;
        }
        Ok(())
    }
}

/// A parsed `http://` webhook address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl {
    /// Host name or address, as given (IPv6 without brackets).
    pub host: String,
    /// Port (80 when not given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl WebhookUrl {
    /// Parses `http://host[:port][/path]`; https is refused (no TLS client is built in).
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(if url.starts_with("https://") {
                format!("{url:?}: https is not supported; use http:// (e.g. a local proxy)")
            } else {
                format!("{url:?} must start with http://")
            });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{url:?}: bad port {p:?}"))?,
            None => 80,
        };
        if host.is_empty() || authority.contains('@') {
            return Err(format!("{url:?}: needs a host (and no user info)"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("{url:?}: path has spaces or control characters"));
        }
        Ok(WebhookUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// Same character rule as stream names (`hub::naming::valid_name`).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The label when `name` would be grouped as `{base}_{label}` (see `hub::naming`).
fn rendition_label<'n>(name: &'n str, labels: &[String]) -> Option<&'n str> {
    let (base, label) = name.rsplit_once('_')?;
    let numeric_p = label.len() > 1
        && label.ends_with('p')
        && label[..label.len() - 1].bytes().all(|b| b.is_ascii_digit());
    (!base.is_empty() && (numeric_p || labels.iter().any(|l| l == label))).then_some(label)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Reconnect, WebhookDefault};

    fn err(text: &str) -> String {
        Config::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn off_by_default_and_parsed_per_app() {
        assert!(Config::default().auth.apps.is_empty());
        let c = Config::from_toml(
            "[auth.apps.live]\nkeys = { show = \"k1\" }\ntoken_secret = \"0123456789abcdef\"\n\
             webhook = \"http://127.0.0.1:9000/hook\"\nwebhook_timeout = 1.5\n\
             webhook_default = \"allow\"\nreconnect = \"reject\"\n",
        )
        .unwrap();
        let a = c.auth.app("live").unwrap();
        assert_eq!(a.keys["show"], "k1");
        assert_eq!(a.webhook_default, WebhookDefault::Allow);
        assert_eq!(a.reconnect, Reconnect::Reject);
        assert!(a.enabled() && a.needs_credential());
        assert!(c.auth.app("other").is_none());
        let open = Config::from_toml("[auth.apps.live]\nreconnect = \"reject\"\n").unwrap();
        assert!(!open.auth.app("live").unwrap().enabled());
    }

    #[test]
    fn validation_names_the_key() {
        let e = err("[auth.apps.live]\nkeys = { show_720p = \"k\" }\n");
        assert!(
            e.contains("auth.apps.<app>.keys")
                && e.contains("[auth.apps.live]")
                && e.contains("\"show\""),
            "{e}"
        );
        let e = err("[auth.apps.live]\nkeys = { show = \"\" }\n");
        assert!(e.contains("auth.apps.<app>.keys"), "{e}");
        let e = err("[auth.apps.live]\ntoken_secret = \"short\"\n");
        assert!(e.contains("auth.apps.<app>.token_secret"), "{e}");
        let e = err("[auth.apps.live]\nwebhook = \"https://x/hook\"\n");
        assert!(
            e.contains("webhook") && e.contains("https is not supported"),
            "{e}"
        );
        let e = err("[auth.apps.live]\nwebhook = \"http://x:0/\"\n");
        assert!(e.contains("bad port"), "{e}");
        let e = err("[auth.apps.live]\nwebhook_timeout = 0\n");
        assert!(e.contains("auth.apps.<app>.webhook_timeout"), "{e}");
        let e = err("[auth.apps.live]\nreconnect = \"steal\"\n");
        assert!(e.contains("reconnect"), "{e}");
        let e = err("[auth.apps.\"a/b\"]\n");
        assert!(e.contains("auth.apps"), "{e}");
        let e = err("[auth.apps.live]\nkey = { show = \"k\" }\n");
        assert!(e.contains("key"), "{e}");
    }

    #[test]
    fn webhook_urls() {
        use super::WebhookUrl;
        let u = WebhookUrl::parse("http://hooks.local:8081/on/publish?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("hooks.local", 8081, "/on/publish?x=1")
        );
        let u = WebhookUrl::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(WebhookUrl::parse("http://h").unwrap().path, "/");
        assert!(WebhookUrl::parse("ftp://h/").is_err());
        assert!(WebhookUrl::parse("http://u@h/").is_err());
        assert!(WebhookUrl::parse("http://h/a b").is_err());
    }
}

//! Publish authorisation decisions, sans-IO: stream keys, signed tokens, what to ask the
//! webhook and what its answer means, and who may take over a held name. The webhook call
//! itself lives in `webhook.rs`; the RTMP driver feeds its outcome back.
//!
//! Credentials are per ladder base: `show_720p` publishes with the credential of `show`,
//! so nobody can add a rendition to a ladder they could not publish.
//!
//! Token: `expires` is a Unix time in seconds and `token` the lowercase hex
//! HMAC-SHA256, keyed with the app's `token_secret`, of the message `{app}/{base}/{expires}`
//! (e.g. `live/show/1767225600`).

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::{AppAuthConfig, Reconnect, WebhookDefault, WebhookUrl};
use crate::webhook::WebhookCall;

/// Query parameters a publish may carry; more are ignored.
const MAX_PARAMS: usize = 32;

/// What a publisher proved. Two publishers with the same `Proven` value hold the same
/// credential; `Open` proves nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Nothing checked (open app, or the webhook could not be asked and the default allows).
    Open,
    /// A digest naming the mechanism, ladder and secret that were verified.
    Proven([u8; 32]),
}

/// Why a publish was refused. The text is logged and sent to the client; it never contains
/// a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither `key` nor `expires`+`token` was given.
    #[error("no stream key or token given")]
    NoCredential,
    /// The ladder has no key configured and tokens are off.
    #[error("no stream key is configured for this ladder")]
    UnknownLadder,
    /// The key does not match the ladder's.
    #[error("wrong stream key")]
    WrongKey,
    /// `expires` or `token` is not well-formed.
    #[error("malformed token or expiry")]
    TokenMalformed,
    /// The token's time has passed.
    #[error("token expired")]
    TokenExpired,
    /// The signature does not match (tampered, or signed for another ladder or app).
    #[error("token signature does not match")]
    TokenInvalid,
    /// The webhook answered with this non-2xx status.
    #[error("webhook refused with HTTP {0}")]
    WebhookDenied(u16),
    /// The webhook could not be asked and `webhook_default` is deny.
    #[error("webhook unavailable: {0}")]
    WebhookUnavailable(String),
}

/// Outcome of the synchronous checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Publish with this credential.
    Allowed(Credential),
    /// Refuse.
    Denied(Refusal),
    /// Ask the webhook; if it allows, publish with this credential.
    AskWebhook(Credential),
}

/// Splits `a=1&b=x%20y` into decoded pairs (at most [`MAX_PARAMS`]). A value-less item
/// becomes a pair with an empty value.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .take(MAX_PARAMS)
        .map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Equal strings, compared in constant time: both sides are hashed first, so neither the
/// position of the first difference nor the lengths show in the timing.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn fingerprint(parts: &[&str]) -> Credential {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    Credential::Proven(h.finalize().into())
}

fn mac(secret: &str, app: &str, base: &str, expires: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(format!("{app}/{base}/{expires}").as_bytes());
    m
}

/// The token for publishing ladder `base` of `app` until `expires` (Unix seconds).
pub fn sign_token(secret: &str, app: &str, base: &str, expires: u64) -> String {
    let tag = mac(secret, app, base, &expires.to_string())
        .finalize()
        .into_bytes();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `expires` and `token` for ladder `base` of `app` at time `now` (Unix seconds);
/// the signature comparison is constant-time (`Mac::verify_slice`).
pub fn verify_token(
    secret: &str,
    app: &str,
    base: &str,
    expires: &str,
    token: &str,
    now: u64,
) -> Result<(), Refusal> {
    let at: u64 = expires
        .parse()
        .ok()
        .filter(|_| expires.len() <= 20 && expires.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Refusal::TokenMalformed)?;
    let tag = decode_hex(token)
        .filter(|t| t.len() == 32)
        .ok_or(Refusal::TokenMalformed)?;
    mac(secret, app, base, expires)
        .verify_slice(&tag)
        .map_err(|_| Refusal::TokenInvalid)?;
    // Checked after the signature so a forged far-future time is reported as tampering.
    if at <= now {
        return Err(Refusal::TokenExpired);
    }
    Ok(())
}

/// The synchronous part of the decision for a publish of ladder `base` in `app` with
/// query `params`, at Unix time `now`.
pub fn check(
    config: Option<&AppAuthConfig>,
    app: &str,
    base: &str,
    params: &[(String, String)],
    now: u64,
) -> Check {
    let Some(config) = config.filter(|c| c.enabled()) else {
        return Check::Allowed(Credential::Open);
    };
    let credential = if config.needs_credential() {
        match check_credential(config, app, base, params, now) {
            Ok(c) => c,
            Err(refusal) => return Check::Denied(refusal),
        }
    } else {
        // Webhook only: the same query parameters make the same credential.
        let mut sorted: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        sorted.sort();
        let mut parts = vec!["webhook", app, base];
        parts.extend(sorted.iter().map(String::as_str));
        fingerprint(&parts)
    };
    if config.webhook.is_some() {
        Check::AskWebhook(credential)
    } else {
        Check::Allowed(credential)
    }
}

fn check_credential(
    config: &AppAuthConfig,
    app: &str,
    base: &str,
    params: &[(String, String)],
    now: u64,
) -> Result<Credential, Refusal> {
    if let Some(given) = param(params, "key") {
        let Some(expected) = config.keys.get(base) else {
            return Err(Refusal::UnknownLadder);
        };
        return if secrets_equal(given, expected) {
            Ok(fingerprint(&["key", app, base, expected]))
        } else {
            Err(Refusal::WrongKey)
        };
    }
    match (
        config.token_secret.as_deref(),
        param(params, "expires"),
        param(params, "token"),
    ) {
        (Some(secret), Some(expires), Some(token)) => {
            verify_token(secret, app, base, expires, token, now)?;
            Ok(fingerprint(&["token", app, base, secret]))
        }
        (Some(_), None, Some(_)) | (Some(_), Some(_), None) => Err(Refusal::TokenMalformed),
        (None, _, _) if !config.keys.contains_key(base) => Err(Refusal::UnknownLadder),
        _ => Err(Refusal::NoCredential),
    }
}

/// What the webhook's outcome (`Ok(status)` or why it could not be asked) means for a
/// publish that passed the local checks with `credential`.
pub fn webhook_verdict(
    config: &AppAuthConfig,
    credential: Credential,
    outcome: Result<u16, String>,
) -> Result<Credential, Refusal> {
    match outcome {
        Ok(status) if (200..300).contains(&status) => Ok(credential),
        Ok(status) => Err(Refusal::WebhookDenied(status)),
        Err(why) => match config.webhook_default {
            WebhookDefault::Allow if config.needs_credential() => Ok(credential),
            WebhookDefault::Allow => Ok(Credential::Open),
            WebhookDefault::Deny => Err(Refusal::WebhookUnavailable(why)),
        },
    }
}

/// Who publishes (or asks to publish) a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Connection id.
    pub conn_id: u64,
    /// Client address, when known.
    pub ip: Option<IpAddr>,
    /// What it proved.
    pub credential: Credential,
}

impl Holder {
    /// A holder that proved nothing (an open app), for embedding and tests.
    pub fn open(conn_id: u64) -> Holder {
        Holder {
            conn_id,
            ip: None,
            credential: Credential::Open,
        }
    }
}

/// True when `new` may take the name over from `held` under `policy`: it proved the same
/// credential, or, when neither proved anything, it comes from the same IP address (an
/// encoder restarting on the same machine; anyone else is refused as before).
pub fn may_take_over(policy: Reconnect, held: &Holder, new: &Holder) -> bool {
    if policy == Reconnect::Reject {
        return false;
    }
    match (&held.credential, &new.credential) {
        (Credential::Proven(a), Credential::Proven(b)) => a == b,
        (Credential::Open, Credential::Open) => held.ip.is_some() && held.ip == new.ip,
        _ => false,
    }
}

/// What the webhook is told, as JSON: `{"action": "publish"|"unpublish", "app", "stream",
/// "ladder", "rendition", "params": {...}, "client_ip", "conn_id"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct HookEvent {
    /// `publish` (asks) or `unpublish` (tells).
    pub action: &'static str,
    /// RTMP app.
    pub app: String,
    /// Stream name as published, without the query.
    pub stream: String,
    /// Ladder base.
    pub ladder: String,
    /// Rendition label.
    pub rendition: String,
    /// The query parameters of the stream name (and of the app in connect).
    pub params: Vec<(String, String)>,
    /// Client address, when known.
    pub client_ip: Option<IpAddr>,
    /// Connection id (as in the logs).
    pub conn_id: u64,
}

impl HookEvent {
    /// The request to send to `config`'s webhook, if it has one.
    pub fn call(&self, config: &AppAuthConfig) -> Option<WebhookCall> {
        let url = WebhookUrl::parse(config.webhook.as_deref()?).ok()?;
        Some(WebhookCall {
            url,
            body: self.body(),
            timeout: Duration::from_secs_f64(config.webhook_timeout),
        })
    }

    /// The JSON request body.
    pub fn body(&self) -> Vec<u8> {
        let params: serde_json::Map<String, serde_json::Value> = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "action": self.action,
            "app": self.app,
            "stream": self.stream,
            "ladder": self.ladder,
            "rendition": self.rendition,
            "params": params,
            "client_ip": self.client_ip.map(|ip| ip.to_string()),
            "conn_id": self.conn_id,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

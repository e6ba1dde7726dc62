//! Unit tests of the publish authorisation decisions.

use super::*;
use crate::config::Config;

const SECRET: &str = "0123456789abcdef-secret";
const NOW: u64 = 1_800_000_000;

fn app(toml: &str) -> AppAuthConfig {
    Config::from_toml(toml)
        .unwrap()
        .auth
        .app("live")
        .unwrap()
        .clone()
}

fn q(s: &str) -> Vec<(String, String)> {
    parse_query(s)
}

fn keys() -> AppAuthConfig {
    app("[auth.apps.live]\nkeys = { show = \"k1\", other = \"k2\" }\n")
}

fn tokens() -> AppAuthConfig {
    app(&format!("[auth.apps.live]\ntoken_secret = \"{SECRET}\"\n"))
}

fn denied(c: Check) -> Refusal {
    match c {
        Check::Denied(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn open_without_config() {
    assert_eq!(
        check(None, "live", "show", &[], NOW),
        Check::Allowed(Credential::Open)
    );
    let open = app("[auth.apps.live]\nreconnect = \"reject\"\n");
    assert_eq!(
        check(Some(&open), "live", "show", &[], NOW),
        Check::Allowed(Credential::Open)
    );
}

#[test]
fn query_is_decoded_and_bounded() {
    assert_eq!(
        q("key=a%20b&x&token=%zz&y=1%2"),
        [("key", "a b"), ("x", ""), ("token", "%zz"), ("y", "1%2")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(q(&"a=1&".repeat(100)).len(), MAX_PARAMS);
}

#[test]
fn static_keys() {
    let k = keys();
    let ok = check(Some(&k), "live", "show", &q("key=k1"), NOW);
    assert!(
        matches!(ok, Check::Allowed(Credential::Proven(_))),
        "{ok:?}"
    );
    assert_eq!(
        denied(check(Some(&k), "live", "show", &q("key=k2"), NOW)),
        Refusal::WrongKey
    );
    assert_eq!(
        denied(check(Some(&k), "live", "show", &q("key=k1x"), NOW)),
        Refusal::WrongKey
    );
    assert_eq!(
        denied(check(Some(&k), "live", "show", &[], NOW)),
        Refusal::NoCredential
    );
    assert_eq!(
        denied(check(Some(&k), "live", "nope", &q("key=k1"), NOW)),
        Refusal::UnknownLadder
    );
    assert_eq!(
        denied(check(Some(&k), "live", "nope", &[], NOW)),
        Refusal::UnknownLadder
    );
    // The same key twice is the same credential; another ladder's is not.
    let again = check(Some(&k), "live", "show", &q("x=1&key=k1"), NOW);
    assert_eq!(ok, again);
    let other = check(Some(&k), "live", "other", &q("key=k2"), NOW);
    assert_ne!(ok, other);
}

#[test]
fn constant_time_compare() {
    assert!(secrets_equal("k1", "k1"));
    assert!(!secrets_equal("k1", "k2"));
    assert!(!secrets_equal("k1", "k1 "));
    assert!(!secrets_equal("", "k"));
    assert!(secrets_equal("", ""));
}

#[test]
fn tokens_valid_expired_tampered() {
    let t = tokens();
    let exp = NOW + 60;
    let tok = sign_token(SECRET, "live", "show", exp);
    assert_eq!(tok.len(), 64);
    let query = format!("expires={exp}&token={tok}");
    assert!(matches!(
        check(Some(&t), "live", "show", &q(&query), NOW),
        Check::Allowed(Credential::Proven(_))
    ));
    // Upper-case hex is the same token.
    let upper = format!("expires={exp}&token={}", tok.to_uppercase());
    assert!(matches!(
        check(Some(&t), "live", "show", &q(&upper), NOW),
        Check::Allowed(_)
    ));
    assert_eq!(
        denied(check(Some(&t), "live", "show", &q(&query), exp)),
        Refusal::TokenExpired
    );
    // Another ladder, another app, a moved expiry, a flipped bit: all tampering.
    assert_eq!(
        denied(check(Some(&t), "live", "show2", &q(&query), NOW)),
        Refusal::TokenInvalid
    );
    assert_eq!(
        denied(check(Some(&t), "tv", "show", &q(&query), NOW)),
        Refusal::TokenInvalid
    );
    let later = format!("expires={}&token={tok}", exp + 3600);
    assert_eq!(
        denied(check(Some(&t), "live", "show", &q(&later), NOW)),
        Refusal::TokenInvalid
    );
    let flipped = format!(
        "{}{}",
        &tok[..63],
        if tok.ends_with('0') { '1' } else { '0' }
    );
    let bad = format!("expires={exp}&token={flipped}");
    assert_eq!(
        denied(check(Some(&t), "live", "show", &q(&bad), NOW)),
        Refusal::TokenInvalid
    );
    for malformed in [
        format!("expires={exp}&token={}", &tok[..62]),
        format!("expires={exp}&token=zz{}", &tok[2..]),
        format!("expires=-1&token={tok}"),
        format!("token={tok}"),
    ] {
        assert_eq!(
            denied(check(Some(&t), "live", "show", &q(&malformed), NOW)),
            Refusal::TokenMalformed,
            "{malformed}"
        );
    }
    assert_eq!(
        denied(check(Some(&t), "live", "show", &[], NOW)),
        Refusal::NoCredential
    );
    // A key is no use where only tokens are configured.
    assert_eq!(
        denied(check(Some(&t), "live", "show", &q("key=x"), NOW)),
        Refusal::UnknownLadder
    );
}

#[test]
fn token_message_is_documented_one() {
    // From the README's one-liners: python3 hmac.new(secret, b"live/show/1767225600",
    // hashlib.sha256).hexdigest() and `openssl dgst -sha256 -hmac` give this.
    assert_eq!(
        sign_token(SECRET, "live", "show", 1_767_225_600),
        "df7662fff943470e4457065c99453ba25b673aff8bc119f918c559529e1f03bd"
    );
}

#[test]
fn webhook_decisions() {
    let hook = app("[auth.apps.live]\nwebhook = \"http://127.0.0.1:9/\"\n");
    let Check::AskWebhook(cred) = check(Some(&hook), "live", "show", &q("a=1&b=2"), NOW) else {
        panic!("webhook not asked");
    };
    assert_eq!(
        check(Some(&hook), "live", "show", &q("b=2&a=1"), NOW),
        Check::AskWebhook(cred.clone())
    );
    assert_eq!(
        webhook_verdict(&hook, cred.clone(), Ok(204)),
        Ok(cred.clone())
    );
    assert_eq!(
        webhook_verdict(&hook, cred.clone(), Ok(403)),
        Err(Refusal::WebhookDenied(403))
    );
    assert_eq!(
        webhook_verdict(&hook, cred.clone(), Err("timed out".into())),
        Err(Refusal::WebhookUnavailable("timed out".into()))
    );
    let lenient =
        app("[auth.apps.live]\nwebhook = \"http://127.0.0.1:9/\"\nwebhook_default = \"allow\"\n");
    assert_eq!(
        webhook_verdict(&lenient, cred, Err("down".into())),
        Ok(Credential::Open)
    );
    // Keys plus webhook: a wrong key never reaches the webhook.
    let both =
        app("[auth.apps.live]\nkeys = { show = \"k1\" }\nwebhook = \"http://127.0.0.1:9/\"\n");
    assert_eq!(
        denied(check(Some(&both), "live", "show", &q("key=no"), NOW)),
        Refusal::WrongKey
    );
    assert!(matches!(
        check(Some(&both), "live", "show", &q("key=k1"), NOW),
        Check::AskWebhook(Credential::Proven(_))
    ));
}

#[test]
fn takeover_rules() {
    let ip = |s: &str| Some(s.parse().unwrap());
    let holder = |id, a: &str, c: Credential| Holder {
        conn_id: id,
        ip: ip(a),
        credential: c,
    };
    let key = fingerprint(&["key", "live", "show", "k1"]);
    let other = fingerprint(&["key", "live", "show", "k2"]);
    let held = holder(1, "10.0.0.1", key.clone());
    assert!(may_take_over(
        Reconnect::Takeover,
        &held,
        &holder(2, "10.0.0.9", key.clone())
    ));
    assert!(!may_take_over(
        Reconnect::Reject,
        &held,
        &holder(2, "10.0.0.1", key)
    ));
    assert!(!may_take_over(
        Reconnect::Takeover,
        &held,
        &holder(2, "10.0.0.1", other)
    ));
    assert!(!may_take_over(
        Reconnect::Takeover,
        &held,
        &holder(2, "10.0.0.1", Credential::Open)
    ));
    let open = holder(1, "10.0.0.1", Credential::Open);
    assert!(may_take_over(
        Reconnect::Takeover,
        &open,
        &holder(2, "10.0.0.1", Credential::Open)
    ));
    assert!(!may_take_over(
        Reconnect::Takeover,
        &open,
        &holder(2, "10.0.0.2", Credential::Open)
    ));
    let unknown = Holder {
        conn_id: 3,
        ip: None,
        credential: Credential::Open,
    };
    assert!(!may_take_over(
        Reconnect::Takeover,
        &unknown,
        &Holder {
            conn_id: 4,
            ..unknown.clone()
        }
    ));
}

#[test]
fn hook_body_fields() {
    let e = HookEvent {
        action: "publish",
        app: "live".into(),
        stream: "show_720p".into(),
        ladder: "show".into(),
        rendition: "720p".into(),
        params: q("key=k1&x=y"),
        client_ip: "127.0.0.1".parse().ok(),
        conn_id: 7,
    };
    let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
    assert_eq!(v["action"], "publish");
    assert_eq!(v["ladder"], "show");
    assert_eq!(v["params"]["key"], "k1");
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert_eq!(v["conn_id"], 7);
}

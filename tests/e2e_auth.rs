//! Issue 10 item 4 end to end: publish authorisation with real ffmpeg publishers: static
//! keys, signed tokens, a webhook served by a real HTTP server in the test, ladder
//! credentials, and takeover of a half-open encoder's name.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::get;
use common::{poll, publish, sample, start, test_config, Proc};
use packgate::config::Config;
use packgate::hub::auth::sign_token;
use packgate::server::Server;

const SAMPLE: &str = "h264_aac_640x360.flv";
const TOKEN_SECRET: &str = "e2e-token-secret-0123456789";

// ---- logs: the server's log lines, captured so tests can check the refusal reasons ----

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                log_buffer()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                std::io::stderr().write_all(buf)?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| Sink)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// Log lines that contain every one of `needles`.
fn log_lines(needles: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(&log_buffer().lock().unwrap_or_else(|e| e.into_inner()))
        .into_owned();
    text.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

fn wait_log(needles: &[&str], limit: Duration) -> String {
    poll(limit, || log_lines(needles).into_iter().next())
        .unwrap_or_else(|| panic!("no log line with {needles:?}"))
}

// ---- the gateway ----

fn server(auth_toml: &str) -> (tokio::runtime::Runtime, Server) {
    log_buffer();
    let mut config = test_config();
    let parsed = Config::from_toml(auth_toml).expect("auth config");
    config.auth = parsed.auth;
    config.validate().expect("valid");
    start(config)
}

fn playlist_path(app: &str, base: &str, label: &str) -> String {
    format!("/{app}/{base}/{label}/video.m3u8")
}

/// Waits until `path` lists at least `n` segments; returns the playlist text.
fn segments(http: SocketAddr, path: &str, n: usize, limit: Duration) -> Option<String> {
    poll(limit, || {
        let r = get(http, path).ok().filter(|r| r.status == 200)?;
        let text = r.text();
        (text.matches("#EXTINF").count() >= n).then_some(text)
    })
}

fn publish_sample(server: &Server, app: &str, name: &str) -> Proc {
    publish(server.rtmp_addr, app, name, &sample(SAMPLE), -1)
}

/// Asserts the publish of `app/name` is refused: ffmpeg exits with an error, the log says
/// why (and never shows `secret`), and ladder `base`, if given, is not served.
fn assert_refused(
    server: &Server,
    app: &str,
    name: &str,
    base: Option<&str>,
    reason: &str,
    secret: &str,
) {
    let mut p = publish_sample(server, app, name);
    assert_eq!(
        p.wait_for(Duration::from_secs(15)),
        Some(false),
        "ffmpeg publishing {app}/{name} should fail"
    );
    let stream = name.split('?').next().unwrap();
    let line = wait_log(
        &[
            "publish refused",
            &format!("app=\"{app}\""),
            &format!("stream=\"{stream}\""),
            reason,
        ],
        Duration::from_secs(5),
    );
    assert!(line.contains("conn="), "{line}");
    assert!(
        secret.is_empty() || log_lines(&[secret]).is_empty(),
        "a secret is in the log"
    );
    if let Some(base) = base {
        let r = get(server.http_addr, &format!("/{app}/{base}/index.m3u8")).unwrap();
        assert_eq!(r.status, 404, "nothing may be published for {app}/{base}");
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---- static keys and tokens ----

#[test]
fn static_keys_and_ladder_credentials() {
    let (_rt, server) =
        server("[auth.apps.keyed]\nkeys = { kshow = \"k1-secret\", knews = \"k2-secret\", kapp = \"k3-secret\" }\n");
    let http = server.http_addr;
    let _ok = publish_sample(&server, "keyed", "kshow?key=k1-secret");
    segments(
        http,
        &playlist_path("keyed", "kshow", "src"),
        1,
        Duration::from_secs(20),
    )
    .expect("the right key publishes");
    assert_refused(
        &server,
        "keyed",
        "knews?key=wr0ng-value",
        Some("knews"),
        "wrong stream key",
        "wr0ng-value",
    );
    assert_refused(
        &server,
        "keyed",
        "knews",
        Some("knews"),
        "no stream key or token given",
        "",
    );
    assert_refused(
        &server,
        "keyed",
        "kother?key=k1-secret",
        Some("kother"),
        "no stream key is configured",
        "k1-secret",
    );
    // Joining a ladder needs that ladder's key: another ladder's is refused.
    assert_refused(
        &server,
        "keyed",
        "kshow_360p?key=k2-secret",
        None,
        "wrong stream key",
        "k2-secret",
    );
    assert_refused(
        &server,
        "keyed",
        "kshow_360p",
        None,
        "no stream key or token given",
        "",
    );
    assert_eq!(
        get(http, &playlist_path("keyed", "kshow", "360p"))
            .unwrap()
            .status,
        404
    );
    // With it, the rendition joins.
    let _rung = publish_sample(&server, "keyed", "kshow_360p?key=k1-secret");
    segments(
        http,
        &playlist_path("keyed", "kshow", "360p"),
        1,
        Duration::from_secs(20),
    )
    .expect("the ladder's key adds a rendition");
    // The key on the app, as OBS sends it with Server `rtmp://host/keyed?key=...`.
    let _on_app = publish(
        server.rtmp_addr,
        "keyed?key=k3-secret",
        "kapp",
        &sample(SAMPLE),
        -1,
    );
    segments(
        http,
        &playlist_path("keyed", "kapp", "src"),
        1,
        Duration::from_secs(20),
    )
    .expect("a key in the app's query publishes");
    assert!(
        log_lines(&["k1-secret"]).is_empty(),
        "the key is in the log"
    );
}

#[test]
fn signed_tokens() {
    let (_rt, server) = server(&format!(
        "[auth.apps.signed]\ntoken_secret = \"{TOKEN_SECRET}\"\n"
    ));
    let exp = now() + 600;
    let token = sign_token(TOKEN_SECRET, "signed", "tshow", exp);
    let _ok = publish_sample(
        &server,
        "signed",
        &format!("tshow?expires={exp}&token={token}"),
    );
    segments(
        server.http_addr,
        &playlist_path("signed", "tshow", "src"),
        1,
        Duration::from_secs(20),
    )
    .expect("a valid token publishes");

    let old = now() - 5;
    let expired = sign_token(TOKEN_SECRET, "signed", "texp", old);
    assert_refused(
        &server,
        "signed",
        &format!("texp?expires={old}&token={expired}"),
        Some("texp"),
        "token expired",
        &expired,
    );

    // A token for another ladder, and one with a later expiry pasted in.
    let other = sign_token(TOKEN_SECRET, "signed", "tshow", exp);
    assert_refused(
        &server,
        "signed",
        &format!("tother?expires={exp}&token={other}"),
        Some("tother"),
        "token signature does not match",
        &other,
    );
    let moved = exp + 86_400;
    let tampered = sign_token(TOKEN_SECRET, "signed", "ttamp", exp);
    assert_refused(
        &server,
        "signed",
        &format!("ttamp?expires={moved}&token={tampered}"),
        Some("ttamp"),
        "token signature does not match",
        &tampered,
    );
}

// ---- webhook ----

/// A small HTTP server: `/allow` answers 200, `/deny` 403, `/slow` waits 3 s. It records
/// every request's path and JSON body.
struct Hook {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let seen = seen2.clone();
                        std::thread::spawn(move || Hook::answer(s, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hook {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn answer(mut s: TcpStream, seen: &Mutex<Vec<(String, serde_json::Value)>>) {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let (head_end, length) = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..i]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (i + 4, len);
            }
        };
        while data.len() < head_end + length {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
        let body = serde_json::from_slice(&data[head_end..head_end + length])
            .unwrap_or(serde_json::Value::Null);
        seen.lock().unwrap().push((path.clone(), body));
        let status = match path.as_str() {
            "/allow" => "200 OK",
            "/slow" => {
                std::thread::sleep(Duration::from_secs(3));
                "200 OK"
            }
            _ => "403 Forbidden",
        };
        let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
    }

    fn requests(&self, action: &str, stream: &str) -> Vec<(String, serde_json::Value)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b["action"] == action && b["stream"] == stream)
            .cloned()
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn webhook_allow_deny_timeout_down() {
    let hook = Hook::start();
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: nothing listens there
    let h = hook.addr;
    let (_rt, server) = server(&format!(
        "[auth.apps.hookok]\nwebhook = \"http://{h}/allow\"\n\
         [auth.apps.hookno]\nwebhook = \"http://{h}/deny\"\n\
         [auth.apps.hookslow]\nwebhook = \"http://{h}/slow\"\nwebhook_timeout = 0.5\n\
         [auth.apps.hookdown]\nwebhook = \"http://{down}/allow\"\n\
         [auth.apps.hookdownok]\nwebhook = \"http://{down}/allow\"\nwebhook_default = \"allow\"\n"
    ));
    let http = server.http_addr;

    let mut ok = publish_sample(&server, "hookok", "wshow_360p?key=abc&x=1");
    segments(
        http,
        &playlist_path("hookok", "wshow", "360p"),
        1,
        Duration::from_secs(20),
    )
    .expect("the webhook's 200 lets it publish");
    let asked = hook.requests("publish", "wshow_360p");
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (path, body) = &asked[0];
    assert_eq!(path, "/allow");
    assert_eq!(body["app"], "hookok");
    assert_eq!(body["ladder"], "wshow");
    assert_eq!(body["rendition"], "360p");
    assert_eq!(body["params"]["key"], "abc");
    assert_eq!(body["params"]["x"], "1");
    assert_eq!(body["client_ip"], "127.0.0.1");
    let conn = body["conn_id"].as_u64().expect("conn_id");
    // Unpublish is notified with the same fields when the encoder goes away.
    ok.0.kill().unwrap();
    let told = poll(Duration::from_secs(10), || {
        hook.requests("unpublish", "wshow_360p").into_iter().next()
    })
    .expect("unpublish notification");
    assert_eq!(told.1["conn_id"].as_u64(), Some(conn));
    assert_eq!(told.1["ladder"], "wshow");

    assert_refused(
        &server,
        "hookno",
        "wdeny?key=abc",
        Some("wdeny"),
        "webhook refused with HTTP 403",
        "",
    );
    assert_eq!(hook.requests("publish", "wdeny").len(), 1);
    assert!(hook.requests("unpublish", "wdeny").is_empty());

    let t = Instant::now();
    assert_refused(
        &server,
        "hookslow",
        "wslow",
        Some("wslow"),
        "webhook unavailable: no answer within",
        "",
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_refused(
        &server,
        "hookdown",
        "wdown",
        Some("wdown"),
        "webhook unavailable",
        "",
    );

    let _lenient = publish_sample(&server, "hookdownok", "wdownok");
    segments(
        http,
        &playlist_path("hookdownok", "wdownok", "src"),
        1,
        Duration::from_secs(20),
    )
    .expect("webhook_default = allow lets it publish when the webhook is down");
}

// ---- takeover ----

/// Segment numbers of a media playlist, in order.
fn numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.ends_with(".m4s"))
        .filter_map(|l| l.rsplit('/').next()?.strip_suffix(".m4s")?.parse().ok())
        .collect()
}

/// Publishes `name` on `app`, freezes the encoder (SIGSTOP: its TCP connection stays
/// open and silent, as after a network drop), publishes again and checks the second one
/// is accepted at once (the log line bounds the wait at 10 s; the old idle timeout made it
/// 30 s) and continues the same playlist.
fn takeover(server: &Server, app: &str, name: &str, base: &str) {
    let http = server.http_addr;
    let path = playlist_path(app, base, "src");
    let first = publish_sample(server, app, name);
    let before = segments(http, &path, 2, Duration::from_secs(30)).expect("first publisher");
    let last_before = *numbers(&before).last().unwrap();
    assert!(first.signal("STOP"));
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let _second = publish_sample(server, app, name);
    let stream = name.split('?').next().unwrap();
    let app_field = format!("app=\"{app}\"");
    let stream_field = format!("stream=\"{stream}\"");
    wait_log(
        &[
            "publish started",
            "took_over=true",
            &app_field,
            &stream_field,
        ],
        Duration::from_secs(10),
    );
    eprintln!(
        "{app}/{stream}: takeover accepted {} ms after the second ffmpeg started",
        t.elapsed().as_millis()
    );
    wait_log(
        &["taken over by a new publisher", &app_field, &stream_field],
        Duration::from_secs(5),
    );
    // The same playlist continues: numbers go on without a gap, across a discontinuity.
    let after = poll(Duration::from_secs(30), || {
        let text = get(http, &path).ok()?.text();
        let n = numbers(&text);
        (n.iter().filter(|&&s| s > last_before + 1).count() >= 2).then_some(text)
    })
    .expect("the second publisher's segments in the same playlist");
    let n = numbers(&after);
    assert!(n.windows(2).all(|w| w[1] == w[0] + 1), "{after}");
    assert!(n.contains(&(last_before + 1)), "{after}");
    assert!(after.contains("#EXT-X-DISCONTINUITY"), "{after}");
    assert!(!after.contains("#EXT-X-ENDLIST"), "{after}");
    drop(first);
}

#[test]
fn takeover_with_the_same_key() {
    let (_rt, server) = server("[auth.apps.tk]\nkeys = { tkshow = \"tk-secret\" }\n");
    takeover(&server, "tk", "tkshow?key=tk-secret", "tkshow");
}

#[test]
fn takeover_in_an_open_app_from_the_same_ip() {
    let (_rt, server) = server("");
    takeover(&server, "open", "oshow", "oshow");
}

#[test]
fn reject_policy_refuses_the_second_publisher() {
    let (_rt, server) =
        server("[auth.apps.strict]\nkeys = { rshow = \"r-secret\" }\nreconnect = \"reject\"\n");
    let first = publish_sample(&server, "strict", "rshow?key=r-secret");
    let path = playlist_path("strict", "rshow", "src");
    segments(server.http_addr, &path, 1, Duration::from_secs(20)).expect("first publisher");
    assert!(first.signal("STOP"));
    assert_refused(
        &server,
        "strict",
        "rshow?key=r-secret",
        None,
        "already being published",
        "r-secret",
    );
    assert!(log_lines(&["took_over=true", "stream=\"rshow\""]).is_empty());
}

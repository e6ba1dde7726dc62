//! Two (three) packgate processes sharing a real redis-server on loopback: a stream
//! published to node A is served through node B (proxy mode: master and media playlists,
//! segments, an LL-HLS blocking reload, ffmpeg decoding B's URL) and redirected by node C
//! (redirect mode: 307 to A); A's registry entry has a TTL, goes on unpublish, comes back
//! on a new publish and expires after `kill -9` of A, after which B answers 404.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{get, request_with};
use common::{free_port, long_sample, poll, publish, tools, Proc};

/// The registry entry's TTL in the test, seconds.
const TTL: f64 = 3.0;
const KEY: &str = "packgate:stream:live/show";

fn scratch() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One inline command to Redis; the first reply line (`:1500`, `$-1`, `+PONG`, …).
fn redis(port: u16, command: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "{command}\r\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

fn start_redis(port: u16) -> Proc {
    let child = Command::new(tools::redis_server())
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn redis-server");
    let p = Proc(child);
    poll(Duration::from_secs(10), || {
        redis(port, "PING").ok().filter(|l| l == "+PONG")
    })
    .expect("redis-server answers PING");
    p
}

struct Node {
    proc: Proc,
    rtmp: SocketAddr,
    http: SocketAddr,
}

fn start_node(name: &str, redis_port: u16, mode: &str, dir: &std::path::Path) -> Node {
    let rtmp = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[rtmp]\nlisten = \"{rtmp}\"\n[http]\nlisten = \"{http}\"\n\
         [segment]\nlinger = 30.0\n\
         [cluster]\nenabled = true\nredis = \"redis://127.0.0.1:{redis_port}\"\n\
         node_id = \"{name}\"\nadvertise = \"http://{http}\"\nttl = {TTL}\nmode = \"{mode}\"\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_packgate"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn packgate");
    let node = Node {
        proc: Proc(child),
        rtmp,
        http,
    };
    poll(Duration::from_secs(10), || {
        get(http, "/api/streams").ok().filter(|r| r.status == 200)
    })
    .unwrap_or_else(|| panic!("node {name} never answered on {http}"));
    node
}

fn uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn attr<'a>(playlist: &'a str, tag: &str) -> Option<&'a str> {
    playlist.lines().find_map(|l| l.strip_prefix(tag))
}

#[test]
fn stream_on_a_is_served_through_b_and_expires_when_a_dies() {
    let started = Instant::now();
    let sample = long_sample(60);
    let ffmpeg = tools::ffmpeg();
    let dir = scratch();
    let rport = free_port();
    let _redis = start_redis(rport);
    let mut a = start_node("node-a", rport, "proxy", &dir);
    let b = start_node("node-b", rport, "proxy", &dir);
    let c = start_node("node-c", rport, "redirect", &dir);

    // Nothing is published anywhere: the usual 404 on every node.
    assert_eq!(get(b.http, "/live/show/index.m3u8").unwrap().status, 404);

    let mut publisher = publish(a.rtmp, "live", "show", &sample, -1);
    poll(Duration::from_secs(20), || {
        get(a.http, "/live/show/src/video.m3u8")
            .ok()
            .filter(|r| r.status == 200 && r.text().contains(".m4s"))
    })
    .expect("stream live on A");

    // The registry entry: A's, with a TTL no longer than the configured one.
    let value = redis(rport, &format!("GET {KEY}")).unwrap();
    assert!(value.starts_with('$'), "no registry entry: {value}");
    let pttl: i64 = redis(rport, &format!("PTTL {KEY}")).unwrap()[1..]
        .parse()
        .unwrap();
    assert!(pttl > 0 && pttl <= (TTL * 1000.0) as i64, "PTTL {pttl}");

    // Through B (proxy): master, media playlist, init and segment, byte for byte A's.
    let master = get(b.http, "/live/show/index.m3u8").unwrap();
    assert_eq!(master.status, 200, "{}", master.text());
    assert_eq!(master.header("x-packgate-node"), Some("node-a"));
    assert!(master.text().starts_with("#EXTM3U"), "{}", master.text());
    let media_uri = uris(&master.text())
        .into_iter()
        .find(|u| u.contains("video"))
        .expect("a video playlist in the master");
    let media_path = format!("/live/show/{media_uri}");
    let media = get(b.http, &media_path).unwrap();
    assert_eq!(media.status, 200);
    let text = media.text();
    let seg = uris(&text).pop().expect("a segment in the playlist");
    let seg_path = format!("/live/show/src/{seg}");
    let via_b = get(b.http, &seg_path).unwrap();
    let from_a = get(a.http, &seg_path).unwrap();
    assert_eq!((via_b.status, from_a.status), (200, 200));
    assert_eq!(via_b.body, from_a.body, "segment {seg} differs through B");
    assert!(via_b.body.len() > 1000);
    let init = attr(&text, "#EXT-X-MAP:URI=\"")
        .and_then(|s| s.split('"').next())
        .expect("EXT-X-MAP");
    let init_b = get(b.http, &format!("/live/show/src/{init}")).unwrap();
    assert_eq!(init_b.status, 200);
    assert_eq!(
        init_b.body,
        get(a.http, &format!("/live/show/src/{init}")).unwrap().body
    );
    // The DASH manifest too; a request another node already forwarded is never forwarded
    // again (B has no such stream itself).
    assert_eq!(get(b.http, "/live/show/index.mpd").unwrap().status, 200);
    let hop = request_with(
        b.http,
        "GET",
        "/live/show/index.m3u8",
        &[("X-Packgate-Hop", "node-x")],
    )
    .unwrap();
    assert_eq!(hop.status, 404);
    // What the extra hop costs: the same segment fetched directly and through B.
    let median = |addr: SocketAddr| {
        let mut t: Vec<Duration> = (0..40)
            .map(|_| {
                let s = Instant::now();
                assert_eq!(get(addr, &seg_path).unwrap().status, 200);
                s.elapsed()
            })
            .collect();
        t.sort();
        t[t.len() / 2]
    };
    let (direct, proxied) = (median(a.http), median(b.http));
    println!(
        "segment of {} bytes: median {:.2} ms from A, {:.2} ms through B",
        via_b.body.len(),
        direct.as_secs_f64() * 1e3,
        proxied.as_secs_f64() * 1e3
    );

    // A ranged request goes along with its Range.
    let ranged = request_with(b.http, "GET", &seg_path, &[("Range", "bytes=0-99")]).unwrap();
    assert!(
        ranged.status == 206 && ranged.body.len() == 100 || ranged.status == 200,
        "range through B: {}",
        ranged.status
    );

    // An LL-HLS blocking reload through B: the query goes to A, which holds it until the
    // next segment exists.
    let next: u64 = attr(&text, "#EXT-X-MEDIA-SEQUENCE:")
        .unwrap()
        .parse::<u64>()
        .unwrap()
        + text.matches("#EXTINF").count() as u64;
    let held = Instant::now();
    let reload = get(b.http, &format!("{media_path}?_HLS_msn={next}&_HLS_part=0")).unwrap();
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert!(held.elapsed() < Duration::from_secs(6));
    assert!(
        reload.text().contains(&format!("{next}.m4s")) || reload.text().contains("part-"),
        "blocking reload did not reach msn {next}: {}",
        reload.text()
    );

    // ffmpeg decodes the stream through B's URL.
    let decoded = Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-rw_timeout", "10000000", "-i"])
        .arg(format!("http://{}/live/show/index.m3u8", b.http))
        .args(["-t", "3", "-map", "0:v:0", "-f", "null", "-"])
        .status()
        .unwrap();
    assert!(decoded.success(), "ffmpeg could not decode through node B");

    // Through C (redirect): 307 to the same path on A.
    let r = get(c.http, "/live/show/index.m3u8?x=1").unwrap();
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}/live/show/index.m3u8?x=1", a.http).as_str())
    );

    let counted = |addr: SocketAddr, name: &str| {
        get(addr, "/metrics")
            .unwrap()
            .text()
            .lines()
            .any(|l| l.starts_with(name) && !l.ends_with(" 0"))
    };
    assert!(counted(
        b.http,
        "packgate_cluster_proxied_total{status=\"200\"}"
    ));
    assert!(counted(c.http, "packgate_cluster_redirects_total"));
    assert!(counted(
        b.http,
        "packgate_cluster_lookups_total{result=\"cached\"}"
    ));

    // A publish of the same name to B is refused before it starts: A owns it.
    let mut dup = publish(b.rtmp, "live", "show", &sample, -1);
    assert!(
        dup.wait_for(Duration::from_secs(10)).is_some(),
        "a duplicate publish to node B was not refused"
    );
    assert!(redis(rport, &format!("EXISTS {KEY}")).unwrap() == ":1");
    let still = get(b.http, "/live/show/index.m3u8").unwrap();
    assert_eq!(
        (still.status, still.header("x-packgate-node")),
        (200, Some("node-a"))
    );

    // Unpublish: the entry goes at once, and B stops finding the stream.
    assert!(publisher.signal("INT"));
    publisher.wait_for(Duration::from_secs(5));
    drop(publisher);
    poll(Duration::from_secs(3), || {
        redis(rport, &format!("EXISTS {KEY}"))
            .ok()
            .filter(|l| l == ":0")
    })
    .expect("registry entry removed on unpublish");
    poll(Duration::from_secs(3), || {
        get(b.http, "/live/show/index.m3u8")
            .ok()
            .filter(|r| r.status == 404)
    })
    .expect("B answers 404 once the stream is unpublished");

    // Publish again, then kill -9 node A: the entry expires within the TTL.
    let _again = publish(a.rtmp, "live", "show", &sample, -1);
    poll(Duration::from_secs(20), || {
        get(b.http, "/live/show/src/video.m3u8")
            .ok()
            .filter(|r| r.status == 200 && r.text().contains(".m4s"))
    })
    .expect("republished stream served through B");
    a.proc.0.kill().unwrap();
    a.proc.0.wait().unwrap();
    let killed = Instant::now();
    let margin = Duration::from_secs_f64(TTL + 2.0);
    poll(margin, || {
        redis(rport, &format!("EXISTS {KEY}"))
            .ok()
            .filter(|l| l == ":0")
    })
    .expect("registry entry expired after node A died");
    let expired = killed.elapsed();
    poll(Duration::from_secs(3), || {
        get(b.http, "/live/show/index.m3u8")
            .ok()
            .filter(|r| r.status == 404)
    })
    .expect("B answers 404 once A's entry expired");
    println!(
        "entry expired {:.1} s after kill -9 (ttl {TTL} s); test took {:.1} s",
        expired.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_down_keeps_local_streams_and_registers_once_it_is_back() {
    let rport = free_port();
    let mut config = common::test_config();
    config.cluster.enabled = true;
    config.cluster.redis = format!("redis://127.0.0.1:{rport}");
    config.cluster.node_id = "lonely".into();
    config.cluster.advertise = "http://127.0.0.1:1".into();
    config.cluster.ttl = TTL;
    config.cluster.redis_timeout = 0.2;
    let (rt, server) = common::start(config);
    let http = server.http_addr;
    // No Redis: the publish goes on and the stream is served locally.
    let _p = publish(server.rtmp_addr, "live", "solo", &long_sample(60), -1);
    poll(Duration::from_secs(20), || {
        get(http, "/live/solo/src/video.m3u8")
            .ok()
            .filter(|r| r.status == 200 && r.text().contains(".m4s"))
    })
    .expect("stream served locally while Redis is down");
    assert_eq!(get(http, "/live/other/index.m3u8").unwrap().status, 404);
    let metrics = get(http, "/metrics").unwrap().text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("packgate_cluster_redis_errors_total") && !l.ends_with(" 0")),
        "no Redis errors counted"
    );
    // Redis comes up: the back-off (at most 5 s) ends and the stream is registered.
    let _redis = start_redis(rport);
    poll(Duration::from_secs(10), || {
        redis(rport, "GET packgate:stream:live/solo")
            .ok()
            .filter(|l| l.starts_with('$') && l != "$-1")
    })
    .expect("stream registered once Redis is reachable");

    // Two nodes that both took a publish while they could not see each other: the one
    // that finds the other's entry at its next refresh disconnects its publisher.
    let mut duo = publish(server.rtmp_addr, "live", "duo", &long_sample(60), -1);
    let duo_key = "packgate:stream:live/duo";
    poll(Duration::from_secs(20), || {
        redis(rport, &format!("EXISTS {duo_key}"))
            .ok()
            .filter(|l| l == ":1")
    })
    .expect("second stream registered");
    let intruder = r#"{"node":"intruder","url":"http://127.0.0.1:1"}"#;
    let set = format!("SET {duo_key} '{intruder}' PX 60000");
    assert_eq!(redis(rport, &set).unwrap(), "+OK");
    assert!(
        duo.wait_for(Duration::from_secs(5)).is_some(),
        "the publisher of a name another node holds was not disconnected"
    );
    // A clean shutdown releases this node's entries at once, and only its own.
    rt.block_on(server.shutdown());
    assert_eq!(
        redis(rport, "EXISTS packgate:stream:live/solo").unwrap(),
        ":0"
    );
    assert!(redis(rport, &format!("GET {duo_key}"))
        .unwrap()
        .starts_with('$'));
}

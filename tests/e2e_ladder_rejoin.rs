//! A ladder rung whose encoder is killed (SIGKILL) and restarted 3 s later rejoins the
//! ladder aligned: after the restart both rungs give the same media sequence number to
//! segments starting at the same media time (tfdt and EXT-X-PROGRAM-DATE-TIME), the
//! numbers the rung missed are listed as EXT-X-GAP (and answer 404), the API does not call
//! the ladder misaligned, and hls.js and dash.js, started on that rung, play on (hls.js may
//! fail over to the other rung while the playlist of the killed one stands still: its
//! error recovery does so even with a level chosen by the page).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::http::get;
use common::watch::{assert_resumed, Watcher};
use common::{browser, long_sample_sized, poll, publish, start, test_config, tools, Proc};

/// Seconds each player plays.
const WINDOW: u32 = 30;
/// Seconds the encoder is gone.
const GAP: u64 = 3;
/// How soon after the restart playback must move again, seconds.
const RESUME_WITHIN: f64 = 6.0;
/// The rung that is killed and restarted: the lower one, level 0 for the players, which
/// also supplies the ladder's audio until it goes.
const KILLED: &str = "360p";
/// The rung that plays on.
const STEADY: &str = "720p";
/// Largest start-time difference between rungs for the same number, ms (one frame).
const ALIGNED_MS: f64 = 34.0;

/// One listed segment of a media playlist.
#[derive(Debug, Clone)]
struct Entry {
    uri: String,
    gap: bool,
    /// Follows an EXT-X-DISCONTINUITY.
    after_discontinuity: bool,
    /// EXT-X-PROGRAM-DATE-TIME, ms since the epoch.
    date_ms: f64,
}

/// A media playlist's segments by media sequence number.
fn listing(http: SocketAddr, path: &str) -> BTreeMap<u64, Entry> {
    let text = get(http, path).map(|r| r.text()).unwrap_or_default();
    let mut msn = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let (mut gap, mut disc, mut date) = (false, false, 0.0);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line == "#EXT-X-GAP" {
            gap = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = chrono_ms(d);
        } else if !line.starts_with('#') && !line.is_empty() {
            let entry = Entry {
                uri: line.to_string(),
                gap: std::mem::take(&mut gap),
                after_discontinuity: std::mem::take(&mut disc),
                date_ms: date,
            };
            out.insert(msn, entry);
            msn += 1;
        }
    }
    out
}

/// `2026-11-30T04:39:28.123Z` as ms since the epoch (UTC, as packgate writes it).
fn chrono_ms(s: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16))
    else {
        return f64::NAN;
    };
    let secs: f64 = s
        .get(17..)
        .and_then(|v| v.trim_end_matches('Z').parse().ok())
        .unwrap_or(f64::NAN);
    // Days since the epoch (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + h * 3600 + mi * 60) as f64 + secs) * 1000.0
}

/// tfdt of segment `uri` (relative to the rung's playlist) in seconds.
fn tfdt(http: SocketAddr, rung: &str, uri: &str) -> Option<f64> {
    let r = get(http, &format!("/live/rj/{rung}/{uri}")).ok()?;
    (r.status == 200).then(|| common::mp4::base_decode_time(&r.body) as f64 / 90_000.0)
}

/// Seconds of the rungs' sources: no `-stream_loop`, whose loop points shift each rung's
/// timestamps by a few ms at different times once one rung has restarted.
const SOURCE_SECS: u32 = 60;

fn rung(rtmp: SocketAddr, label: &str) -> Proc {
    let source = match label {
        "360p" => long_sample_sized(SOURCE_SECS, (640, 360), "500k"),
        _ => long_sample_sized(SOURCE_SECS, (1280, 720), "1200k"),
    };
    publish(rtmp, "live", &format!("rj_{label}"), &source, 0)
}

/// What the two rungs' video playlists say after the reconnect.
#[derive(Debug)]
struct Rejoin {
    /// Numbers listed with media by both rungs since the reconnect.
    common: Vec<u64>,
    /// Largest start difference (tfdt) for the same number, ms.
    worst_tfdt_ms: f64,
    /// Largest EXT-X-PROGRAM-DATE-TIME difference for the same number, ms.
    worst_date_ms: f64,
    /// The restarted rung's gap numbers and their URIs.
    gaps: Vec<(u64, String)>,
    /// Its first number with media after the reconnect.
    first_back: u64,
    /// Its last number with media before the kill.
    last_gone: Option<u64>,
}

/// Compares the rungs once the restarted one has three segments after its discontinuity.
fn rejoin(http: SocketAddr) -> Option<Rejoin> {
    let back = listing(http, &format!("/live/rj/{KILLED}/video.m3u8"));
    let other = listing(http, &format!("/live/rj/{STEADY}/video.m3u8"));
    let first_back = back
        .iter()
        .find(|(_, e)| e.after_discontinuity)
        .map(|(seq, _)| *seq)?;
    let common: Vec<u64> = back
        .range(first_back..)
        .filter(|(seq, e)| !e.gap && other.get(seq).is_some_and(|o| !o.gap))
        .map(|(seq, _)| *seq)
        .collect();
    if common.len() < 3 {
        return None;
    }
    let (mut worst_tfdt_ms, mut worst_date_ms) = (0f64, 0f64);
    for seq in &common {
        let (a, b) = (&back[seq], &other[seq]);
        let (ta, tb) = (tfdt(http, KILLED, &a.uri)?, tfdt(http, STEADY, &b.uri)?);
        worst_tfdt_ms = worst_tfdt_ms.max((ta - tb).abs() * 1000.0);
        worst_date_ms = worst_date_ms.max((a.date_ms - b.date_ms).abs());
    }
    let gaps = back
        .iter()
        .filter(|(_, e)| e.gap)
        .map(|(seq, e)| (*seq, e.uri.clone()))
        .collect();
    Some(Rejoin {
        common,
        worst_tfdt_ms,
        worst_date_ms,
        gaps,
        first_back,
        last_gone: back
            .range(..first_back)
            .rfind(|(_, e)| !e.gap)
            .map(|(seq, _)| *seq),
    })
}

fn api(http: SocketAddr) -> serde_json::Value {
    serde_json::from_slice(&get(http, "/api/streams/live/rj").unwrap().body).unwrap()
}

#[test]
fn a_restarted_rung_rejoins_the_ladder_aligned_and_players_go_on() {
    tools::browser_dir();
    // Made before the server starts (once per build directory).
    long_sample_sized(SOURCE_SECS, (640, 360), "500k");
    long_sample_sized(SOURCE_SECS, (1280, 720), "1200k");
    let (_rt, server) = start(test_config());
    let (rtmp, http) = (server.rtmp_addr, server.http_addr);
    let killed = rung(rtmp, KILLED);
    std::thread::sleep(Duration::from_millis(300));
    let _steady = rung(rtmp, STEADY);
    poll(Duration::from_secs(30), || {
        let master = get(http, "/live/rj/index.m3u8").ok()?.text();
        let ready = ["360p", "720p"]
            .iter()
            .all(|l| listing(http, &format!("/live/rj/{l}/video.m3u8")).len() >= 2);
        (master.matches("#EXT-X-STREAM-INF").count() == 2 && ready).then_some(())
    })
    .expect("a two-rung ladder");

    let watcher = Watcher::start(
        http,
        &[
            &format!("/live/rj/{KILLED}/video.m3u8"),
            &format!("/live/rj/{KILLED}/audio.m3u8"),
            &format!("/live/rj/{KILLED}/ts.m3u8"),
            &format!("/live/rj/{STEADY}/video.m3u8"),
            "/live/rj/audio.m3u8",
        ],
    );
    // Both players start locked to the rung that will be killed (level 0).
    let hls_url = format!("http://{http}/live/rj/index.m3u8");
    let dash_url = format!("http://{http}/live/rj/index.mpd");
    let hls = std::thread::spawn(move || {
        let args = ["--hls-config", "{}", "--series", "--level", "0"];
        browser::play(&hls_url, "hls", WINDOW, &args)
    });
    let dash = std::thread::spawn(move || {
        let args = ["--low-latency", "--series"];
        browser::play(&dash_url, "dash", WINDOW, &args)
    });
    std::thread::sleep(Duration::from_secs(8));
    // Kill late in a segment (1.6 s after a boundary), so that the 3 s absence spans at
    // least one whole ladder boundary whatever the encoder's start-up burst: the restarted
    // rung then has numbers to leave as gaps.
    let newest = || {
        listing(http, &format!("/live/rj/{KILLED}/video.m3u8"))
            .keys()
            .last()
            .copied()
    };
    let before = newest();
    poll(Duration::from_secs(5), || {
        (newest() != before).then_some(())
    })
    .expect("a segment finishes");
    std::thread::sleep(Duration::from_millis(1600));
    let last_before = newest().expect("segments");
    drop(killed); // SIGKILL: no unpublish
    std::thread::sleep(Duration::from_secs(1));
    let during = api(http);
    std::thread::sleep(Duration::from_secs(GAP - 1));
    let restarted = SystemTime::now();
    let _killed = rung(rtmp, KILLED);
    let after = poll(Duration::from_secs(20), || rejoin(http))
        .expect("three common segments after the restart");
    let api_after = api(http);
    let gap_status: Vec<u16> = after
        .gaps
        .iter()
        .map(|(_, uri)| {
            get(http, &format!("/live/rj/{KILLED}/{uri}"))
                .unwrap()
                .status
        })
        .collect();
    let hls = hls.join().expect("hls player");
    let dash = dash.join().expect("dash player");
    let seen = watcher.stop();
    let api_end = api(http);

    eprintln!("rejoin: {after:?}; gap URIs answer {gap_status:?}");
    let state = |v: &serde_json::Value, label: &str| {
        v["renditions"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == label))
            .map(|r| r["state"].clone())
    };
    assert_eq!(
        state(&during, KILLED),
        Some("reconnect-wait".into()),
        "API during the gap: {during}"
    );
    assert!(
        after.worst_tfdt_ms <= ALIGNED_MS && after.worst_date_ms <= ALIGNED_MS,
        "same numbers, different media times after the rejoin: {after:?}"
    );
    assert!(
        after.common.windows(2).all(|w| w[1] == w[0] + 1),
        "both rungs list the same numbers with media: {after:?}"
    );
    // Every number between the last segment before the kill and the first after the
    // restart is a gap, and there is at least one.
    let missed: Vec<u64> = after
        .last_gone
        .map_or(Vec::new(), |last| (last + 1..after.first_back).collect());
    let gap_numbers: Vec<u64> = after.gaps.iter().map(|(seq, _)| *seq).collect();
    assert!(
        !missed.is_empty() && missed == gap_numbers,
        "a 3 s absence leaves EXT-X-GAP numbers: killed after {last_before}, {after:?}"
    );
    assert!(gap_status.iter().all(|s| *s == 404), "{gap_status:?}");
    for v in [&api_after, &api_end] {
        assert_eq!(
            v["aligned"], true,
            "the API reports the ladder misaligned: {v}"
        );
    }
    seen.assert_live_and_contiguous();
    // The ladder's audio moved to the steady rung when the killed one went, and stays
    // there: it lists no gap, and no segment changed its numbers (checked above).
    let ladder_audio_gaps: Vec<_> = seen
        .gaps
        .iter()
        .filter(|g| g.starts_with("/live/rj/audio.m3u8:"))
        .collect();
    assert!(ladder_audio_gaps.is_empty(), "{ladder_audio_gaps:?}");
    let first_gap = after.gaps[0].0;
    for (feed, uri) in [
        ("audio", format!("audio/{first_gap}.m4s")),
        ("ts", format!("ts/{first_gap}.ts")),
    ] {
        assert!(
            seen.gaps
                .contains(&format!("/live/rj/{KILLED}/{feed}.m3u8:{uri}")),
            "the killed rung's {feed} playlist lists its gaps too: {:?}",
            seen.gaps
        );
    }

    for (player, r) in [("hls.js", &hls), ("dash.js", &dash)] {
        assert_resumed(player, r, restarted, RESUME_WITHIN);
        assert!(
            !r["errors"].to_string().contains("levelParsingError"),
            "{player}: a playlist changed under the player: {r}"
        );
        // Gap segments are never requested (hls.js honours EXT-X-GAP; DASH never lists them).
        let requested_gap = after.gaps.iter().find(|(_, uri)| {
            r["httpErrors"]
                .to_string()
                .contains(&format!("/live/rj/{KILLED}/{uri}\""))
        });
        assert!(
            requested_gap.is_none(),
            "{player} requested {requested_gap:?}: {r}"
        );
    }
}

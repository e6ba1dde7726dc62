//! Ingest cost per RTMP message, end to end without sockets: chunk stream → session →
//! FLV demux → segmenter → CMAF (+ TS) muxers → in-memory windows.
//!
//! `cargo bench --bench ingest` publishes samples/h264_aac_1280x720.flv (looped) from the
//! in-memory client session into the real server-side `Ingest`, once with every output on
//! and once with CMAF HLS only, and prints ns per RTMP message and the CPU share of one
//! core a real-time stream of that sample costs.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use packgate::config::Config;
use packgate::flv::file::read_tags;
use packgate::hub::Hub;
use packgate::rtmp::client::{ClientEvent, ClientSession};
use packgate::rtmp::ingest::Ingest;

const LOOPS: u32 = 8;
const ROUNDS: usize = 5;

/// Pre-encodes the whole publish: handshake replies are exchanged live, media is chunked
/// up front so the measurement covers only the server side.
fn run(
    config: &Config,
    tags: &[packgate::flv::file::FileTag],
    sample_ms: u32,
) -> (f64, usize, f64) {
    let hub = Hub::new(Arc::new(config.clone()));
    let mut ingest = Ingest::new(hub, 1);
    let (mut client, c0c1) = ClientSession::new("live", "bench", false, 4096);
    let mut to_server = vec![c0c1];
    let mut accepted = false;
    for _ in 0..20 {
        for b in std::mem::take(&mut to_server) {
            ingest.input(&b).expect("handshake");
        }
        for b in std::mem::take(&mut ingest.out) {
            for e in client.handle_input(&b).expect("client") {
                match e {
                    ClientEvent::Send(b) => to_server.push(b),
                    ClientEvent::PublishAccepted => accepted = true,
                    _ => {}
                }
            }
        }
    }
    assert!(accepted, "publish not accepted");
    let mut messages: Vec<Bytes> = Vec::new();
    for l in 0..LOOPS {
        for t in tags {
            // Sequence headers once; later loops continue the timeline.
            let header = t.body.len() > 1 && t.body[1] == 0 && (t.kind == 8 || t.kind == 9);
            if l > 0 && header {
                continue;
            }
            let ts = t.timestamp + l * sample_ms;
            match t.kind {
                8 => messages.push(client.audio(ts, t.body.clone())),
                9 if !(t.body.len() > 1 && t.body[1] == 2) => {
                    messages.push(client.video(ts, t.body.clone()))
                }
                _ => {}
            }
        }
    }
    let bytes: usize = messages.iter().map(Bytes::len).sum();
    let start = Instant::now();
    for m in &messages {
        ingest.input(m).expect("ingest");
    }
    ingest.unpublish();
    let secs = start.elapsed().as_secs_f64();
    (
        secs,
        messages.len(),
        bytes as f64 * 8.0 / (f64::from(LOOPS * sample_ms) / 1000.0),
    )
}

fn main() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/h264_aac_1280x720.flv"
    ))
    .expect("sample");
    let tags = read_tags(Bytes::from(data)).expect("FLV");
    let sample_ms = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) + 33;
    let all = Config::default();
    let mut cmaf_only = Config::default();
    cmaf_only.outputs.hls_ts = false;
    cmaf_only.outputs.dash = false;
    for (name, config) in [
        ("CMAF HLS + TS HLS + DASH", &all),
        ("CMAF HLS only", &cmaf_only),
    ] {
        let mut best = f64::MAX;
        let (mut n, mut bps) = (0, 0.0);
        // `-- --quick` (CI's smoke run): one round.
        let rounds = if std::env::args().any(|a| a == "--quick") {
            1
        } else {
            ROUNDS
        };
        for _ in 0..rounds {
            let (secs, count, rate) = run(config, &tags, sample_ms);
            best = best.min(secs);
            n = count;
            bps = rate;
        }
        let media_secs = f64::from(LOOPS * sample_ms) / 1000.0;
        println!(
            "{name:<26} {n} messages, {:.2} Mbit/s stream: {:.2} µs per message, {:.3} % of one core in real time (best of {rounds})",
            bps / 1e6,
            best * 1e6 / n as f64,
            100.0 * best / media_secs
        );
    }
}

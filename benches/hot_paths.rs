//! Micro-benchmarks of the ingest and serving hot paths, one stage at a time, with the
//! Prometheus recorder installed as the server installs it (so metrics calls cost what
//! they cost in production):
//!
//! - chunk decode: RTMP chunk stream (4096-byte chunks, fed in 16 KiB reads) → messages
//! - FLV tag → frame: tag bodies → `Frame`s (sequence headers, CTS, unwrapping)
//! - fMP4 part write: 200 ms of video samples → `moof` + `mdat`
//! - TS packetize: a 2 s segment of video + audio → MPEG-TS
//! - playlist render: the LL-HLS media playlist of a 6-segment window with parts
//!
//! `cargo bench --bench hot_paths` prints ns per operation (best of several rounds);
//! `-- --quick` runs each once, briefly (CI's smoke run: it checks that they run, not speed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use packgate::config::Config;
use packgate::flv::demux::{DemuxEvent, TagDemuxer};
use packgate::flv::file::{read_tags, FileTag};
use packgate::hub::Hub;
use packgate::media::{CodecConfig, Frame, Sample, TrackKind};
use packgate::mux::fmp4;
use packgate::mux::ts::{TsMuxer, TsVideo};
use packgate::playlist::media::{Container, LowLatency, MediaPlaylist};
use packgate::rtmp::chunk::{ChunkDecoder, ChunkEncoder};
use packgate::rtmp::client::{ClientEvent, ClientSession};
use packgate::rtmp::ingest::Ingest;
use packgate::rtmp::message::Message;

const ROUNDS: usize = 7;
/// Each round runs the body at least this long.
const ROUND: Duration = Duration::from_millis(200);

/// `--quick`: one short round per benchmark.
fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Best ns per operation of `body`, which does `ops` operations per call.
fn bench(name: &str, unit: &str, ops: usize, mut body: impl FnMut() -> usize) {
    let mut best = f64::MAX;
    let mut check = 0;
    let (rounds, round) = if quick() {
        (1, Duration::from_millis(10))
    } else {
        (ROUNDS, ROUND)
    };
    for _ in 0..rounds {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < round {
            check ^= std::hint::black_box(body());
            calls += 1;
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(calls) / ops.max(1) as f64;
        best = best.min(ns);
    }
    std::hint::black_box(check);
    println!("{name:<22} {best:>12.1} ns/{unit}");
}

fn sample_tags() -> Vec<FileTag> {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/h264_aac_640x360.flv"
    ))
    .expect("sample");
    read_tags(Bytes::from(data))
        .expect("FLV")
        .into_iter()
        .filter(|t| t.kind == 8 || t.kind == 9)
        .collect()
}

/// The frames and codec configurations of the sample, as the demuxer makes them.
fn demux(tags: &[FileTag]) -> (Vec<Frame>, Vec<CodecConfig>) {
    let mut d = TagDemuxer::new();
    let (mut frames, mut configs) = (Vec::new(), Vec::new());
    for t in tags {
        let ev = if t.kind == 9 {
            d.video(t.timestamp, t.body.clone())
        } else {
            d.audio(t.timestamp, t.body.clone())
        };
        match ev.expect("demux") {
            Some(DemuxEvent::Frame(f)) => frames.push(f),
            Some(DemuxEvent::Config(c)) => configs.push(c),
            _ => {}
        }
    }
    (frames, configs)
}

/// Frames of one kind as samples on the 90 kHz clock (durations from the next frame).
fn samples(frames: &[Frame], kind: TrackKind) -> Vec<Sample> {
    let f: Vec<&Frame> = frames.iter().filter(|f| f.kind == kind).collect();
    f.iter()
        .enumerate()
        .map(|(i, x)| Sample {
            dts: x.dts,
            duration: f.get(i + 1).map_or(3000, |n| (n.dts - x.dts) as u32),
            cts: (x.pts - x.dts) as i32,
            keyframe: x.keyframe,
            data: x.data.clone(),
        })
        .collect()
}

fn chunk_decode(tags: &[FileTag]) {
    let mut stream = BytesMut::new();
    ChunkEncoder::default().encode(&Message::SetChunkSize(4096).encode(0, 0), &mut stream);
    let mut enc = ChunkEncoder::default();
    enc.set_chunk_size(4096);
    for t in tags {
        let m = if t.kind == 9 {
            Message::Video(t.body.clone())
        } else {
            Message::Audio(t.body.clone())
        };
        enc.encode(&m.encode(1, t.timestamp), &mut stream);
    }
    let stream = stream.freeze();
    bench("chunk decode", "message", tags.len() + 1, || {
        let mut d = ChunkDecoder::new();
        let mut n = 0;
        for read in stream.chunks(16 * 1024) {
            d.push(read);
            while let Some(m) = d.next_message().expect("decode") {
                n += m.payload.len();
            }
        }
        n
    });
}

fn playlist_render(tags: &[FileTag]) {
    // The real pipeline fills a window: 12 s of the sample, published in memory.
    let hub = Hub::new(Arc::new(Config::default()));
    let mut ingest = Ingest::new(hub.clone(), 1);
    let (mut client, c0c1) = ClientSession::new("live", "bench", false, 4096);
    let mut to_server = vec![c0c1];
    for _ in 0..20 {
        for b in std::mem::take(&mut to_server) {
            ingest.input(&b).expect("handshake");
        }
        for b in std::mem::take(&mut ingest.out) {
            for e in client.handle_input(&b).expect("client") {
                if let ClientEvent::Send(b) = e {
                    to_server.push(b);
                }
            }
        }
    }
    for t in tags {
        let bytes = if t.kind == 9 {
            client.video(t.timestamp, t.body.clone())
        } else {
            client.audio(t.timestamp, t.body.clone())
        };
        ingest.input(&bytes).expect("ingest");
    }
    let ladder = hub.ladder("live", "bench").expect("ladder");
    let rendition = ladder.renditions().into_iter().next().expect("rendition");
    let state = rendition.read();
    let window = &state.video.as_ref().expect("video").window;
    let playlist = MediaPlaylist {
        window,
        prefix: "video",
        container: Container::Cmaf,
        target: 2,
        ended: false,
        low_latency: Some(LowLatency {
            part_target: 0.2,
            hold_back_parts: 3.0,
            skip: false,
            reports: Vec::new(),
        }),
    };
    let size = playlist.render().len();
    bench(
        &format!("playlist render ({size} B)"),
        "playlist",
        1,
        || playlist.render().len(),
    );
}

fn main() {
    // As the server does at start: every metrics call below goes to a real recorder.
    assert!(
        packgate::http::metrics::handle().is_some(),
        "recorder installed"
    );
    let tags = sample_tags();
    chunk_decode(&tags);

    bench("FLV tag → frame", "tag", tags.len(), || {
        let mut d = TagDemuxer::new();
        let mut n = 0;
        for t in &tags {
            let ev = if t.kind == 9 {
                d.video(t.timestamp, t.body.clone())
            } else {
                d.audio(t.timestamp, t.body.clone())
            };
            n += usize::from(matches!(ev, Ok(Some(DemuxEvent::Frame(_)))));
        }
        n
    });

    let (frames, configs) = demux(&tags);
    let video = samples(&frames, TrackKind::Video);
    let audio = samples(&frames, TrackKind::Audio);
    let parts: Vec<&[Sample]> = video.chunks(6).collect();
    bench("fMP4 part write", "part", parts.len(), || {
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| fmp4::fragment(1, i as u32, p).expect("fragment").len())
            .sum()
    });

    let avc = configs.iter().find_map(|c| match c {
        CodecConfig::H264(a) => Some(a.clone()),
        _ => None,
    });
    let aac = configs.iter().find_map(|c| match c {
        CodecConfig::Aac(a) => Some(a.clone()),
        _ => None,
    });
    let (avc, aac) = (avc.expect("avc config"), aac.expect("aac config"));
    // 2 s segments: 60 video frames and the audio frames of the same span.
    let segments: Vec<(&[Sample], &[Sample])> = video
        .chunks(60)
        .map(|v| {
            let (from, to) = (
                v[0].dts,
                v[v.len() - 1].dts + i64::from(v[v.len() - 1].duration),
            );
            let a0 = audio.partition_point(|a| a.dts < from);
            let a1 = audio.partition_point(|a| a.dts < to);
            (v, &audio[a0..a1])
        })
        .collect();
    bench("TS packetize", "segment", segments.len(), || {
        let mut mux = TsMuxer::new();
        segments
            .iter()
            .map(|(v, a)| {
                mux.segment(Some((TsVideo::H264(&avc), v)), Some((&aac, a)))
                    .expect("ts")
                    .len()
            })
            .sum()
    });

    playlist_render(&tags);
}

//! `packgate-load`: publishers and viewers against a running packgate (or nginx-rtmp), with
//! a table and a one-line JSON report on stdout. See `packgate::load`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use packgate::load::publisher::Sample;
use packgate::load::retime::{publish_retimed_at, Stamps};
use packgate::load::{run, LoadConfig};

#[derive(Parser, Debug)]
#[command(about = "Load generator: real-time RTMP publishers and HLS / LL-HLS / LL-DASH viewers")]
struct Args {
    /// RTMP server address.
    #[arg(long, default_value = "127.0.0.1:1935")]
    rtmp: SocketAddr,
    /// HTTP server address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// RTMP app.
    #[arg(long, default_value = "live")]
    app: String,
    /// Streams (ladders) to publish.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Stream names are PREFIX0, PREFIX1, … (PREFIXi_LABEL for ladder rungs).
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Sample FLV for plain streams.
    #[arg(long, default_value = "samples/h264_aac_640x360.flv")]
    sample: PathBuf,
    /// Ladder rungs instead of one sample: LABEL=FILE, repeated or comma-separated.
    #[arg(long, value_delimiter = ',')]
    ladder: Vec<String>,
    /// Classic HLS viewers in all (spread over the streams).
    #[arg(long, default_value_t = 0)]
    hls: usize,
    /// LL-HLS viewers in all.
    #[arg(long, default_value_t = 0)]
    ll: usize,
    /// LL-DASH viewers in all.
    #[arg(long, default_value_t = 0)]
    dash: usize,
    /// Classic HLS URL path ({app}, {stream}, {rendition} filled in).
    #[arg(long, default_value = "/{app}/{stream}/ts.m3u8")]
    hls_url: String,
    /// LL-HLS URL path, or "none" when the server has no LL-HLS.
    #[arg(long, default_value = "/{app}/{stream}/index.m3u8")]
    ll_url: String,
    /// DASH MPD URL path, or "none".
    #[arg(long, default_value = "/{app}/{stream}/index.mpd")]
    dash_url: String,
    /// Whole run, seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds before the steady window opens.
    #[arg(long, default_value_t = 10.0)]
    warmup: f64,
    /// Length of the steady window in seconds (default: until the end of the run), so that
    /// other load (wrk) can follow it while the publishers go on.
    #[arg(long)]
    window: Option<f64>,
    /// Server pid: CPU and RSS of its process tree are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Streams whose publish → first part/segment time is probed.
    #[arg(long, default_value_t = 10)]
    probe: usize,
    /// Worker threads of the generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Instead of the load: publish this FLV in real time (or at --speed), looped, as stream
    /// PREFIX for --duration seconds of media, with the timestamps --start-ms, --jump-back and --wrap-bits
    /// make (what an encoder whose clock jumps or wraps sends; the soak uses it).
    #[arg(long)]
    retime: Option<PathBuf>,
    /// --retime: the first timestamp, ms.
    #[arg(long, default_value_t = 0)]
    start_ms: u64,
    /// --retime: "BACK/EVERY" seconds, e.g. 60/120 steps the clock back a minute every
    /// two minutes of media.
    #[arg(long)]
    jump_back: Option<String>,
    /// --retime: timestamps wrap at 2^BITS ms (31 as ffmpeg's and OBS's FLV muxers write
    /// them, 32 as RTMP allows).
    #[arg(long, default_value_t = 32)]
    wrap_bits: u32,
    /// --retime: media seconds sent per second (e.g. 12 fills a 2 h DVR window in 10 min).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

fn load_sample(path: &PathBuf) -> anyhow::Result<Arc<Sample>> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let s =
        Sample::parse(Bytes::from(data)).with_context(|| format!("parse {}", path.display()))?;
    Ok(Arc::new(s))
}

/// `--retime`: one publish with rewritten timestamps, until its media runs out.
fn retime(args: &Args, file: &std::path::Path) -> anyhow::Result<()> {
    let (back, every) = match &args.jump_back {
        Some(s) => {
            let (b, e) = s.split_once('/').context("--jump-back wants BACK/EVERY")?;
            (b.parse::<u64>()? * 1000, e.parse::<u64>()? * 1000)
        }
        None => (0, 0),
    };
    let stamps = Stamps {
        start_ms: args.start_ms,
        every_ms: every,
        back_ms: back,
        wrap_bits: args.wrap_bits,
    };
    let secs = args.duration.max(0.0) as u64;
    let (app, name) = (&args.app, &args.prefix);
    publish_retimed_at(args.rtmp, app, name, file, secs, args.speed, move |t| {
        Some(stamps.stamp(t.media_ms))
    })?
    .join()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(file) = &args.retime {
        return retime(&args, file);
    }
    let _ = packgate::fdlimit::raise();
    let mut cfg = LoadConfig::packgate(args.rtmp, args.http, load_sample(&args.sample)?);
    if !args.ladder.is_empty() {
        cfg.rungs = args
            .ladder
            .iter()
            .map(|r| {
                let (label, file) = r.split_once('=').context("--ladder wants LABEL=FILE")?;
                Ok((label.to_string(), load_sample(&PathBuf::from(file))?))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let none = |s: String| (s != "none").then_some(s);
    cfg.app = args.app;
    cfg.streams = args.streams;
    cfg.prefix = args.prefix;
    cfg.hls_viewers = args.hls;
    cfg.ll_viewers = args.ll;
    cfg.dash_viewers = args.dash;
    cfg.hls_url = args.hls_url;
    cfg.ll_url = none(args.ll_url);
    cfg.dash_url = none(args.dash_url);
    cfg.duration = Duration::from_secs_f64(args.duration);
    cfg.warmup = Duration::from_secs_f64(args.warmup.min(args.duration));
    cfg.window = args.window.map(Duration::from_secs_f64);
    cfg.server_pid = args.server_pid;
    cfg.probe_streams = args.probe;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(run(cfg));
    print!("{}", report.table());
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

//! The encoder sources of issue 9 (listed in `sources.tsv`, which the benches share): FLV
//! files made once per build directory with ffmpeg 9 and published with `-re -c copy`, or
//! a live GStreamer rtmp2sink pipeline.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{tools, Proc};

const TABLE: &str = include_str!("sources.tsv");

/// One source: how its file is encoded and how it is published.
#[derive(Clone, Debug)]
pub struct Source {
    /// Its name (also used as the stream name).
    pub name: String,
    /// A fixed-length clip published in a loop (`-stream_loop -1`), seconds.
    pub loop_secs: Option<u32>,
    video: String,
    audio_rate: u32,
    encoder: Vec<String>,
}

/// Every source, in the table's order.
pub fn all() -> Vec<Source> {
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 5, "bad sources.tsv line {l:?}");
            Source {
                name: cols[0].to_string(),
                loop_secs: cols[1].parse().ok(),
                video: cols[2].to_string(),
                audio_rate: cols[3].parse().expect("audio rate"),
                encoder: cols[4].split_whitespace().map(str::to_string).collect(),
            }
        })
        .collect()
}

/// The source called `name`.
pub fn by_name(name: &str) -> Source {
    all()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no source {name} in sources.tsv"))
}

impl Source {
    /// True for the live GStreamer pipeline (no file).
    pub fn is_live(&self) -> bool {
        self.name == "gstreamer"
    }

    /// The source's FLV, at least `secs` long (or its clip length when looped), made once
    /// per build directory.
    pub fn file(&self, secs: u32) -> PathBuf {
        let secs = self.loop_secs.unwrap_or(secs);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("source_{}_{secs}s.flv", self.name));
        if path.exists() {
            return path;
        }
        let partial = dir.join(format!(
            "source_{}_{secs}s.{}.tmp.flv",
            self.name,
            std::process::id()
        ));
        let status = Command::new(tools::ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", &format!("testsrc2={}", self.video)])
            .args([
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency=440:sample_rate={}", self.audio_rate),
            ])
            .args(["-t", &secs.to_string()])
            .args(&self.encoder)
            .args(["-f", "flv"])
            .arg(&partial)
            .status()
            .expect("run ffmpeg to make a source");
        assert!(status.success(), "ffmpeg could not make {}", path.display());
        std::fs::rename(&partial, &path).expect("rename source");
        path
    }

    /// Starts publishing to `rtmp://addr/app/name` for at least `secs` seconds: the file
    /// with `-re -c copy` (looped forever for a looped clip), or the live pipeline (until
    /// the returned guard is dropped).
    pub fn publish(&self, rtmp: std::net::SocketAddr, app: &str, name: &str, secs: u32) -> Proc {
        let url = format!("rtmp://{rtmp}/{app}/{name}");
        if self.is_live() {
            return gstreamer(&url);
        }
        let file = self.file(secs);
        let loops = if self.loop_secs.is_some() { "-1" } else { "0" };
        let child = Command::new(tools::ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-stream_loop", loops, "-i"])
            .arg(file)
            .args(["-c", "copy", "-f", "flv", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ffmpeg");
        Proc(child)
    }
}

/// A live 640x360 30 fps H.264 (2 s GOP) + AAC 48 kHz stream from GStreamer's rtmp2sink.
fn gstreamer(url: &str) -> Proc {
    let pipeline = format!(
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1200 ! h264parse ! queue \
         ! flvmux name=m streamable=true ! rtmp2sink location={url} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! m."
    );
    let child = Command::new(tools::gst_launch())
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn gst-launch-1.0");
    Proc(child)
}

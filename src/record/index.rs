//! The on-disk layout of a recording and its index, written as it grows so that a killed
//! process leaves files that read back: `{dir}/{app}/{name}/{start}/` holds `session.json`,
//! `ended.json` once closed, and per rendition `{label}/{track}-{n}.mp4` (a fragmented MP4:
//! init segment, then every segment's `moof`+`mdat` appended) with `{label}/{track}.jsonl`,
//! one JSON line per file opened and per segment appended (after its bytes are written).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::media::TrackKind;

/// `session.json`: what the recording is of.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionFile {
    /// RTMP application.
    pub app: String,
    /// Ladder base name.
    pub name: String,
    /// The recording's directory name (UTC start, `YYYYMMDDTHHMMSSZ`).
    pub start: String,
    /// Start wall-clock time, ISO 8601.
    pub started: String,
}

/// `ended.json`: the recording is closed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EndedFile {
    /// Wall-clock time it was closed, ISO 8601.
    pub ended: String,
    /// `stopped` (unpublish or API stop) or `interrupted` (closed when packgate started
    /// again after a crash or kill).
    pub how: String,
}

/// What a track's codec needs said in playlists and manifests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrackMeta {
    /// RFC 6381 codec string.
    pub codecs: String,
    /// Media timescale.
    pub timescale: u32,
    /// Video width and height.
    pub resolution: Option<(u32, u32)>,
    /// Video frame rate.
    pub frame_rate: Option<f64>,
    /// Audio sample rate.
    pub sample_rate: Option<u32>,
    /// Audio channels.
    pub channels: Option<u8>,
}

/// One segment as the index lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentEntry {
    /// Live media sequence number.
    pub seq: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
    /// Decode time of its first sample, track timescale.
    pub start: i64,
    /// Duration, track timescale.
    pub duration: u64,
}

/// One line of a track's index.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum IndexLine {
    /// A new file starts (the first, or after a codec change or reconnect).
    File {
        /// File name within the rendition directory.
        file: String,
        /// Bytes of init segment at its start.
        init: u64,
        /// The codec.
        meta: TrackMeta,
    },
    /// A segment was appended to the current file.
    Seg(SegmentEntry),
}

/// One file of a track, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct FileIndex {
    /// Path on disk.
    pub path: PathBuf,
    /// Bytes of init segment.
    pub init: u64,
    /// The codec.
    pub meta: TrackMeta,
    /// Its segments in order.
    pub segments: Vec<SegmentEntry>,
}

impl FileIndex {
    /// Seconds of media.
    pub fn duration_secs(&self) -> f64 {
        let ticks: u64 = self.segments.iter().map(|s| s.duration).sum();
        ticks as f64 / f64::from(self.meta.timescale.max(1))
    }

    /// Where the last listed segment ends (the file's valid length).
    pub fn end(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.init, |s| s.offset + s.size)
    }
}

/// A track (`video` or `audio`) of a recorded rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackIndex {
    /// Video or audio.
    pub kind: TrackKind,
    /// Its files in order; a new one starts at each codec change or reconnect.
    pub files: Vec<FileIndex>,
}

impl TrackIndex {
    /// Seconds of media in all files.
    pub fn duration_secs(&self) -> f64 {
        self.files.iter().map(FileIndex::duration_secs).sum()
    }

    /// Peak bits per second of its segments.
    pub fn peak_bitrate(&self) -> u64 {
        let mut peak = 0f64;
        for f in &self.files {
            let scale = f64::from(f.meta.timescale.max(1));
            for s in &f.segments {
                if s.duration > 0 {
                    peak = peak.max(s.size as f64 * 8.0 * scale / s.duration as f64);
                }
            }
        }
        peak.ceil() as u64
    }
}

/// A recorded rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionIndex {
    /// Its label in the ladder.
    pub label: String,
    /// Its tracks (video first).
    pub tracks: Vec<TrackIndex>,
}

impl RenditionIndex {
    /// The track of `kind`.
    pub fn track(&self, kind: TrackKind) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.kind == kind)
    }
}

/// A whole recording, read back from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Its directory.
    pub dir: PathBuf,
    /// What it is of.
    pub session: SessionFile,
    /// Set once closed.
    pub ended: Option<EndedFile>,
    /// Its renditions, by label.
    pub renditions: Vec<RenditionIndex>,
}

impl Recording {
    /// The rendition `label`.
    pub fn rendition(&self, label: &str) -> Option<&RenditionIndex> {
        self.renditions.iter().find(|r| r.label == label)
    }

    /// Seconds of media (the longest track).
    pub fn duration_secs(&self) -> f64 {
        self.renditions
            .iter()
            .flat_map(|r| r.tracks.iter())
            .map(TrackIndex::duration_secs)
            .fold(0.0, f64::max)
    }
}

/// Track kinds, in the order they are listed.
pub const KINDS: [TrackKind; 2] = [TrackKind::Video, TrackKind::Audio];

/// Reads a track index. A last line cut short by a crash is ignored, as are segments
/// that point past the end of their file (their bytes did not all reach the disk).
pub fn read_track(rendition_dir: &Path, kind: TrackKind) -> std::io::Result<Option<TrackIndex>> {
    let path = rendition_dir.join(format!("{}.jsonl", kind.as_str()));
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut files: Vec<FileIndex> = Vec::new();
    for line in BufReader::new(file).lines() {
        let Ok(parsed) = serde_json::from_str::<IndexLine>(&line?) else {
            break; // a torn last line
        };
        match parsed {
            IndexLine::File { file, init, meta } => files.push(FileIndex {
                path: rendition_dir.join(file),
                init,
                meta,
                segments: Vec::new(),
            }),
            IndexLine::Seg(s) => {
                if let Some(f) = files.last_mut() {
                    f.segments.push(s);
                }
            }
        }
    }
    for f in &mut files {
        let len = std::fs::metadata(&f.path).map_or(0, |m| m.len());
        f.segments.retain(|s| s.offset + s.size <= len);
    }
    files.retain(|f| !f.segments.is_empty());
    Ok(Some(TrackIndex { kind, files }))
}

/// Reads the recording in `dir`; `None` when it has no `session.json`.
pub fn read_recording(dir: &Path) -> Option<Recording> {
    let session: SessionFile =
        serde_json::from_slice(&std::fs::read(dir.join("session.json")).ok()?).ok()?;
    let ended = std::fs::read(dir.join("ended.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut renditions = Vec::new();
    let mut labels: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    labels.sort();
    for label in labels {
        let rdir = dir.join(&label);
        let tracks: Vec<TrackIndex> = KINDS
            .iter()
            .filter_map(|k| read_track(&rdir, *k).ok().flatten())
            .filter(|t| !t.files.is_empty())
            .collect();
        if !tracks.is_empty() {
            renditions.push(RenditionIndex { label, tracks });
        }
    }
    Some(Recording {
        dir: dir.to_path_buf(),
        session,
        ended,
        renditions,
    })
}

/// Every recording under `root` (`{app}/{name}/{start}`), sorted by app, name and start.
pub fn list(root: &Path) -> Vec<Recording> {
    fn subdirs(p: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
    let mut out = Vec::new();
    for app in subdirs(root) {
        for name in subdirs(&app) {
            for start in subdirs(&name) {
                out.extend(read_recording(&start));
            }
        }
    }
    out
}

/// A recording's directory name for a start at `t`: `YYYYMMDDTHHMMSSZ`.
pub fn start_name(t: std::time::SystemTime) -> String {
    let iso = crate::wallclock::iso8601(t); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let mut s: String = iso[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn start_names_are_compact_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(start_name(t), "20261118T110640Z");
    }

    #[test]
    fn torn_lines_and_missing_bytes_are_ignored() {
        let dir = std::env::temp_dir().join(format!("pg-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("video-0.mp4"), vec![0u8; 150]).unwrap();
        let mut idx = std::fs::File::create(dir.join("video.jsonl")).unwrap();
        let file = IndexLine::File {
            file: "video-0.mp4".into(),
            init: 50,
            meta: TrackMeta {
                timescale: 90_000,
                ..TrackMeta::default()
            },
        };
        let seg = |offset| {
            IndexLine::Seg(SegmentEntry {
                seq: offset,
                offset,
                size: 50,
                start: 0,
                duration: 180_000,
            })
        };
        for l in [file, seg(50), seg(100), seg(150)] {
            writeln!(idx, "{}", serde_json::to_string(&l).unwrap()).unwrap();
        }
        write!(idx, "{{\"t\":\"seg\",\"seq\":4,\"off").unwrap();
        drop(idx);
        let t = read_track(&dir, TrackKind::Video).unwrap().unwrap();
        // The third segment's bytes are not in the file.
        assert_eq!(t.files[0].segments.len(), 2);
        assert_eq!(t.files[0].end(), 150);
        assert_eq!(t.duration_secs(), 4.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

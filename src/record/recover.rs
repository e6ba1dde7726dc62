//! Closing recordings a previous process left open (killed, crashed, power cut): each
//! file is cut back to its last whole indexed segment, each index rewritten without a torn
//! last line, and the recording marked ended (`interrupted`), so its VOD playlist ends
//! with EXT-X-ENDLIST like any other.

use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::index::{self, IndexLine, Recording};
use super::writer::FileDone;

/// Closes every recording under `root` that has no `ended.json`. Returns the files so
/// completed and the recordings' directories.
pub fn close_interrupted(root: &Path) -> (Vec<FileDone>, Vec<PathBuf>) {
    let mut closed = Vec::new();
    let mut dirs = Vec::new();
    for rec in index::list(root) {
        if rec.ended.is_some() {
            continue;
        }
        match close(&rec) {
            Ok(()) => {
                closed.extend(files(&rec));
                dirs.push(rec.dir.clone());
                info!(app = %rec.session.app, stream = %rec.session.name, start = %rec.session.start,
                    "recording interrupted by a restart: closed");
            }
            Err(e) => {
                warn!(app = %rec.session.app, stream = %rec.session.name, error = %e,
                    "cannot close an interrupted recording")
            }
        }
    }
    (closed, dirs)
}

fn files(rec: &Recording) -> Vec<FileDone> {
    let mut out = Vec::new();
    for r in &rec.renditions {
        for t in &r.tracks {
            for f in &t.files {
                out.push(FileDone {
                    event: "recording_file",
                    app: rec.session.app.clone(),
                    name: rec.session.name.clone(),
                    start: rec.session.start.clone(),
                    rendition: r.label.clone(),
                    track: t.kind.as_str().to_string(),
                    path: f.path.display().to_string(),
                    bytes: f.end(),
                    segments: f.segments.len() as u64,
                    duration: f.duration_secs(),
                });
            }
        }
    }
    out
}

fn close(rec: &Recording) -> std::io::Result<()> {
    for r in &rec.renditions {
        let rdir = rec.dir.join(&r.label);
        for t in &r.tracks {
            let mut text = Vec::new();
            for f in &t.files {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f.path)?
                    .set_len(f.end())?;
                let file = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let head = IndexLine::File {
                    file,
                    init: f.init,
                    meta: f.meta.clone(),
                };
                for line in
                    std::iter::once(head).chain(f.segments.iter().cloned().map(IndexLine::Seg))
                {
                    serde_json::to_writer(&mut text, &line)?;
                    text.push(b'\n');
                }
            }
            let path = rdir.join(format!("{}.jsonl", t.kind.as_str()));
            let tmp = rdir.join(format!("{}.jsonl.tmp", t.kind.as_str()));
            std::fs::File::create(&tmp)?.write_all(&text)?;
            std::fs::rename(tmp, path)?;
        }
    }
    super::writer::write_ended(&rec.dir, "interrupted")
}

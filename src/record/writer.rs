//! The disk writer: one thread that takes recording jobs from a bounded queue and appends
//! them to files, so the segmenter never waits for a disk. A failed write closes the file
//! it was for (the next segment starts a new one), is logged with app and stream, and is
//! counted; the live output never notices.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tracing::{info, warn};

pub use super::announce::FileDone;
use super::index::{EndedFile, IndexLine, SegmentEntry, SessionFile, TrackMeta};
use crate::config::WebhookUrl;
use crate::lograte::LogRate;
use crate::rate_limited_warn;
use crate::webhook::WebhookCall;

static WRITE_ERRORS: LogRate = LogRate::per_second();

/// One recording: a ladder from a start time on.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// RTMP application.
    pub app: String,
    /// Ladder base name.
    pub name: String,
    /// Directory name (UTC start).
    pub start: String,
    /// `{dir}/{app}/{name}/{start}`.
    pub dir: PathBuf,
}

/// A finished segment of one track, with what is needed to start a file for it.
#[derive(Debug)]
pub struct SegmentJob {
    /// The recording it belongs to.
    pub session: Arc<Session>,
    /// Rendition label.
    pub label: String,
    /// `video` or `audio`.
    pub kind: &'static str,
    /// The init segment version it decodes with; a new version starts a new file.
    pub init_version: u64,
    /// That init segment.
    pub init: Bytes,
    /// The codec.
    pub meta: TrackMeta,
    /// Live sequence number.
    pub seq: u64,
    /// Decode time of its first sample, track timescale.
    pub start: i64,
    /// Duration, track timescale.
    pub duration: u64,
    /// Its bytes (`moof`+`mdat` chunks).
    pub data: Vec<Bytes>,
    /// Its share of the queue's byte budget, given back when the job is done.
    pub charge: Option<Charge>,
}

/// Bytes counted against a budget while a job is queued or being written; released on drop.
#[derive(Debug)]
pub struct Charge {
    counter: Arc<std::sync::atomic::AtomicUsize>,
    bytes: usize,
}

impl Charge {
    /// Counts `bytes` against `counter` unless that would pass `limit`.
    pub fn take(
        counter: &Arc<std::sync::atomic::AtomicUsize>,
        bytes: usize,
        limit: usize,
    ) -> Option<Charge> {
        use std::sync::atomic::Ordering;
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= limit).then_some(held + bytes)
            })
            .ok()?;
        Some(Charge {
            counter: counter.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.counter
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What the writer is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Append a segment.
    Segment(Box<SegmentJob>),
    /// A rendition's publisher stopped: its files are complete.
    CloseRendition(Arc<Session>, String),
    /// The recording is over: close its files and mark it ended.
    EndSession(Arc<Session>),
    /// A file completed elsewhere (closed after a restart): tell the hook.
    Announce(FileDone),
    /// A recording closed elsewhere (after a restart): combine its tracks per rendition.
    Combine(PathBuf),
}

struct OpenFile {
    session: Arc<Session>,
    label: String,
    kind: &'static str,
    path: PathBuf,
    file: File,
    index: File,
    init_version: u64,
    len: u64,
    segments: u64,
    ticks: u64,
    timescale: u32,
}

/// The writer's state.
pub struct Writer {
    hook: Option<Sender<FileDone>>,
    open: HashMap<(PathBuf, &'static str), OpenFile>,
    next_file: HashMap<(PathBuf, &'static str), u32>,
    started: HashSet<PathBuf>,
}

impl Writer {
    /// A writer that reports complete files to `hook`.
    pub fn new(hook: Option<Sender<FileDone>>) -> Writer {
        Writer {
            hook,
            open: HashMap::new(),
            next_file: HashMap::new(),
            started: HashSet::new(),
        }
    }

    /// Runs jobs until every sender is gone.
    pub fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            self.handle(job);
        }
        let all: Vec<_> = self.open.keys().cloned().collect();
        for key in all {
            self.close(&key);
        }
    }

    /// Does one job.
    pub fn handle(&mut self, job: Job) {
        match job {
            Job::Segment(s) => self.segment(*s),
            Job::CloseRendition(session, label) => {
                let dir = session.dir.join(&label);
                let keys: Vec<_> = self.open.keys().filter(|k| k.0 == dir).cloned().collect();
                for key in keys {
                    self.close(&key);
                }
            }
            Job::Announce(done) => {
                if let Some(hook) = &self.hook {
                    let _ = hook.send(done);
                }
            }
            Job::Combine(dir) => super::combine::spawn(dir, self.hook.clone()),
            Job::EndSession(session) => {
                let keys: Vec<_> = self
                    .open
                    .keys()
                    .filter(|k| k.0.parent() == Some(session.dir.as_path()))
                    .cloned()
                    .collect();
                for key in keys {
                    self.close(&key);
                }
                if self.started.remove(&session.dir) {
                    if let Err(e) = write_ended(&session.dir, "stopped") {
                        failed(&session, "", &e);
                    }
                    info!(app = %session.app, stream = %session.name, start = %session.start, "recording ended");
                    super::combine::spawn(session.dir.clone(), self.hook.clone());
                }
            }
        }
    }

    fn segment(&mut self, job: SegmentJob) {
        let session = job.session.clone();
        if !self.started.contains(&session.dir) {
            if let Err(e) = start_session(&session) {
                failed(&session, &job.label, &e);
                return;
            }
            self.started.insert(session.dir.clone());
            info!(app = %session.app, stream = %session.name, dir = %session.dir.display(), "recording started");
        }
        let key = (session.dir.join(&job.label), job.kind);
        if self
            .open
            .get(&key)
            .is_some_and(|f| f.init_version != job.init_version)
        {
            self.close(&key);
        }
        if !self.open.contains_key(&key) {
            let n = self.next_file.entry(key.clone()).or_insert(0);
            let number = *n;
            *n += 1;
            match open_file(&job, &key.0, number) {
                Ok(f) => {
                    self.open.insert(key.clone(), f);
                }
                Err(e) => {
                    failed(&session, &job.label, &e);
                    return;
                }
            }
        }
        let Some(f) = self.open.get_mut(&key) else {
            return;
        };
        if let Err(e) = append(f, &job) {
            failed(&session, &job.label, &e);
            // What the file holds past its index is garbage now: the next segment
            // starts a new file.
            self.open.remove(&key);
            return;
        }
        metrics::counter!("packgate_record_segments_total").increment(1);
    }

    fn close(&mut self, key: &(PathBuf, &'static str)) {
        let Some(f) = self.open.remove(key) else {
            return;
        };
        let done = FileDone {
            event: "recording_file",
            app: f.session.app.clone(),
            name: f.session.name.clone(),
            start: f.session.start.clone(),
            rendition: f.label.clone(),
            track: f.kind.to_string(),
            path: f.path.display().to_string(),
            bytes: f.len,
            segments: f.segments,
            duration: f.ticks as f64 / f64::from(f.timescale.max(1)),
        };
        info!(app = %done.app, stream = %done.name, file = %done.path, bytes = done.bytes, duration = done.duration, "recording file complete");
        if let Some(hook) = &self.hook {
            let _ = hook.send(done);
        }
    }
}

fn failed(session: &Session, label: &str, e: &std::io::Error) {
    metrics::counter!("packgate_record_errors_total").increment(1);
    rate_limited_warn!(WRITE_ERRORS, "record_write", app = %session.app, stream = %session.name,
        rendition = label, error = %e, "recording write failed; segment dropped from the recording");
}

fn start_session(session: &Session) -> std::io::Result<()> {
    std::fs::create_dir_all(&session.dir)?;
    let file = SessionFile {
        app: session.app.clone(),
        name: session.name.clone(),
        start: session.start.clone(),
        started: crate::wallclock::iso8601(SystemTime::now()),
    };
    std::fs::write(session.dir.join("session.json"), serde_json::to_vec(&file)?)
}

/// Marks the recording in `dir` closed.
pub fn write_ended(dir: &Path, how: &str) -> std::io::Result<()> {
    let ended = EndedFile {
        ended: crate::wallclock::iso8601(SystemTime::now()),
        how: how.to_string(),
    };
    std::fs::write(dir.join("ended.json"), serde_json::to_vec(&ended)?)
}

fn index_line(index: &mut File, line: &IndexLine) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(line)?;
    text.push(b'\n');
    // One write per line: a kill leaves whole lines or one torn last line.
    index.write_all(&text)
}

fn open_file(job: &SegmentJob, dir: &Path, number: u32) -> std::io::Result<OpenFile> {
    std::fs::create_dir_all(dir)?;
    let name = format!("{}-{number}.mp4", job.kind);
    let path = dir.join(&name);
    let mut file = File::create(&path)?;
    file.write_all(&job.init)?;
    let mut index = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.jsonl", job.kind)))?;
    index_line(
        &mut index,
        &IndexLine::File {
            file: name,
            init: job.init.len() as u64,
            meta: job.meta.clone(),
        },
    )?;
    Ok(OpenFile {
        session: job.session.clone(),
        label: job.label.clone(),
        kind: job.kind,
        path,
        file,
        index,
        init_version: job.init_version,
        len: job.init.len() as u64,
        segments: 0,
        ticks: 0,
        timescale: job.meta.timescale,
    })
}

fn append(f: &mut OpenFile, job: &SegmentJob) -> std::io::Result<()> {
    let offset = f.len;
    let mut size = 0u64;
    for chunk in &job.data {
        f.file.write_all(chunk)?;
        size += chunk.len() as u64;
    }
    f.len += size;
    // The index line follows the bytes it points at.
    index_line(
        &mut f.index,
        &IndexLine::Seg(SegmentEntry {
            seq: job.seq,
            offset,
            size,
            start: job.start,
            duration: job.duration,
        }),
    )?;
    f.segments += 1;
    f.ticks += job.duration;
    Ok(())
}

/// Posts each complete file to `url`, one at a time, on a thread of its own (hooks are
/// rare, and a slow one must not hold up the disk writer).
pub fn hook_thread(url: WebhookUrl, timeout: Duration) -> Option<Sender<FileDone>> {
    let (tx, rx) = std::sync::mpsc::channel::<FileDone>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    std::thread::Builder::new()
        .name("packgate-record-hook".into())
        .spawn(move || {
            while let Ok(done) = rx.recv() {
                let call = WebhookCall {
                    url: url.clone(),
                    body: serde_json::to_vec(&done).unwrap_or_default(),
                    timeout,
                };
                match rt.block_on(call.send()) {
                    Ok(status) if (200..300).contains(&status) => {}
                    Ok(status) => {
                        warn!(app = %done.app, stream = %done.name, status, "recording hook answered with an error")
                    }
                    Err(e) => {
                        metrics::counter!("packgate_record_hook_errors_total").increment(1);
                        warn!(app = %done.app, stream = %done.name, error = %e, "recording hook failed")
                    }
                }
            }
        })
        .ok()?;
    Some(tx)
}

//! Recording live ladders to disk, and reading recordings back as VOD.
//!
//! The publisher hands every finished CMAF segment to [`Recorder::segment`], which only
//! queues it (a bounded queue; when full, the segment is dropped from the recording,
//! logged and counted) for the disk writer's thread ([`writer`]). Which ladders are
//! recorded, and which recording a segment belongs to, is decided here under one lock.

pub mod announce;
pub mod combine;
pub mod index;
pub mod recover;
pub mod vod;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::config::RecordConfig;
use crate::lograte::LogRate;
use crate::media::{CodecConfig, TrackKind};
use crate::rate_limited_warn;
use crate::store::TrackWindow;
use index::TrackMeta;
use writer::{Charge, Job, SegmentJob, Session};

static DROPS: LogRate = LogRate::per_second();

/// Why an API call about recording was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    /// Recording of the app is on in the configuration; the API cannot stop it.
    #[error("app {0} is recorded by configuration (record.apps.{0}.enabled)")]
    ByConfig(String),
    /// Nothing to stop.
    #[error("{0} is not being recorded")]
    NotRecording(String),
}

/// A finished segment as taken from a track's window (no copy: `Bytes` are shared).
#[derive(Debug)]
pub struct Tap {
    kind: TrackKind,
    init_version: u64,
    init: Bytes,
    meta: TrackMeta,
    seq: u64,
    start: i64,
    duration: u64,
    data: Vec<Bytes>,
}

impl Tap {
    /// Segment `seq` of a track's window with its init segment, if both are kept.
    pub fn new(config: &CodecConfig, window: &TrackWindow, seq: u64) -> Option<Tap> {
        let seg = window.get(seq)?;
        let init = window.init(seg.init_version)?.clone();
        let audio = config.audio_format();
        let meta = TrackMeta {
            codecs: config.codec_string(),
            timescale: seg.timescale,
            resolution: config.resolution(),
            frame_rate: config.frame_rate(),
            sample_rate: audio.map(|(rate, _)| rate),
            channels: audio.map(|(_, channels)| channels),
        };
        Some(Tap {
            kind: config.kind(),
            init_version: seg.init_version,
            init,
            meta,
            seq,
            start: seg.start,
            duration: seg.duration,
            data: seg.chunks().cloned().collect(),
        })
    }
}

#[derive(Debug)]
struct Active {
    session: Arc<Session>,
    /// Renditions whose publisher is connected.
    publishing: HashSet<String>,
}

#[derive(Debug, Default)]
struct State {
    /// Ladders recorded because the API said so.
    requested: HashSet<(String, String)>,
    /// Recordings in progress, by ladder.
    active: HashMap<(String, String), Active>,
}

/// Decides what is recorded and queues it for the disk writer.
#[derive(Debug)]
pub struct Recorder {
    config: RecordConfig,
    state: Mutex<State>,
    jobs: OnceLock<Option<SyncSender<Job>>>,
    /// Bytes of segments queued for the writer (`record.queue_bytes`).
    queued: Arc<AtomicUsize>,
}

impl Recorder {
    /// A recorder for `config`; its writer thread starts with the first job.
    pub fn new(config: &RecordConfig) -> Recorder {
        Recorder {
            config: config.clone(),
            state: Mutex::default(),
            jobs: OnceLock::new(),
            queued: Arc::default(),
        }
    }

    /// Where recordings go.
    pub fn root(&self) -> &Path {
        &self.config.dir
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when ladder `app/base` is being recorded (by config or by the API).
    pub fn wants(&self, app: &str, base: &str) -> bool {
        self.config.app_enabled(app)
            || self
                .state()
                .requested
                .contains(&(app.to_string(), base.to_string()))
    }

    /// Queues segment `tap` of rendition `label` of `app/base`. Never waits.
    pub fn segment(&self, app: &str, base: &str, label: &str, tap: Tap) {
        let session = {
            let mut state = self.state();
            let key = (app.to_string(), base.to_string());
            let root = &self.config.dir;
            let active = state.active.entry(key).or_insert_with(|| Active {
                session: Arc::new(new_session(root, app, base)),
                publishing: HashSet::new(),
            });
            active.publishing.insert(label.to_string());
            active.session.clone()
        };
        let bytes = tap.init.len() + tap.data.iter().map(Bytes::len).sum::<usize>();
        let Some(charge) = Charge::take(&self.queued, bytes, self.config.queue_bytes) else {
            metrics::counter!("packgate_record_dropped_total").increment(1);
            rate_limited_warn!(DROPS, "record_queue_bytes", app = %app, stream = %base, rendition = label,
                queue_bytes = self.config.queue_bytes, "recording queue over its byte budget (disk too slow?): segment dropped from the recording");
            return;
        };
        let job = Job::Segment(Box::new(SegmentJob {
            session,
            label: label.to_string(),
            kind: tap.kind.as_str(),
            init_version: tap.init_version,
            init: tap.init,
            meta: tap.meta,
            seq: tap.seq,
            start: tap.start,
            duration: tap.duration,
            data: tap.data,
            charge: Some(charge),
        }));
        let Some(jobs) = self.jobs() else { return };
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("packgate_record_dropped_total").increment(1);
                rate_limited_warn!(DROPS, "record_queue_full", app = %app, stream = %base, rendition = label,
                    queue = self.config.queue, "recording queue full (disk too slow?): segment dropped from the recording");
            }
            Err(TrySendError::Disconnected(_)) => {
                metrics::counter!("packgate_record_dropped_total").increment(1);
            }
        }
    }

    /// Rendition `label` of `app/base` stopped publishing; `clean` when the encoder
    /// unpublished. The recording ends once every rendition stopped cleanly, or when the
    /// ladder expires ([`Recorder::expired`]).
    pub fn stopped(&self, app: &str, base: &str, label: &str, clean: bool) {
        let mut jobs = Vec::new();
        {
            let mut state = self.state();
            let key = (app.to_string(), base.to_string());
            let Some(active) = state.active.get_mut(&key) else {
                return;
            };
            active.publishing.remove(label);
            jobs.push(Job::CloseRendition(
                active.session.clone(),
                label.to_string(),
            ));
            if clean && active.publishing.is_empty() {
                if let Some(a) = state.active.remove(&key) {
                    jobs.push(Job::EndSession(a.session));
                }
            }
        }
        for job in jobs {
            self.control(job);
        }
    }

    /// Ladder `app/base` is gone: a recording left waiting for a reconnect ends.
    pub fn expired(&self, app: &str, base: &str) {
        let ended = {
            let mut state = self.state();
            let key = (app.to_string(), base.to_string());
            match state.active.get(&key) {
                Some(a) if a.publishing.is_empty() => state.active.remove(&key),
                _ => None,
            }
        };
        if let Some(a) = ended {
            self.control(Job::EndSession(a.session));
        }
    }

    /// Starts recording `app/base` (from its next segment). False if it already was.
    pub fn start(&self, app: &str, base: &str) -> bool {
        if self.config.app_enabled(app) {
            return false;
        }
        self.state()
            .requested
            .insert((app.to_string(), base.to_string()))
    }

    /// Stops recording `app/base` and ends its recording.
    pub fn stop(&self, app: &str, base: &str) -> Result<(), RecordError> {
        if self.config.app_enabled(app) {
            return Err(RecordError::ByConfig(app.to_string()));
        }
        let ended = {
            let mut state = self.state();
            let key = (app.to_string(), base.to_string());
            if !state.requested.remove(&key) {
                return Err(RecordError::NotRecording(format!("{app}/{base}")));
            }
            state.active.remove(&key)
        };
        if let Some(a) = ended {
            self.control(Job::EndSession(a.session));
        }
        Ok(())
    }

    /// Closes the recordings a previous run left open (see [`recover`]), tells the hook
    /// about their files and combines their tracks. Returns how many files.
    pub fn recover(&self) -> usize {
        let (files, dirs) = recover::close_interrupted(&self.config.dir);
        let n = files.len();
        if self.config.hook_url().is_some() {
            for done in files {
                self.control(Job::Announce(done));
            }
        }
        for dir in dirs {
            self.control(Job::Combine(dir));
        }
        n
    }

    /// Queues a job that must not be lost: when the queue is full, a short-lived thread
    /// waits for room (order is kept: segments behind it are dropped meanwhile).
    fn control(&self, job: Job) {
        let Some(jobs) = self.jobs() else { return };
        if let Err(TrySendError::Full(job)) = jobs.try_send(job) {
            let jobs = jobs.clone();
            let _ = std::thread::Builder::new()
                .name("packgate-record-ctl".into())
                .spawn(move || {
                    let _ = jobs.send(job);
                });
        }
    }

    fn jobs(&self) -> Option<&SyncSender<Job>> {
        self.jobs
            .get_or_init(|| {
                let hook = self.config.hook_url().and_then(|url| {
                    writer::hook_thread(url, Duration::from_secs_f64(self.config.hook_timeout))
                });
                let (tx, rx) = std::sync::mpsc::sync_channel(self.config.queue);
                std::thread::Builder::new()
                    .name("packgate-record".into())
                    .spawn(move || writer::Writer::new(hook).run(rx))
                    .ok()?;
                Some(tx)
            })
            .as_ref()
    }
}

/// A new recording of `app/base` starting now, in a directory not used before.
fn new_session(root: &Path, app: &str, base: &str) -> Session {
    let start = index::start_name(SystemTime::now());
    let parent: PathBuf = root.join(app).join(base);
    let mut name = start.clone();
    let mut n = 1;
    while parent.join(&name).exists() {
        n += 1;
        name = format!("{start}-{n}");
    }
    Session {
        app: app.to_string(),
        name: base.to_string(),
        start: name.clone(),
        dir: parent.join(name),
    }
}

#[cfg(test)]
mod tests;

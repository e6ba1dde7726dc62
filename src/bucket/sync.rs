//! One ladder's copy in the bucket, kept up by rounds. Each round takes one set of
//! snapshots ([`Plan`]) and uploads, in this order, the init segments and segments not yet
//! in the bucket (concurrently), then the media playlists, then the master playlists and
//! the MPD, each step only once the one before succeeded: a playlist never names an object
//! the round has not stored (one given up after its retries, or skipped over the queue
//! budget, is the exception: counted and logged). A round runs when a segment was cut or
//! a rendition changed phase, woken by the ladder's change notification.
//!
//! With `delete = "window"`, a segment that left the playlists is deleted once no
//! playlist a player may still hold names it: after its own duration plus the playlist's
//! (RFC 8216 6.2.2).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use object_store::path::Path;
use object_store::PutPayload;
use tokio::sync::watch;
use tokio::time::Instant;

use super::budget::Reserved;
use super::client::{Client, StoreError};
use super::keys::{content_type, Keys, Kind};
use super::plan::{FeedPlan, Plan};
use crate::config::object_store::DeletePolicy;
use crate::hub::{Hub, Ladder, Phase};
use crate::lograte::LogRate;
use crate::rate_limited_warn;
use crate::store::spill::Spill;
use crate::store::TrackWindow;
use crate::urls::{Container, FeedDir, LadderFile, ObjectName};

/// Failures are logged at most once a second per reason.
static FAILURES: LogRate = LogRate::per_second();

/// What every ladder's sync shares.
#[derive(Debug)]
pub struct Shared {
    /// The hub the ladders are in.
    pub hub: Arc<Hub>,
    /// The bucket.
    pub client: Client,
    /// The key prefix (no leading or trailing slash).
    pub prefix: String,
    /// What becomes of segments that left the playlists.
    pub delete: DeletePolicy,
}

/// What one feed has in the bucket.
#[derive(Debug, Default)]
struct FeedState {
    /// The rendition whose init segments are stored (the ladder's audio may change source).
    source: usize,
    /// Init versions stored.
    inits: BTreeSet<u64>,
    /// Segments stored, or tried and failed (a PUT that timed out may still land), with
    /// their durations in seconds: deleted when they leave the playlists.
    stored: BTreeMap<u64, f64>,
    /// Segments given up on (failed, skipped): not tried again.
    skipped: BTreeSet<u64>,
}

/// Where an object's bytes are.
enum Body {
    /// In memory, counted against the queue budget.
    Memory(PutPayload, Reserved),
    /// A DVR segment in the disk tier.
    Disk(Spill, u64),
}

/// One object to upload.
struct Job {
    dir: FeedDir,
    name: ObjectName,
    duration: f64,
    body: Body,
}

/// How an object's upload ended.
enum Outcome {
    Stored,
    Failed(StoreError),
    /// Over the queue budget, or gone from the disk tier.
    Dropped(&'static str),
}

/// One ladder's bucket copy.
struct LadderSync {
    shared: Arc<Shared>,
    ladder: Arc<Ladder>,
    keys: Keys,
    feeds: HashMap<FeedDir, FeedState>,
    /// The playlist and manifest bodies last stored, by key: unchanged ones are not sent.
    sent: HashMap<Path, Bytes>,
    /// Deletions waiting for their time.
    doomed: Vec<(Instant, Path)>,
}

/// Keeps `ladder`'s copy in the bucket until it retires (or, once `stop` is set, until
/// its publishers are gone and the last round went through).
pub async fn sync(shared: Arc<Shared>, ladder: Arc<Ladder>, mut stop: watch::Receiver<bool>) {
    let keys = Keys::new(&shared.prefix, &ladder.app, &ladder.base);
    let target = shared.hub.config().segment.target();
    let mut s = LadderSync {
        shared,
        ladder: ladder.clone(),
        keys,
        feeds: HashMap::new(),
        sent: HashMap::new(),
        doomed: Vec::new(),
    };
    tracing::info!(app = %ladder.app, stream = %ladder.base, "bucket copy started");
    let mut updates = ladder.subscribe();
    let mut seen = None;
    let mut complete = true;
    loop {
        let retired = ladder.is_retired();
        let now = fingerprint(&ladder);
        if seen.as_ref() != Some(&now) || !complete {
            seen = Some(now);
            complete = s.round().await;
        }
        s.delete_due().await;
        let stopping = *stop.borrow();
        let publishing = seen
            .as_ref()
            .is_some_and(|f| f.iter().any(|(_, _, p)| *p == Phase::Publishing));
        if retired || (stopping && complete && !publishing) {
            break;
        }
        // A failed round is tried again soon; otherwise wake for the next deletion or
        // change, and at least once a target duration.
        let wait = if complete {
            s.next_deletion()
                .map_or(target, |at| at.saturating_duration_since(Instant::now()))
                .min(target)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = tokio::time::timeout(wait, updates.changed()) => {}
            _ = stop.changed(), if !stopping => {}
        }
    }
    if !*stop.borrow() {
        s.finish().await;
    }
    tracing::info!(app = %ladder.app, stream = %ladder.base, "bucket copy finished");
}

/// What a round depends on: per rendition, its newest segment numbers and its phase.
type Fingerprint = Vec<(usize, [Option<u64>; 3], Phase)>;

fn fingerprint(ladder: &Ladder) -> Fingerprint {
    let last = |w: Option<&TrackWindow>| w.and_then(TrackWindow::last).map(|s| s.seq);
    ladder
        .renditions()
        .iter()
        .map(|r| {
            let s = r.read();
            let seqs = [
                last(s.video.as_ref().map(|t| &t.window)),
                last(s.audio.as_ref().map(|t| &t.window)),
                last(s.ts.as_ref()),
            ];
            (Arc::as_ptr(r) as usize, seqs, s.phase())
        })
        .collect()
}

impl LadderSync {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// One round (see the module docs); true when everything went up.
    async fn round(&mut self) -> bool {
        let plan = Plan::take(self.hub(), &self.ladder);
        let feeds = plan.feeds(self.hub());
        let mut jobs = Vec::new();
        for feed in &feeds {
            self.collect(feed, &mut jobs);
        }
        let (client, keys) = (&self.shared.client, &self.keys);
        let done = join_all(jobs.into_iter().map(|job| run(client, keys, job))).await;
        let mut complete = true;
        for (dir, name, duration, outcome) in done {
            complete &= self.record(dir, name, duration, outcome);
        }
        let playlists: Vec<(LadderFile, Bytes)> = feeds
            .iter()
            .filter(|f| f.playlist)
            .filter_map(|f| {
                Some((
                    LadderFile::Playlist(f.dir.clone()),
                    f.playlist_text(self.hub())?,
                ))
            })
            .collect();
        if !self.put_texts(playlists).await {
            return false;
        }
        let manifests = plan.manifests(self.hub(), &self.ladder);
        if !self.put_texts(manifests).await {
            return false;
        }
        self.left_window(&feeds);
        complete
    }

    /// Queues the objects of `feed` that the bucket lacks.
    fn collect(&mut self, feed: &FeedPlan, jobs: &mut Vec<Job>) {
        let Some(window) = feed.window() else {
            return;
        };
        let budget = self.shared.client.budget().clone();
        let state = self.feeds.entry(feed.dir.clone()).or_default();
        let source = Arc::as_ptr(&feed.rendition) as usize;
        if state.source != source {
            state.source = source;
            state.inits.clear();
        }
        if let Some(first) = window.listed().next() {
            state.skipped = state.skipped.split_off(&first.seq);
        }
        // Every init segment a listed segment needs, including one that failed before.
        let versions: BTreeSet<u64> = match feed.dir.feed().container() {
            Container::Cmaf => window.listed().map(|s| s.init_version).collect(),
            Container::Ts => BTreeSet::new(),
        };
        for version in versions.difference(&state.inits) {
            let Some(init) = window.init(*version) else {
                continue;
            };
            if let Some(reserved) = budget.try_reserve(init.len()) {
                jobs.push(Job {
                    dir: feed.dir.clone(),
                    name: ObjectName::Init(*version),
                    duration: 0.0,
                    body: Body::Memory(PutPayload::from(init.clone()), reserved),
                });
            }
        }
        for seg in window.listed() {
            let seq = seg.seq;
            if seg.is_gap() || state.stored.contains_key(&seq) || state.skipped.contains(&seq) {
                continue;
            }
            let body = match window.spilled(seq) {
                Some(spill) => Body::Disk(spill.clone(), seq),
                None => match budget.try_reserve(seg.size()) {
                    Some(reserved) => {
                        Body::Memory(PutPayload::from_iter(seg.chunks().cloned()), reserved)
                    }
                    None => {
                        state.skipped.insert(seq);
                        dropped(&self.ladder, "budget", seq);
                        continue;
                    }
                },
            };
            jobs.push(Job {
                dir: feed.dir.clone(),
                name: ObjectName::Segment(seq),
                duration: seg.duration_secs(),
                body,
            });
        }
    }

    /// Notes how an object's upload ended; false when it failed.
    fn record(&mut self, dir: FeedDir, name: ObjectName, duration: f64, outcome: Outcome) -> bool {
        let file = LadderFile::Object(dir.clone(), name);
        let state = self.feeds.entry(dir).or_default();
        match (outcome, name) {
            (Outcome::Stored, ObjectName::Init(v)) => {
                state.inits.insert(v);
            }
            (Outcome::Stored, _) => {
                if let ObjectName::Segment(seq) = name {
                    state.stored.insert(seq, duration);
                }
            }
            (Outcome::Dropped(reason), ObjectName::Segment(seq)) => {
                state.skipped.insert(seq);
                dropped(&self.ladder, reason, seq);
            }
            (Outcome::Dropped(_), _) => return false,
            (Outcome::Failed(e), _) => {
                // A segment is given up on (its retries are spent); an init segment is
                // tried again next round, since every segment needs it.
                if let ObjectName::Segment(seq) = name {
                    state.skipped.insert(seq);
                    state.stored.insert(seq, duration);
                }
                failed(&self.ladder, &self.keys.key(&file), &e);
                return false;
            }
        }
        true
    }

    /// Uploads the texts that changed since last stored, together; true when all went up.
    async fn put_texts(&mut self, texts: Vec<(LadderFile, Bytes)>) -> bool {
        let changed: Vec<(LadderFile, Path, Bytes)> = texts
            .into_iter()
            .map(|(file, text)| {
                let key = self.keys.key(&file);
                (file, key, text)
            })
            .filter(|(_, key, text)| self.sent.get(key) != Some(text))
            .collect();
        let client = &self.shared.client;
        let results = join_all(changed.iter().map(|(file, key, text)| {
            client.put(
                key,
                Kind::of(file),
                content_type(file),
                PutPayload::from(text.clone()),
            )
        }))
        .await;
        let mut all = true;
        for ((_, key, text), result) in changed.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    self.sent.insert(key, text);
                }
                Err(e) => {
                    failed(&self.ladder, &key, &e);
                    all = false;
                }
            }
        }
        all
    }

    /// Forgets the stored segments that left their playlists, and with `delete = "window"`
    /// dooms them.
    fn left_window(&mut self, feeds: &[FeedPlan]) {
        let delete = self.shared.delete == DeletePolicy::Window;
        let now = Instant::now();
        for feed in feeds {
            let Some(window) = feed.window() else {
                continue;
            };
            let Some(first) = window.listed().next().map(|s| s.seq) else {
                continue;
            };
            let listed: f64 = window.listed().map(|s| s.duration_secs()).sum();
            let Some(state) = self.feeds.get_mut(&feed.dir) else {
                continue;
            };
            let kept = state.stored.split_off(&first);
            let left = std::mem::replace(&mut state.stored, kept);
            for (seq, duration) in left.into_iter().filter(|_| delete) {
                let file = LadderFile::Object(feed.dir.clone(), ObjectName::Segment(seq));
                let at = now + Duration::from_secs_f64(duration + listed);
                self.doomed.push((at, self.keys.key(&file)));
            }
        }
    }

    fn next_deletion(&self) -> Option<Instant> {
        self.doomed.iter().map(|(at, _)| *at).min()
    }

    /// Deletes what is due.
    async fn delete_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.doomed.drain(..).partition(|(at, _)| *at <= now);
        self.doomed = later;
        let client = &self.shared.client;
        let results = join_all(due.iter().map(|(_, key)| client.delete(key))).await;
        for ((_, key), result) in due.iter().zip(results) {
            if let Err(e) = result {
                rate_limited_warn!(FAILURES, "bucket_delete_failed", app = %self.ladder.app,
                    stream = %self.ladder.base, key = %key, error = %e, "cannot delete from the bucket");
            }
        }
    }

    /// The ladder retired: the remaining deletions, each at its time.
    async fn finish(&mut self) {
        while let Some(at) = self.next_deletion() {
            tokio::time::sleep_until(at).await;
            self.delete_due().await;
        }
    }
}

/// Uploads one object.
async fn run(client: &Client, keys: &Keys, job: Job) -> (FeedDir, ObjectName, f64, Outcome) {
    let file = LadderFile::Object(job.dir.clone(), job.name);
    let key = keys.key(&file);
    let (payload, _reserved) = match job.body {
        Body::Memory(payload, reserved) => (payload, reserved),
        Body::Disk(spill, seq) => {
            let read = tokio::task::spawn_blocking(move || spill.read(seq)).await;
            let Ok(Ok(bytes)) = read else {
                return (
                    job.dir,
                    job.name,
                    job.duration,
                    Outcome::Dropped("gone_from_disk"),
                );
            };
            match client.budget().try_reserve(bytes.len()) {
                Some(reserved) => (PutPayload::from(bytes), reserved),
                None => return (job.dir, job.name, job.duration, Outcome::Dropped("budget")),
            }
        }
    };
    let outcome = match client
        .put(&key, Kind::of(&file), content_type(&file), payload)
        .await
    {
        Ok(()) => Outcome::Stored,
        Err(e) => Outcome::Failed(e),
    };
    (job.dir, job.name, job.duration, outcome)
}

fn dropped(ladder: &Ladder, reason: &'static str, seq: u64) {
    metrics::counter!("packgate_bucket_dropped_total", "reason" => reason).increment(1);
    rate_limited_warn!(FAILURES, "bucket_dropped", app = %ladder.app, stream = %ladder.base,
        seq, why = reason, "segment not copied to the bucket");
}

fn failed(ladder: &Ladder, key: &Path, e: &StoreError) {
    rate_limited_warn!(FAILURES, "bucket_upload_failed", app = %ladder.app,
        stream = %ladder.base, key = %key, error = %e, "cannot upload to the bucket");
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;

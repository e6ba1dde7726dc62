//! The DVR disk tier: segments that age out of a track's in-memory part of a long (DVR)
//! window are written to disk by one writer thread, and read back from there.
//!
//! The window swaps a spilled segment for a stub (its timing, no bytes) at once, so memory
//! stays flat however long the window; until the file is written, reads are answered from
//! the in-flight copy the writer holds. The queue to the writer is bounded: when it is full
//! the segment is dropped (logged, counted) and its URL answers 404, the live edge never
//! waits. The files share one byte budget; past it the oldest go first. The directory is a
//! cache: the segment files a previous run left there are deleted at start (nothing else).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::StoredSegment;
use crate::lograte::LogRate;
use crate::rate_limited_warn;

static SPILL_WARN: LogRate = LogRate::per_second();

/// Segments queued for the disk writer at most.
pub const QUEUE: usize = 64;

/// Bytes of segments queued for the disk writer at most (a burst of media must not become
/// a burst of memory).
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

enum Job {
    Write(PathBuf),
    Delete(PathBuf),
}

/// The disk tier shared by every DVR window.
#[derive(Debug)]
pub struct SpillTier {
    dir: PathBuf,
    jobs: SyncSender<Job>,
    /// Segments queued or being written, by path: read from here until on disk.
    in_flight: Mutex<InFlight>,
}

#[derive(Debug, Default)]
struct InFlight {
    segments: HashMap<PathBuf, Arc<StoredSegment>>,
    bytes: usize,
}

impl InFlight {
    fn get(&self, path: &Path) -> Option<&Arc<StoredSegment>> {
        self.segments.get(path)
    }

    /// Adds `segment` unless that passes [`QUEUE_BYTES`].
    fn insert(&mut self, path: PathBuf, segment: Arc<StoredSegment>) -> bool {
        let size = segment.size();
        if self.bytes + size > QUEUE_BYTES {
            return false;
        }
        self.bytes += size;
        if let Some(old) = self.segments.insert(path, segment) {
            self.bytes -= old.size();
        }
        true
    }

    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.segments.remove(path) {
            self.bytes -= old.size();
        }
    }
}

impl SpillTier {
    /// A tier in `dir` holding at most `budget` bytes of files; the segment files a
    /// previous run left in it are deleted.
    pub fn start(dir: &Path, budget: u64) -> std::io::Result<Arc<SpillTier>> {
        std::fs::create_dir_all(dir)?;
        clear(dir, 4);
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let tier = Arc::new(SpillTier {
            dir: dir.to_path_buf(),
            jobs: tx,
            in_flight: Mutex::default(),
        });
        let weak = Arc::downgrade(&tier);
        std::thread::Builder::new()
            .name("packgate-dvr-spill".into())
            .spawn(move || writer(rx, weak, budget))?;
        Ok(tier)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `segment` for the file `path`; false when the queue is full (dropped).
    fn put(&self, path: PathBuf, segment: Arc<StoredSegment>) -> bool {
        if !self.in_flight().insert(path.clone(), segment) {
            return false;
        }
        match self.jobs.try_send(Job::Write(path)) {
            Ok(()) => true,
            Err(TrySendError::Full(Job::Write(p)) | TrySendError::Disconnected(Job::Write(p))) => {
                self.in_flight().remove(&p);
                false
            }
            Err(_) => false,
        }
    }

    /// The bytes of the spilled segment at `path`.
    pub fn read(&self, path: &Path) -> std::io::Result<Bytes> {
        let pending = self.in_flight().get(path).cloned();
        if let Some(seg) = pending {
            let mut out = Vec::with_capacity(seg.size());
            for c in seg.chunks() {
                out.extend_from_slice(c);
            }
            return Ok(Bytes::from(out));
        }
        std::fs::read(path).map(Bytes::from)
    }
}

/// One track's view of the tier: where its files go and how many segments stay in memory.
#[derive(Clone, Debug)]
pub struct Spill {
    tier: Arc<SpillTier>,
    /// Directory of this track's files, under the tier's.
    dir: PathBuf,
    /// Newest segments kept in memory.
    pub memory: usize,
}

impl Spill {
    /// The track `key` (a relative path, e.g. `live/show/src/video`) of `tier`, keeping the
    /// newest `memory` segments in memory.
    pub fn new(tier: Arc<SpillTier>, key: &str, memory: usize) -> Spill {
        Spill {
            dir: tier.dir.join(key),
            tier,
            memory: memory.max(1),
        }
    }

    /// Where segment `seq` is (or would be) on disk.
    pub fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq}.m4s"))
    }

    /// Hands `segment` to the writer; false when it had to be dropped.
    pub(super) fn put(&self, segment: Arc<StoredSegment>) -> bool {
        let ok = self.tier.put(self.path(segment.seq), segment);
        if ok {
            metrics::counter!("packgate_dvr_spilled_total").increment(1);
        } else {
            metrics::counter!("packgate_dvr_spill_dropped_total").increment(1);
            rate_limited_warn!(SPILL_WARN, "dvr_spill_full", dir = %self.dir.display(),
                "DVR disk tier queue full: segment dropped from the DVR window");
        }
        ok
    }

    /// The segment `seq` left the window: its file goes.
    pub(super) fn forget(&self, seq: u64) {
        let _ = self.tier.jobs.try_send(Job::Delete(self.path(seq)));
    }

    /// Whether segment `seq`'s bytes are still to be had (queued or on disk): false once
    /// the byte budget evicted its file.
    pub fn holds(&self, seq: u64) -> bool {
        let path = self.path(seq);
        self.tier.in_flight().get(&path).is_some() || path.exists()
    }

    /// The bytes of spilled segment `seq`.
    pub fn read(&self, seq: u64) -> std::io::Result<Bytes> {
        self.tier.read(&self.path(seq))
    }
}

fn writer(jobs: Receiver<Job>, tier: std::sync::Weak<SpillTier>, budget: u64) {
    let mut order: VecDeque<PathBuf> = VecDeque::new();
    let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
    let mut total = 0u64;
    while let Ok(job) = jobs.recv() {
        let Some(tier) = tier.upgrade() else { return };
        match job {
            Job::Write(path) => {
                let Some(seg) = tier.in_flight().get(&path).cloned() else {
                    continue;
                };
                match write(&path, &seg) {
                    Ok(size) => {
                        total += size;
                        if let Some(old) = sizes.insert(path.clone(), size) {
                            total -= old;
                        }
                        order.push_back(path.clone());
                    }
                    Err(e) => {
                        metrics::counter!("packgate_dvr_spill_errors_total").increment(1);
                        rate_limited_warn!(SPILL_WARN, "dvr_spill_write", path = %path.display(), error = %e,
                            "DVR disk tier write failed: segment dropped from the DVR window");
                    }
                }
                tier.in_flight().remove(&path);
                // Oldest first, over the budget.
                while total > budget {
                    let Some(old) = order.pop_front() else { break };
                    if let Some(size) = sizes.remove(&old) {
                        total -= size;
                        let _ = std::fs::remove_file(&old);
                        metrics::counter!("packgate_dvr_budget_evictions_total").increment(1);
                    }
                }
            }
            Job::Delete(path) => {
                if let Some(size) = sizes.remove(&path) {
                    total -= size;
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        metrics::gauge!("packgate_dvr_disk_bytes").set(total as f64);
        if order.len() > 2 * sizes.len() + 64 {
            order.retain(|p| sizes.contains_key(p));
        }
    }
}

/// Deletes our files (`*.m4s`, `*.tmp`) at `depth` below `dir` (`{app}/{name}/{label}/{track}`)
/// and the directories that leaves empty; anything else stays.
fn clear(dir: &Path, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && depth > 0 {
            clear(&path, depth - 1);
            let _ = std::fs::remove_dir(&path); // only if empty
        } else if !is_dir
            && depth == 0
            && path.extension().is_some_and(|x| x == "m4s" || x == "tmp")
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn write(path: &Path, seg: &StoredSegment) -> std::io::Result<u64> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let mut size = 0;
    for c in seg.chunks() {
        f.write_all(c)?;
        size += c.len() as u64;
    }
    drop(f);
    // Readers see the whole file or none.
    std::fs::rename(&tmp, path)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::super::{StoredPart, TrackWindow};
    use super::*;
    use std::time::{Duration, Instant, SystemTime};

    fn seg(seq: u64) -> StoredSegment {
        StoredSegment {
            seq,
            start: (seq * 180_000) as i64,
            duration: 180_000,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH,
            init_version: 0,
            discontinuity: false,
            parts: vec![StoredPart {
                id: seq,
                duration: 180_000,
                independent: true,
                data: Bytes::from(vec![seq as u8; 1000]),
            }],
        }
    }

    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "m4s"))
                .count()
        })
    }

    #[test]
    fn old_segments_move_to_disk_memory_stays_flat_and_they_read_back() {
        let dir = std::env::temp_dir().join(format!("pg-spill-{}", std::process::id()));
        // Left by a previous run: its segment goes, a stranger's file stays.
        std::fs::create_dir_all(dir.join("live/show/src/video")).unwrap();
        std::fs::write(dir.join("live/show/src/video/1.m4s"), b"old").unwrap();
        std::fs::write(dir.join("keep.txt"), b"mine").unwrap();
        let tier = SpillTier::start(&dir, u64::MAX).unwrap();
        assert!(dir.join("keep.txt").exists());
        assert!(!dir.join("live/show/src/video/1.m4s").exists());
        let spill = Spill::new(tier, "live/show/src/video", 3);
        let mut w = TrackWindow::new(20).with_spill(spill.clone());
        w.add_init(0, Bytes::from_static(b"init"));
        for seq in 1..=10 {
            w.push(seg(seq));
        }
        let held = w.bytes_held();
        for seq in 11..=20 {
            w.push(seg(seq));
        }
        assert_eq!(w.bytes_held(), held, "memory flat as the window fills");
        assert_eq!(w.bytes_held(), 3 * 1000 + 4);
        assert_eq!(w.listed().count(), 20, "the whole window is listed");
        assert!(w.spilled(17).is_some() && w.spilled(18).is_none());
        let stub = w.get(17).expect("a stub is listed and found, not a gap");
        assert!(stub.is_spilled() && !stub.is_gap() && stub.size() == 0);
        assert!(w.part(17).is_none() && w.part(super::super::SPILLED_PART).is_none());
        assert_eq!(w.get(18).unwrap().size(), 1000);
        // Read back (from the in-flight copy or the file), byte for byte.
        assert_eq!(spill.read(5).unwrap(), Bytes::from(vec![5u8; 1000]));
        let track = dir.join("live/show/src/video");
        assert!(eventually(|| files(&track) == 17), "{}", files(&track));
        assert_eq!(spill.read(1).unwrap().len(), 1000);
        // Sliding out of the window (20 + grace) deletes the file.
        for seq in 21..=30 {
            w.push(seg(seq));
        }
        assert!(w.get(7).is_none() && w.get(8).is_some());
        assert!(eventually(
            || !spill.path(7).exists() && spill.path(8).exists()
        ));
        assert!(w.bitrates().0 > 0, "bitrates from in-memory segments");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_first() {
        let dir = std::env::temp_dir().join(format!("pg-spill-budget-{}", std::process::id()));
        let tier = SpillTier::start(&dir, 4500).unwrap();
        let spill = Spill::new(tier, "a/b/src/video", 2);
        let mut w = TrackWindow::new(50).with_spill(spill.clone());
        w.add_init(0, Bytes::from_static(b"init"));
        for seq in 1..=12 {
            w.push(seg(seq));
        }
        // 10 spilled, 4 fit the budget: the newest four.
        let track = dir.join("a/b/src/video");
        assert!(eventually(|| files(&track) == 4 && spill.path(10).exists()));
        for seq in 1..=6 {
            assert!(!spill.path(seq).exists(), "{seq} evicted");
            assert!(spill.read(seq).is_err());
        }
        for seq in 7..=10 {
            assert!(spill.path(seq).exists(), "{seq} kept");
        }
        // The next segment stored drops the evicted ones from the listing (players would
        // get 404s for them); the kept stubs stay listed.
        w.push(seg(13));
        let first = w.listed().next().map(|s| s.seq);
        assert!(
            first.is_some_and(|f| (7..=8).contains(&f)),
            "listing starts at {first:?}"
        );
        assert!(w.get(6).is_none() && w.get(9).is_some_and(|s| s.is_spilled()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

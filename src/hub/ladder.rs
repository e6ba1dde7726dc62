//! A ladder: the renditions of one show that viewers see as one adaptive stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::renderings::Renderings;
use super::rendition::Rendition;
use crate::segment::timeline::LadderTimeline;

/// The renditions published under one base name in one app.
#[derive(Debug)]
pub struct Ladder {
    /// RTMP application name (first URL path segment).
    pub app: String,
    /// The ladder's base name (second URL path segment).
    pub base: String,
    renditions: RwLock<BTreeMap<String, Arc<Rendition>>>,
    /// Set (under the renditions' lock) when its last rendition was removed: no rendition
    /// joins it again, and the hub replaces it. Readable without that lock.
    retired: AtomicBool,
    updates: watch::Sender<u64>,
    /// The cut points and numbers all renditions share.
    pub timeline: Arc<LadderTimeline>,
    /// Its master playlists and MPD as last rendered, shared by the requests that ask for
    /// the same state of the ladder.
    pub renderings: Renderings,
    /// Label of the rendition whose audio is the ladder's audio playlist.
    audio_source: Mutex<Option<String>>,
}

/// What [`Ladder::remove`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The rendition was there and is gone.
    pub removed: bool,
    /// That left the ladder empty: it retired.
    pub retired: bool,
}

/// Target durations elapsed since the Unix epoch: the first segment number of a new
/// ladder, so a name published again later never reuses a segment URL a CDN may have
/// cached.
fn clock_sequence(target: Duration, now: SystemTime) -> u64 {
    crate::wallclock::epoch_number(now, u64::try_from(target.as_millis()).unwrap_or(u64::MAX))
}

impl Ladder {
    /// An empty ladder cutting segments at `target`, created at `now` (its first number).
    pub fn new(app: &str, base: &str, target: Duration, now: SystemTime) -> Self {
        Ladder {
            app: app.to_string(),
            base: base.to_string(),
            renditions: RwLock::new(BTreeMap::new()),
            retired: AtomicBool::new(false),
            updates: watch::Sender::new(0),
            timeline: Arc::new(LadderTimeline::new(target, clock_sequence(target, now))),
            renderings: Renderings::default(),
            audio_source: Mutex::new(None),
        }
    }

    /// The label of the rendition that last supplied the ladder's audio.
    pub fn current_audio_source(&self) -> Option<String> {
        self.audio_source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Which of `labels` (the renditions that can supply audio now, in listing order)
    /// supplies the ladder's audio: the one that did so last while it still can, else the
    /// first. Sources only change when one must: renditions differ in their discontinuities
    /// and gaps (a rung that reconnected has both), and a switch would change what a
    /// player already saw of the playlist's segments.
    pub fn audio_source<'a>(&self, labels: &[&'a str]) -> Option<&'a str> {
        let mut current = self.audio_source.lock().unwrap_or_else(|e| e.into_inner());
        let pick = labels
            .iter()
            .copied()
            .find(|l| current.as_deref() == Some(*l))
            .or_else(|| labels.first().copied())?;
        if current.as_deref() != Some(pick) {
            *current = Some(pick.to_string());
        }
        Some(pick)
    }

    /// The rendition labelled `label`.
    pub fn rendition(&self, label: &str) -> Option<Arc<Rendition>> {
        self.lock_read().get(label).cloned()
    }

    /// All renditions, ordered by label.
    pub fn renditions(&self) -> Vec<Arc<Rendition>> {
        self.lock_read().values().cloned().collect()
    }

    /// Puts `rendition` under its label if the label still holds `expected` (the same
    /// object, or nothing) and the ladder is not retired: what a publish saw and what it
    /// changes are one critical section. False when either changed meanwhile.
    pub fn swap(&self, expected: Option<&Arc<Rendition>>, rendition: Arc<Rendition>) -> bool {
        let mut map = self.renditions.write().unwrap_or_else(|e| e.into_inner());
        let current = map.get(&rendition.label);
        let same = match (current, expected) {
            (Some(c), Some(e)) => Arc::ptr_eq(c, e),
            (None, None) => true,
            _ => false,
        };
        if !same || self.retired.load(Ordering::Acquire) {
            return false;
        }
        map.insert(rendition.label.clone(), rendition);
        drop(map);
        self.notify();
        true
    }

    /// Removes `rendition` if its label still holds that very object. When that leaves
    /// the ladder empty, the ladder retires in the same critical section (see
    /// [`Ladder::is_retired`]).
    pub fn remove(&self, rendition: &Arc<Rendition>) -> Removed {
        let mut map = self.renditions.write().unwrap_or_else(|e| e.into_inner());
        let same = map
            .get(&rendition.label)
            .is_some_and(|r| Arc::ptr_eq(r, rendition));
        if same {
            map.remove(&rendition.label);
            if map.is_empty() {
                self.retired.store(true, Ordering::Release);
            }
        }
        let retired = same && map.is_empty();
        drop(map);
        self.notify();
        Removed {
            removed: same,
            retired,
        }
    }

    /// True once its last rendition was removed: it takes no rendition again, and the hub
    /// maps a fresh ladder in its place.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// True when no rendition is left.
    pub fn is_empty(&self) -> bool {
        self.lock_read().is_empty()
    }

    /// Wakes everyone waiting for a change (a new segment, a rendition joining or ending).
    pub fn notify(&self) {
        self.updates.send_modify(|v| *v += 1);
    }

    /// A receiver that sees every later [`Ladder::notify`]: for requests that wait on the
    /// whole ladder (a manifest, the first playlist); a request for one track waits on its
    /// own track ([`Rendition::subscribe`]).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    fn lock_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Rendition>>> {
        self.renditions.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audio_source_changes_only_when_it_must() {
        let ladder = Ladder::new("live", "show", Duration::from_secs(2), SystemTime::now());
        assert_eq!(ladder.audio_source(&[]), None);
        assert_eq!(ladder.audio_source(&["360p", "720p"]), Some("360p"));
        // 360p drops: 720p takes over, and keeps it when 360p comes back.
        assert_eq!(ladder.audio_source(&["720p"]), Some("720p"));
        assert_eq!(ladder.audio_source(&["360p", "720p"]), Some("720p"));
        assert_eq!(ladder.audio_source(&["240p", "360p"]), Some("240p"));
    }
}

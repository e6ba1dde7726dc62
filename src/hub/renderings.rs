//! Renderings shared between requests: a playlist or manifest is rendered once for a given
//! position of the stream, and every request that asks for that position (typically all
//! the LL-HLS requests a new part releases at once) gets the very same bytes.
//!
//! The cache is keyed by everything the text depends on, so it never serves a stale
//! rendering; it keeps only the newest rendering per slot (one playlist of one feed, with or
//! without delta updates, ...). Its lock is held only to look up or store an entry, never
//! while rendering: two requests racing on a new position may both render, which is harmless.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// Entries kept per cache: one per slot in use (feeds × delta or not, master, MPD).
const KEPT: usize = 12;

/// What a rendering depends on. Equal keys render equal texts.
pub trait RenderKey: PartialEq + Send + Sync + 'static {
    /// True when `other` renders the same resource (at another position, perhaps): the
    /// newer rendering replaces the older in the cache.
    fn same_slot(&self, other: &Self) -> bool;
}

struct Entry {
    key: Box<dyn Any + Send + Sync>,
    body: Bytes,
}

/// A small cache of the latest renderings of one rendition's (or ladder's) resources.
#[derive(Default)]
pub struct Renderings {
    entries: Mutex<VecDeque<Entry>>,
}

impl std::fmt::Debug for Renderings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderings").finish_non_exhaustive()
    }
}

impl Renderings {
    /// The rendering for `key`: the shared one if it exists, else `render(&key)`'s, which is
    /// then kept for the next request.
    pub fn get_or_render<K: RenderKey>(&self, key: K, render: impl FnOnce(&K) -> Bytes) -> Bytes {
        if let Some(body) = self.get(&key) {
            ::metrics::counter!("packgate_http_renderings_shared_total").increment(1);
            return body;
        }
        let body = render(&key);
        ::metrics::counter!("packgate_http_renderings_total").increment(1);
        self.put(key, body.clone());
        body
    }

    fn get<K: RenderKey>(&self, key: &K) -> Option<Bytes> {
        self.lock()
            .iter()
            .find(|e| e.key.downcast_ref::<K>() == Some(key))
            .map(|e| e.body.clone())
    }

    fn put<K: RenderKey>(&self, key: K, body: Bytes) {
        let mut entries = self.lock();
        entries.retain(|e| !e.key.downcast_ref::<K>().is_some_and(|k| k.same_slot(&key)));
        entries.push_back(Entry {
            key: Box::new(key),
            body,
        });
        while entries.len() > KEPT {
            entries.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(PartialEq)]
    struct Key {
        slot: u8,
        position: u64,
    }

    impl RenderKey for Key {
        fn same_slot(&self, other: &Self) -> bool {
            self.slot == other.slot
        }
    }

    /// Another key type, to show keys of different types never match.
    impl RenderKey for u8 {
        fn same_slot(&self, other: &Self) -> bool {
            self == other
        }
    }

    fn text(k: &Key) -> Bytes {
        Bytes::from(format!("slot {} at {}", k.slot, k.position))
    }

    fn key(slot: u8, position: u64) -> Key {
        Key { slot, position }
    }

    #[test]
    fn one_rendering_per_position_is_shared() {
        let cache = Renderings::default();
        let a = cache.get_or_render(key(0, 1), text);
        let b = cache.get_or_render(key(0, 1), |_| panic!("rendered twice"));
        assert_eq!(a.as_ptr(), b.as_ptr(), "the very same bytes");
        // Another slot is kept beside it.
        let other = cache.get_or_render(key(1, 1), text);
        assert_eq!(other, "slot 1 at 1");
        // A new position renders anew and replaces the old one of its slot.
        let c = cache.get_or_render(key(0, 2), text);
        assert_eq!(c, "slot 0 at 2");
        assert!(cache.get(&key(0, 1)).is_none());
        assert!(cache.get(&key(1, 1)).is_some());
        assert_eq!(cache.lock().len(), 2);
    }

    #[test]
    fn bounded_and_keyed_by_type() {
        let cache = Renderings::default();
        for slot in 0..40u8 {
            cache.get_or_render(key(slot, 0), text);
        }
        assert_eq!(cache.lock().len(), KEPT);
        assert!(cache.get(&0u8).is_none(), "another key type never matches");
        let o = cache.get_or_render(0u8, |_| Bytes::from_static(b"other"));
        assert_eq!(o, "other");
    }
}

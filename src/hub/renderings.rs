//! Renderings shared between requests: a playlist or manifest is rendered once for a given
//! position of the stream, and every request that asks for that position (typically all
//! the LL-HLS requests a new part releases at once) gets the very same bytes.
//!
//! The cache is keyed by everything the text depends on, so it never serves a stale
//! rendering; it keeps only the newest rendering per slot (one playlist of one feed, with or
//! without delta updates, ...). Its lock is held only to look up or store an entry, never
//! while rendering: two requests racing on a new position may both render, which is harmless.
//!
//! A rendering carries what HTTP derives from its text once rather than per request: a
//! content tag (the ETag) and, on first demand, an encoded copy (gzip), so ten thousand
//! requests released by one part share one compression too.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Entries kept per cache: one per slot in use (feeds × delta or not, master, MPD).
const KEPT: usize = 12;

/// What a rendering depends on. Equal keys render equal texts.
pub trait RenderKey: PartialEq + Send + Sync + 'static {
    /// True when `other` renders the same resource (at another position, perhaps): the
    /// newer rendering replaces the older in the cache.
    fn same_slot(&self, other: &Self) -> bool;
}

/// One rendered text, shared by every request for its position.
#[derive(Debug)]
pub struct Rendering {
    /// The text.
    pub body: Bytes,
    /// A digest of the text (hex): equal texts, equal tags, in any process of this build.
    pub tag: String,
    /// The encoded copy, made by the first request that wants it.
    encoded: OnceLock<Bytes>,
}

impl Rendering {
    /// Wraps `body`, computing its tag.
    pub fn new(body: Bytes) -> Rendering {
        let digest = Sha256::digest(&body);
        let tag = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Rendering {
            body,
            tag,
            encoded: OnceLock::new(),
        }
    }

    /// The encoded copy, made with `encode` by the first caller. No lock is held while
    /// encoding: callers racing on a fresh rendering may each encode (harmless, the results
    /// are equal); the first one stored is kept.
    pub fn encoded(&self, encode: impl FnOnce(&[u8]) -> Bytes) -> Bytes {
        if let Some(e) = self.encoded.get() {
            return e.clone();
        }
        let e = encode(&self.body);
        self.encoded.get_or_init(|| e).clone()
    }
}

struct Entry {
    key: Box<dyn Any + Send + Sync>,
    body: Arc<Rendering>,
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
    pub fn get_or_render<K: RenderKey>(
        &self,
        key: K,
        render: impl FnOnce(&K) -> Bytes,
    ) -> Arc<Rendering> {
        if let Some(body) = self.get(&key) {
            ::metrics::counter!("packgate_http_renderings_shared_total").increment(1);
            return body;
        }
        let body = Arc::new(Rendering::new(render(&key)));
        ::metrics::counter!("packgate_http_renderings_total").increment(1);
        self.put(key, body.clone());
        body
    }

    fn get<K: RenderKey>(&self, key: &K) -> Option<Arc<Rendering>> {
        self.lock()
            .iter()
            .find(|e| e.key.downcast_ref::<K>() == Some(key))
            .map(|e| e.body.clone())
    }

    fn put<K: RenderKey>(&self, key: K, body: Arc<Rendering>) {
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
        assert_eq!(a.body.as_ptr(), b.body.as_ptr(), "the very same bytes");
        assert_eq!(a.tag, b.tag);
        // Another slot is kept beside it.
        let other = cache.get_or_render(key(1, 1), text);
        assert_eq!(other.body, "slot 1 at 1");
        assert_ne!(other.tag, a.tag, "another text, another tag");
        // A new position renders anew and replaces the old one of its slot.
        let c = cache.get_or_render(key(0, 2), text);
        assert_eq!(c.body, "slot 0 at 2");
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
        assert_eq!(o.body, "other");
    }

    #[test]
    fn the_encoded_copy_is_made_once() {
        let r = Rendering::new(Bytes::from_static(b"text"));
        assert_eq!(r.tag, Rendering::new(Bytes::from_static(b"text")).tag);
        assert_eq!(r.tag.len(), 24);
        let a = r.encoded(|b| Bytes::from(b.to_ascii_uppercase()));
        let b = r.encoded(|_| panic!("encoded twice"));
        assert_eq!(a, "TEXT");
        assert_eq!(a.as_ptr(), b.as_ptr());
    }
}

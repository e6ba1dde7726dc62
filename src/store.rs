//! The per-track window of finished segments, kept in memory as shared `Bytes`.
//!
//! A segment leaves the playlist when the window slides, but stays fetchable for a few
//! more segment durations (RFC 8216bis 6.2.2: a client may still be loading a playlist
//! that lists it).
//!
//! A segment is stored as its parts: with low latency on, the LL-HLS parts (each a CMAF
//! chunk, `moof` + `mdat`, the first one led by `styp`); otherwise one part holding the whole
//! segment. Serving a segment writes its parts back to back, so a segment and its parts share
//! the same bytes in memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

pub mod spill;

/// The number of a DVR stub's one empty part ([`StoredSegment::is_spilled`]).
pub const SPILLED_PART: u64 = u64::MAX;

/// Segments kept fetchable after they leave the playlist.
pub const GRACE_SEGMENTS: usize = 3;

/// One part of a segment: an LL-HLS part, or the whole segment when parts are off.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPart {
    /// Running number of the part within the track, the part's URL name; the next part's
    /// number is known in advance, so EXT-X-PRELOAD-HINT can name it.
    pub id: u64,
    /// Duration, track timescale.
    pub duration: u64,
    /// Starts with a sync sample.
    pub independent: bool,
    /// The bytes (`moof` + `mdat`, led by `styp` in a segment's first part).
    pub data: Bytes,
}

/// One segment of one track, finished or (as [`TrackWindow::open`]) still growing.
#[derive(Clone, Debug)]
pub struct StoredSegment {
    /// Media sequence number.
    pub seq: u64,
    /// Decode time of the first sample, track timescale.
    pub start: i64,
    /// Duration, track timescale.
    pub duration: u64,
    /// The track's timescale.
    pub timescale: u32,
    /// Wall-clock time of the first sample (EXT-X-PROGRAM-DATE-TIME).
    pub wall_clock: SystemTime,
    /// Which init segment decodes it (bumps on reconnect or codec change).
    pub init_version: u64,
    /// True when the segment starts a new timeline (after a reconnect or codec change).
    pub discontinuity: bool,
    /// The segment's bytes, as its parts in order.
    pub parts: Vec<StoredPart>,
}

impl StoredSegment {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.parts.iter().map(|p| p.data.len()).sum()
    }

    /// The segment's bytes, one chunk per part (no copy).
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        self.parts.iter().map(|p| &p.data)
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.duration as f64 / f64::from(self.timescale)
    }

    /// A gap: a number of the ladder's timeline this track has no media for (its encoder was
    /// away). Listed with EXT-X-GAP so numbers stay contiguous; it has no bytes, and
    /// requests for it answer 404.
    pub fn is_gap(&self) -> bool {
        self.parts.is_empty()
    }

    /// A DVR stub: the segment's bytes moved to the disk tier ([`spill`]); it keeps one
    /// empty part numbered [`SPILLED_PART`] (no part URL can name it), so it is neither a
    /// gap nor servable from memory.
    pub fn is_spilled(&self) -> bool {
        matches!(self.parts.as_slice(), [p] if p.id == SPILLED_PART && p.data.is_empty())
    }
}

/// Source of [`TrackWindow::revision`] numbers, shared by all windows so that a revision
/// names one window's content for the life of the process.
static REVISIONS: AtomicU64 = AtomicU64::new(0);

/// A sliding window of one track's segments plus the init segments they refer to.
///
/// Cloning is cheap and does not depend on the window's length: the list of finished
/// segments is one shared `Arc`, copied only when a segment is added or dropped while a
/// reader still holds the old list (once per segment, not once per part), and bytes are
/// `Bytes`. Readers get immutable snapshots of it while the segmenter works on a copy.
#[derive(Clone, Debug)]
pub struct TrackWindow {
    window: usize,
    inits: VecDeque<(u64, Bytes)>,
    segments: Arc<VecDeque<Arc<StoredSegment>>>,
    /// Longest segment seen, seconds; EXT-X-TARGETDURATION never goes below it.
    max_duration: f64,
    discontinuities_dropped: u64,
    /// The segment being cut, with the parts it has so far (low latency only).
    open: Option<StoredSegment>,
    /// The number the next part will get.
    next_part_id: u64,
    /// Init versions kept at most (`limits.init_versions`).
    max_inits: usize,
    /// Changes with every change of the window; see [`TrackWindow::revision`].
    revision: u64,
    /// DVR: the disk tier older segments move to (their stubs, without bytes, stay listed).
    spill: Option<spill::Spill>,
}

impl TrackWindow {
    /// An empty window listing `window` segments.
    pub fn new(window: usize) -> Self {
        Self::with_first_part(window, 0)
    }

    /// An empty window whose part numbers start at `first_part` (chosen by the caller so
    /// that a later publish of the same name never reuses a part URL a CDN may cache).
    pub fn with_first_part(window: usize, first_part: u64) -> Self {
        TrackWindow {
            window,
            inits: VecDeque::new(),
            segments: Arc::default(),
            max_duration: 0.0,
            discontinuities_dropped: 0,
            open: None,
            next_part_id: first_part,
            max_inits: crate::config::LimitsConfig::default().init_versions,
            revision: REVISIONS.fetch_add(1, Ordering::Relaxed),
            spill: None,
        }
    }

    /// DVR: keeps only the newest `spill.memory` segments' bytes in memory; older ones go
    /// to the disk tier and stay listed as stubs (a stored segment without parts).
    pub fn with_spill(mut self, spill: spill::Spill) -> Self {
        self.spill = Some(spill);
        self
    }

    /// Where segment `seq`'s bytes are when it was moved to the disk tier.
    pub fn spilled(&self, seq: u64) -> Option<&spill::Spill> {
        let spill = self.spill.as_ref()?;
        self.get(seq).filter(|s| s.is_spilled()).map(|_| spill)
    }

    /// Moves the bytes of segments older than the newest `memory` to the disk tier.
    fn spill_old(&mut self) {
        let Some(spill) = self.spill.as_ref() else {
            return;
        };
        let Some(mut i) = self.segments.len().checked_sub(spill.memory + 1) else {
            return;
        };
        // Older ones than the first stub met are spilled already; gaps have nothing to move.
        while let Some(seg) = self.segments.get(i).filter(|s| !s.is_spilled()) {
            if !seg.is_gap() {
                spill.put(seg.clone());
                let independent = seg.parts.first().is_some_and(|p| p.independent);
                Arc::make_mut(&mut self.segments)[i] = Arc::new(StoredSegment {
                    parts: vec![StoredPart {
                        id: SPILLED_PART,
                        duration: seg.duration,
                        independent,
                        data: Bytes::new(),
                    }],
                    ..(**seg).clone()
                });
            }
            let Some(prev) = i.checked_sub(1) else { break };
            i = prev;
        }
    }

    /// Keeps at most `n` (at least 1) init versions (`limits.init_versions`): past that,
    /// the oldest goes, and with it the oldest segments, which could not be decoded without it.
    pub fn with_init_versions(mut self, n: usize) -> Self {
        self.max_inits = n.max(1);
        self
    }

    /// A number that changes whenever the window does, never shared with another window's
    /// state: everything rendered from the window (playlists, manifests) is a function of it,
    /// so renderings can be cached by it.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn touch(&mut self) {
        self.revision = REVISIONS.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a part to the open segment, opening it (from `head`, whose `parts` are
    /// ignored) when it is a new one. Returns the part's number.
    pub fn push_part(
        &mut self,
        head: impl FnOnce() -> StoredSegment,
        duration: u64,
        independent: bool,
        data: Bytes,
    ) -> u64 {
        self.touch();
        let id = self.next_part_id;
        self.next_part_id += 1;
        let open = self.open.get_or_insert_with(|| StoredSegment {
            duration: 0,
            parts: Vec::new(),
            ..head()
        });
        open.duration += duration;
        open.parts.push(StoredPart {
            id,
            duration,
            independent,
            data,
        });
        id
    }

    /// The segment being cut, if it has parts yet.
    pub fn open(&self) -> Option<&StoredSegment> {
        self.open.as_ref()
    }

    /// The number the next part will get (EXT-X-PRELOAD-HINT).
    pub fn next_part_id(&self) -> u64 {
        self.next_part_id
    }

    /// A part by number, from the open segment or a kept one.
    pub fn part(&self, id: u64) -> Option<&StoredPart> {
        self.part_in(id).map(|(_, p)| p)
    }

    /// A part by number with the segment it belongs to (its wall clock dates the part).
    pub fn part_in(&self, id: u64) -> Option<(&StoredSegment, &StoredPart)> {
        fn in_segment(s: &StoredSegment, id: u64) -> Option<(&StoredSegment, &StoredPart)> {
            if s.is_spilled() {
                return None;
            }
            let first = s.parts.first()?.id;
            let part = s.parts.get(usize::try_from(id.checked_sub(first)?).ok()?)?;
            Some((s, part))
        }
        self.open
            .as_ref()
            .and_then(|s| in_segment(s, id))
            .or_else(|| self.segments.iter().rev().find_map(|s| in_segment(s, id)))
            .filter(|(_, p)| p.id == id)
    }

    /// Registers an init segment under `version`.
    pub fn add_init(&mut self, version: u64, init: Bytes) {
        self.touch();
        self.inits.retain(|(v, _)| *v != version);
        self.inits.push_back((version, init));
        self.prune_inits();
    }

    /// Drops init versions no kept segment refers to, except the newest; then, over the
    /// cap, the oldest versions and the segments that refer to them.
    fn prune_inits(&mut self) {
        let newest = self.inits.back().map(|(v, _)| *v);
        let segments = &self.segments;
        self.inits
            .retain(|(v, _)| Some(*v) == newest || segments.iter().any(|s| s.init_version == *v));
        while self.inits.len() > self.max_inits {
            let Some((old, _)) = self.inits.pop_front() else {
                break;
            };
            while self.segments.front().is_some_and(|s| s.init_version == old) {
                self.pop_segment();
            }
        }
    }

    fn pop_segment(&mut self) {
        if let Some(old) = Arc::make_mut(&mut self.segments).pop_front() {
            if old.discontinuity {
                self.discontinuities_dropped += 1;
            }
            if let (Some(spill), true) = (&self.spill, old.is_spilled()) {
                spill.forget(old.seq);
            }
        }
    }

    /// The init segment for `version`, if still kept.
    pub fn init(&self, version: u64) -> Option<&Bytes> {
        self.inits
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, b)| b)
    }

    /// Appends a finished segment and slides the window. A segment without parts takes
    /// those of the open segment with its number (they are its bytes).
    pub fn push(&mut self, mut segment: StoredSegment) {
        self.touch();
        if let Some(open) = self.open.take() {
            if open.seq == segment.seq && segment.parts.is_empty() {
                segment.parts = open.parts;
            }
        }
        if segment.parts.is_empty() {
            return;
        }
        self.max_duration = self.max_duration.max(segment.duration_secs());
        Arc::make_mut(&mut self.segments).push_back(Arc::new(segment));
        while self.segments.len() > self.window + GRACE_SEGMENTS {
            self.pop_segment();
        }
        self.spill_old();
        self.drop_evicted();
        self.prune_inits();
    }

    /// DVR: stubs at the window's start whose files the disk budget evicted leave the
    /// listing (oldest go first, so only the front is checked: one stat per segment).
    fn drop_evicted(&mut self) {
        let Some(spill) = self.spill.clone() else {
            return;
        };
        while self
            .segments
            .front()
            .is_some_and(|s| s.is_spilled() && !spill.holds(s.seq))
        {
            self.pop_segment();
        }
    }

    /// Appends a gap (see [`StoredSegment::is_gap`]) for number `seq`, numbered after the
    /// last segment, before the segment that follows it is stored. `head` gives the gap's
    /// place on the timeline; its `parts` are dropped.
    pub fn push_gap(&mut self, head: StoredSegment) {
        if self.last().is_some_and(|l| l.seq >= head.seq) {
            return;
        }
        self.touch();
        Arc::make_mut(&mut self.segments).push_back(Arc::new(StoredSegment {
            parts: Vec::new(),
            discontinuity: false,
            ..head
        }));
        while self.segments.len() > self.window + GRACE_SEGMENTS {
            self.pop_segment();
        }
        self.prune_inits();
    }

    /// The segments a playlist lists now (the last `window`).
    pub fn listed(&self) -> impl Iterator<Item = &StoredSegment> {
        let skip = self.segments.len().saturating_sub(self.window);
        self.segments.iter().skip(skip).map(|s| &**s)
    }

    /// Count of discontinuities that have slid out of the playlist
    /// (EXT-X-DISCONTINUITY-SEQUENCE). The first listed segment's counts too: the
    /// playlist writes no EXT-X-DISCONTINUITY before its first segment, and its number
    /// must not change when the segment before it slides out (RFC 8216 6.2.2).
    pub fn discontinuity_sequence(&self) -> u64 {
        let skip = self.segments.len().saturating_sub(self.window);
        self.discontinuities_dropped
            + self
                .segments
                .iter()
                .take(skip + 1)
                .filter(|s| s.discontinuity)
                .count() as u64
    }

    /// A segment by sequence number, while it is still kept (never a gap: it has no bytes).
    pub fn get(&self, seq: u64) -> Option<&StoredSegment> {
        // Numbers are increasing but not always contiguous across renditions' histories.
        let idx = self.segments.binary_search_by_key(&seq, |s| s.seq).ok()?;
        self.segments.get(idx).map(|s| &**s).filter(|s| !s.is_gap())
    }

    /// The newest segment.
    pub fn last(&self) -> Option<&StoredSegment> {
        self.segments.back().map(|s| &**s)
    }

    /// True when no segment has been stored yet.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Longest segment duration seen so far, in seconds.
    pub fn max_duration(&self) -> f64 {
        self.max_duration
    }

    /// Bytes held by kept segments and init segments (for metrics).
    pub fn bytes_held(&self) -> usize {
        self.segments.iter().map(|s| s.size()).sum::<usize>()
            + self.open.as_ref().map_or(0, StoredSegment::size)
            + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// Peak and average bits per second over the listed segments.
    pub fn bitrates(&self) -> (u64, u64) {
        let (mut peak, mut bytes, mut secs) = (0f64, 0usize, 0f64);
        // Gaps and spilled (DVR) segments have no bytes here: they do not count.
        for s in self.listed().filter(|s| !s.is_gap() && !s.is_spilled()) {
            let d = s.duration_secs();
            if d > 0.0 {
                peak = peak.max(s.size() as f64 * 8.0 / d);
            }
            bytes += s.size();
            secs += d;
        }
        let avg = if secs > 0.0 {
            bytes as f64 * 8.0 / secs
        } else {
            0.0
        };
        (peak.ceil() as u64, avg.ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u64, secs: u64, disc: bool) -> StoredSegment {
        StoredSegment {
            seq,
            start: (seq * secs * 1000) as i64,
            duration: secs * 1000,
            timescale: 1000,
            wall_clock: SystemTime::UNIX_EPOCH,
            init_version: if disc { 1 } else { 0 },
            discontinuity: disc,
            parts: vec![StoredPart {
                id: seq,
                duration: secs * 1000,
                independent: true,
                data: Bytes::from(vec![0u8; 1000]),
            }],
        }
    }

    #[test]
    fn parts_build_the_open_segment_then_become_the_segment() {
        let mut w = TrackWindow::with_first_part(3, 500);
        let head = || StoredSegment {
            parts: Vec::new(),
            ..seg(1, 2, false)
        };
        assert_eq!(w.next_part_id(), 500);
        let a = w.push_part(head, 1000, true, Bytes::from_static(b"ab"));
        let b = w.push_part(head, 1000, false, Bytes::from_static(b"cd"));
        assert_eq!((a, b), (500, 501));
        assert_eq!(w.open().map(|o| o.duration), Some(2000));
        assert_eq!(w.open().map(|o| (o.seq, o.parts.len())), Some((1, 2)));
        assert!(w.get(1).is_none(), "an open segment is not listed");
        w.push(head());
        assert!(w.open().is_none());
        let s = w.get(1).expect("stored");
        let joined: Vec<u8> = s.chunks().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined, b"abcd");
        // The segment holds the very same buffers as its parts.
        assert_eq!(s.parts[1].data.as_ptr(), w.part(501).unwrap().data.as_ptr());
        assert!(w.part(502).is_none() && w.part(499).is_none());
        assert_eq!(w.next_part_id(), 502);
    }

    #[test]
    fn a_copy_shares_segments_and_revisions_follow_changes() {
        let mut w = TrackWindow::new(3);
        w.push(seg(1, 2, false));
        let copy = w.clone();
        assert_eq!(copy.revision(), w.revision(), "same content, same revision");
        assert!(
            std::ptr::eq(copy.get(1).unwrap(), w.get(1).unwrap()),
            "shared, not copied"
        );
        w.push(seg(2, 2, false));
        assert_ne!(w.revision(), copy.revision());
        assert!(copy.get(2).is_none(), "the copy does not change");
        let other = TrackWindow::new(3);
        assert_ne!(
            other.revision(),
            copy.revision(),
            "never shared between windows"
        );
    }

    #[test]
    fn window_slides_but_keeps_grace_segments_fetchable() {
        let mut w = TrackWindow::new(3);
        w.add_init(0, Bytes::from_static(b"init"));
        for seq in 1..=10 {
            w.push(seg(seq, 2, false));
        }
        assert_eq!(
            w.listed().map(|s| s.seq).collect::<Vec<_>>(),
            vec![8, 9, 10]
        );
        assert!(w.get(5).is_some());
        assert!(w.get(4).is_none());
        assert!(w.get(11).is_none());
        assert_eq!(w.bitrates(), (4000, 4000));
        assert_eq!(w.max_duration(), 2.0);
    }

    #[test]
    fn discontinuity_sequence_counts_what_slid_out() {
        let mut w = TrackWindow::new(2);
        w.add_init(0, Bytes::from_static(b"a"));
        w.push(seg(1, 2, false));
        w.add_init(1, Bytes::from_static(b"b"));
        w.push(seg(2, 2, true));
        assert_eq!(w.discontinuity_sequence(), 0);
        // Segment 2 becomes the first listed: its tag is no longer written, so it counts.
        w.push(StoredSegment {
            init_version: 1,
            ..seg(3, 2, false)
        });
        assert_eq!(w.listed().next().map(|s| s.seq), Some(2));
        assert_eq!(w.discontinuity_sequence(), 1);
        for seq in 4..=10 {
            w.push(StoredSegment {
                init_version: 1,
                ..seg(seq, 2, false)
            });
        }
        assert_eq!(w.discontinuity_sequence(), 1);
        assert!(w.init(0).is_none(), "unreferenced init is dropped");
        assert!(w.init(1).is_some());
    }

    #[test]
    fn init_versions_are_capped() {
        let mut w = TrackWindow::new(6).with_init_versions(2);
        // Codec changes with no segment between them keep only the newest init.
        for v in 0..300 {
            w.add_init(v, Bytes::from(vec![0u8; 1000]));
        }
        assert_eq!(w.bytes_held(), 1000);
        assert!(w.init(299).is_some() && w.init(298).is_none());
        // A change per segment: the oldest versions go with the segments using them.
        for seq in 1..=5 {
            w.add_init(1000 + seq, Bytes::from_static(b"i"));
            w.push(StoredSegment {
                init_version: 1000 + seq,
                ..seg(seq, 2, true)
            });
        }
        assert!(w.init(1005).is_some() && w.init(1004).is_some());
        assert!(w.init(1003).is_none());
        assert_eq!(w.listed().map(|s| s.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert!(w.get(3).is_none(), "its init is gone");
        // Three dropped, and the first listed one's own (its tag is not written).
        assert_eq!(w.discontinuity_sequence(), 4);
    }
}

//! Snapshot and copy-on-write semantics of a rendition's state.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::codec::aac::AacConfig;
use crate::store::StoredSegment;

/// A track output with an empty window (the codec does not matter here).
fn track() -> TrackOutput {
    TrackOutput {
        config: CodecConfig::Aac(AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap()),
        init_version: 0,
        window: TrackWindow::new(6),
    }
}

/// Adds a 200 ms part of segment `seq` to `kind`'s window (creating the track); shared
/// by the tests of the read side.
pub(crate) fn add_part(state: &mut RenditionState, kind: TrackKind, seq: u64) {
    let head = || StoredSegment {
        seq,
        start: 0,
        duration: 0,
        timescale: 1000,
        wall_clock: SystemTime::UNIX_EPOCH,
        init_version: 0,
        discontinuity: false,
        parts: Vec::new(),
    };
    let window = &mut state.track_mut(kind).get_or_insert_with(track).window;
    window.push_part(head, 200, true, Bytes::from_static(b"part"));
}

#[test]
fn a_held_snapshot_neither_blocks_the_writer_nor_changes() {
    let r = Rendition::new("720p", "show_720p", 1);
    let before = r.read();
    // With a lock-guard read, writing here (same thread, snapshot still held) would
    // deadlock; with snapshots it just makes a new one.
    r.write().misalignment_ms = 5.0;
    add_part(&mut r.write(), TrackKind::Video, 1);
    assert_eq!(before.misalignment_ms, 0.0, "an old snapshot never changes");
    assert!(before.video.is_none());
    let after = r.read();
    assert_eq!(after.misalignment_ms, 5.0);
    assert_eq!(
        after.video.as_ref().map(|t| t.window.next_part_id()),
        Some(1)
    );
    // Two reads without a write in between share one snapshot.
    assert!(Arc::ptr_eq(&after, &r.read()));
}

#[test]
fn copies_share_the_media_bytes() {
    let r = Rendition::new("src", "show", 1);
    add_part(&mut r.write(), TrackKind::Video, 1);
    let old = r.read();
    r.write().ended = true;
    let new = r.read();
    assert!(!Arc::ptr_eq(&old, &new));
    let part = |s: &RenditionState| {
        s.video.as_ref().unwrap().window.open().unwrap().parts[0]
            .data
            .as_ptr()
    };
    assert_eq!(part(&old), part(&new), "copy on write copies no media");
}

#[test]
fn a_guard_that_only_reads_publishes_nothing() {
    let r = Rendition::new("src", "show", 1);
    let before = r.read();
    let moves = r.subscribe(TrackKind::Video);
    {
        let w = r.write();
        assert!(!w.ended);
    }
    assert!(Arc::ptr_eq(&before, &r.read()));
    assert!(!moves.has_changed().unwrap());
}

#[test]
fn each_track_moves_its_own_channel_only() {
    let r = Rendition::new("src", "show", 1);
    let mut video = r.subscribe(TrackKind::Video);
    let mut audio = r.subscribe(TrackKind::Audio);
    add_part(&mut r.write(), TrackKind::Video, 1);
    assert!(video.has_changed().unwrap());
    assert!(!audio.has_changed().unwrap(), "audio waiters sleep on");
    video.borrow_and_update();
    // A change that moves no track (alignment figures) wakes nobody.
    r.write().misalignment_ms = 3.0;
    assert!(!video.has_changed().unwrap() && !audio.has_changed().unwrap());
    add_part(&mut r.write(), TrackKind::Audio, 1);
    assert!(audio.has_changed().unwrap() && !video.has_changed().unwrap());
    audio.borrow_and_update();
    // Ending moves every track: their held requests answer with the final playlist.
    r.write().ended = true;
    assert!(video.has_changed().unwrap() && audio.has_changed().unwrap());
    assert!(video.borrow_and_update().position.ended);
}

#[test]
fn an_overtaken_publication_never_replaces_a_newer_one() {
    let r = Rendition::new("src", "show", 1);
    let mut newer = (*r.read()).clone();
    add_part(&mut newer, TrackKind::Video, 1);
    let newer = Arc::new(newer);
    let mut older = (*r.read()).clone();
    older.misalignment_ms = 1.0;
    let mut video = r.subscribe(TrackKind::Video);
    r.publish(2, newer.clone());
    r.publish(1, Arc::new(older));
    assert!(Arc::ptr_eq(&r.read(), &newer));
    assert!(video.has_changed().unwrap());
    assert_eq!(
        video.borrow_and_update().position,
        newer.position(TrackKind::Video),
        "the channel is not moved back either"
    );
}

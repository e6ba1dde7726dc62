//! LL-HLS blocking playlist reload (RFC 8216bis 6.2.5.2): the `_HLS_msn`, `_HLS_part` and
//! `_HLS_skip` delivery directives, and holding a request until what it waits for exists.
//!
//! A held request costs one task and one `watch` receiver; it is woken when the track it
//! waits for moves (a part or segment stored there), never by polling, and never by the
//! other tracks and renditions of the ladder.

use std::time::Duration;

use tokio::sync::watch;

use crate::drain::Drain;
use crate::store::TrackWindow;

/// The delivery directives of one playlist request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`: answer once this media sequence number is complete (or, with `part`,
    /// once that part of it exists).
    pub msn: Option<u64>,
    /// `_HLS_part`: the part index within segment `msn`.
    pub part: Option<u32>,
    /// `_HLS_skip=YES|v2`: a delta update.
    pub skip: bool,
}

impl Directives {
    /// Parses a query string; a malformed directive is an error message for a 400.
    pub fn parse(query: &str) -> Result<Directives, String> {
        let mut d = Directives::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "_HLS_msn" => {
                    d.msn = Some(
                        value
                            .parse()
                            .map_err(|_| format!("bad _HLS_msn {value:?}"))?,
                    )
                }
                "_HLS_part" => {
                    d.part = Some(
                        value
                            .parse()
                            .map_err(|_| format!("bad _HLS_part {value:?}"))?,
                    )
                }
                "_HLS_skip" => d.skip = matches!(value, "YES" | "v2"),
                _ => {} // other parameters (cache busters) are not ours
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err("_HLS_part without _HLS_msn".to_string());
        }
        Ok(d)
    }
}

/// The newest media sequence number a window mentions: the open segment's, else the last
/// finished one's.
fn last_msn(window: &TrackWindow) -> Option<u64> {
    window
        .open()
        .map(|o| o.seq)
        .max(window.last().map(|s| s.seq))
}

/// True when a request for `msn` must be refused: more than two segments ahead of the
/// playlist (RFC 8216bis 6.2.5.2).
pub fn too_far(window: &TrackWindow, msn: u64) -> bool {
    last_msn(window).is_some_and(|last| msn > last + 2)
}

/// True once the playlist holds segment `msn` complete, or its part `part`.
pub fn satisfied(window: &TrackWindow, msn: u64, part: Option<u32>) -> bool {
    if window.last().is_some_and(|s| s.seq >= msn) {
        return true;
    }
    let Some(part) = part else { return false };
    window
        .open()
        .is_some_and(|o| o.seq > msn || (o.seq == msn && o.parts.len() > part as usize))
}

/// Waits until `ready` holds, checking it again each time `updates` moves, for at most
/// `limit`, or until the server drains (then the caller answers with what exists).
/// Returns whether it became ready. `updates` must be subscribed before `ready` is first
/// checked, so no move is missed between the check and the wait.
pub async fn wait_for<T>(
    drain: &Drain,
    mut updates: watch::Receiver<T>,
    limit: Duration,
    ready: impl Fn() -> bool,
) -> bool {
    if ready() {
        return true;
    }
    let _held = Held::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut drained = std::pin::pin!(drain.started());
    loop {
        tokio::select! {
            woke = tokio::time::timeout_at(deadline, updates.changed()) => {
                if !matches!(woke, Ok(Ok(()))) {
                    return ready();
                }
            }
            _ = &mut drained => return ready(),
        }
        if ready() {
            return true;
        }
    }
}

/// Counts parked requests in the `packgate_http_held_requests` gauge while alive.
struct Held;

impl Held {
    fn new() -> Self {
        ::metrics::gauge!("packgate_http_held_requests").increment(1.0);
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        ::metrics::gauge!("packgate_http_held_requests").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredSegment;
    use bytes::Bytes;
    use std::time::SystemTime;

    fn window(done: u64, open_parts: u32) -> TrackWindow {
        let mut w = TrackWindow::new(6);
        let head = |seq| StoredSegment {
            seq,
            start: 0,
            duration: 0,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH,
            init_version: 0,
            discontinuity: false,
            parts: Vec::new(),
        };
        for seq in 1..=done {
            w.push_part(|| head(seq), 100, true, Bytes::from_static(b"x"));
            w.push(head(seq));
        }
        for _ in 0..open_parts {
            w.push_part(|| head(done + 1), 100, true, Bytes::from_static(b"x"));
        }
        w
    }

    #[test]
    fn directives_parse_and_reject_part_without_msn() {
        assert_eq!(
            Directives::parse("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES").unwrap(),
            Directives {
                msn: Some(12),
                part: Some(3),
                skip: true
            }
        );
        assert_eq!(Directives::parse("").unwrap(), Directives::default());
        assert!(Directives::parse("_HLS_skip=v2").unwrap().skip);
        assert!(Directives::parse("_HLS_part=1").is_err());
        assert!(Directives::parse("_HLS_msn=x").is_err());
    }

    #[test]
    fn satisfied_by_complete_segments_or_existing_parts() {
        let w = window(4, 2);
        assert!(satisfied(&w, 4, None));
        assert!(!satisfied(&w, 5, None));
        assert!(satisfied(&w, 5, Some(1)));
        assert!(!satisfied(&w, 5, Some(2)));
        assert!(!satisfied(&w, 6, Some(0)));
        assert!(!too_far(&w, 7));
        assert!(too_far(&w, 8));
    }
}

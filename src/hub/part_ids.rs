//! Part ids, the numbers in LL-HLS part URLs (`part-{id}.m4s`), which a CDN may cache as
//! immutable: a part URL is never reused, whatever the part target and however often a
//! name is published again.
//!
//! Within a track window ids count up by one (a segment's parts are contiguous). A new
//! window starts at the microseconds since the Unix epoch, or past every id this process
//! has issued, whichever is more. The counter cannot outrun the clock: that would take
//! more than one part per microsecond, and muxing a part alone takes longer. So a window
//! opened later, in this process or the next, starts past every id issued before, and the
//! ids fit the u64 of the URL (until the year 586 000). The u32 `mfhd` sequence number is
//! not the id: it counts a track's fragments from 1 under each init segment
//! ([`super::cmaf_output`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The hub's record of the part ids it issued.
#[derive(Debug, Default)]
pub struct PartIds {
    /// One past the highest id issued.
    next: AtomicU64,
}

impl PartIds {
    /// The first id of a track window opened at `now`.
    pub fn first(&self, now: SystemTime) -> u64 {
        let micros = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        micros.max(self.next.load(Ordering::Acquire))
    }

    /// Notes that a part got `id`.
    pub fn issued(&self, id: u64) {
        self.next.fetch_max(id.saturating_add(1), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_window_starts_past_the_clock_and_every_id_issued() {
        let ids = PartIds::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = ids.first(t);
        assert_eq!(first, 1_800_000_000_000_000);
        // A window that ran ahead of the clock (parts faster than one per µs would, or a
        // clock stepped back): the next window starts past it all the same.
        ids.issued(first + 5_000_000);
        assert_eq!(ids.first(t + Duration::from_secs(1)), first + 5_000_001);
        assert_eq!(ids.first(t + Duration::from_secs(10)), first + 10_000_000);
    }
}

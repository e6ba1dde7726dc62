//! Log hygiene for what clients control: how often a line is written (a flood of refusals
//! or bad clients must not become a flood of log lines: at most one line per interval per
//! reason, the next line carrying how many were suppressed in between) and how long a
//! client-supplied string may be in it (a 1 MiB stream name must not make 1 MiB lines).

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Characters of a client-supplied string written to a log line.
pub const LOG_CHARS: usize = 64;

/// `s` cut to [`LOG_CHARS`] characters, marked with `…` and its full length when cut.
pub fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(LOG_CHARS) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}…({} bytes)", &s[..end], s.len())),
    }
}

/// Decides, per reason, whether a line may be logged now.
///
/// Reasons are a small fixed set of `&'static str`, so the table stays small.
pub struct LogRate {
    interval: Duration,
    slots: Mutex<Vec<Slot>>,
}

struct Slot {
    reason: &'static str,
    last: Instant,
    suppressed: u64,
}

impl LogRate {
    /// At most one line per `interval` per reason. `const` so it can be a `static`.
    pub const fn new(interval: Duration) -> LogRate {
        LogRate {
            interval,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// One line per second per reason.
    pub const fn per_second() -> LogRate {
        LogRate::new(Duration::from_secs(1))
    }

    /// `Some(suppressed)` when a line for `reason` may be logged now (`suppressed` lines
    /// were dropped since the last one); `None` when this one should be dropped.
    pub fn allow(&self, reason: &'static str) -> Option<u64> {
        self.allow_at(reason, Instant::now())
    }

    fn allow_at(&self, reason: &'static str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = slots.iter_mut().find(|s| s.reason == reason) else {
            slots.push(Slot {
                reason,
                last: now,
                suppressed: 0,
            });
            return Some(0);
        };
        if now.saturating_duration_since(slot.last) >= self.interval {
            slot.last = now;
            Some(std::mem::take(&mut slot.suppressed))
        } else {
            slot.suppressed += 1;
            None
        }
    }
}

/// Logs a `warn!` line at most once per second per `reason` (a `&'static str` also
/// logged as a field), adding `suppressed = n` for the lines dropped since the last one.
///
/// `rate_limited_warn!(LIMITER, "reason", field = value, ...; "message")`
#[macro_export]
macro_rules! rate_limited_warn {
    ($rate:expr, $reason:expr, $($fields:tt)*) => {
        if let Some(suppressed) = $rate.allow($reason) {
            ::tracing::warn!(reason = $reason, suppressed, $($fields)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_per_reason_with_suppressed_count() {
        let rate = LogRate::per_second();
        let t0 = Instant::now();
        assert_eq!(rate.allow_at("a", t0), Some(0));
        for i in 1..=4000u64 {
            assert_eq!(
                rate.allow_at("a", t0 + Duration::from_micros(i * 100)),
                None
            );
        }
        // Another reason is not held back by the first.
        assert_eq!(rate.allow_at("b", t0), Some(0));
        assert_eq!(rate.allow_at("a", t0 + Duration::from_secs(1)), Some(4000));
        assert_eq!(rate.allow_at("a", t0 + Duration::from_secs(3)), Some(0));
    }

    #[test]
    fn macro_compiles_and_limits() {
        static RATE: LogRate = LogRate::per_second();
        for n in 0..10 {
            rate_limited_warn!(RATE, "test", n, "refused");
        }
        assert_eq!(RATE.allow("test"), None);
    }

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(clip("live"), "live");
        let exact = "a".repeat(LOG_CHARS);
        assert!(matches!(clip(&exact), Cow::Borrowed(_)));
        let long = "é".repeat(1 << 19); // 1 MiB of 2-byte characters
        let c = clip(&long);
        assert!(c.len() < 200, "{}", c.len());
        assert!(c.starts_with(&"é".repeat(LOG_CHARS)));
        assert!(c.ends_with("…(1048576 bytes)"), "{c}");
    }
}

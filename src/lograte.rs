//! Log hygiene for what clients control: how often a line is written (a flood of refused
//! connections must not become a flood of log lines) and how long a client-supplied
//! string may be in it (a 1 MiB stream name must not make 1 MiB lines).

use std::borrow::Cow;
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

/// One log line per `interval` for one reason; the lines in between are counted, and the
/// next line written reports how many were suppressed. Sans-IO: the caller passes the time.
#[derive(Debug)]
pub struct LogRate {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogRate {
    /// At most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        LogRate {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to write a line at `now`: `Some(n)` with the `n` lines suppressed since the
    /// last one written, or `None` to count this one as suppressed.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for LogRate {
    /// One line per second.
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_suppressed_count() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = LogRate::default();
        assert_eq!(r.admit(t0), Some(0));
        let burst: Vec<_> = (1..4000).map(|i| r.admit(ms(i / 8))).collect();
        assert!(burst.iter().all(Option::is_none));
        assert_eq!(r.admit(ms(1000)), Some(3999));
        assert_eq!(r.admit(ms(1500)), None);
        assert_eq!(r.admit(ms(2000)), Some(1));
        // A quiet period: the next line goes out at once with nothing suppressed.
        assert_eq!(r.admit(ms(60_000)), Some(0));
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

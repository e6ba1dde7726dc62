//! What a publisher's sequence headers may cost: each codec configuration is stored in an
//! init segment (and its parameter sets go in front of every MPEG-TS IDR), and each change
//! of configuration keeps one more init segment version while segments refer to it. So a
//! header's size is capped, and so is how often a track may change configuration.

use std::collections::VecDeque;

use crate::config::Config;
use crate::limit::{Limit, LimitExceeded};
use crate::store::GRACE_SEGMENTS;

/// The budgets of one published stream's sequence headers.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigBudget {
    /// Largest sequence header body, bytes (`limits.config_record_bytes`).
    pub record_bytes: usize,
    /// Configuration changes allowed per track within `span_ms` of media time.
    pub changes: usize,
    /// The media time a track's kept segments cover, milliseconds.
    pub span_ms: u32,
}

impl Default for ConfigBudget {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl ConfigBudget {
    /// `limits.init_versions` init segments cover what a track keeps (its window plus the
    /// grace segments): one is the version in use before the first change, so
    /// `init_versions - 1` changes (at least one) fit in that span.
    pub fn from_config(config: &Config) -> Self {
        let kept = (config.segment.window + GRACE_SEGMENTS) as f64;
        ConfigBudget {
            record_bytes: config.limits.config_record_bytes,
            changes: config.limits.init_versions.saturating_sub(1).max(1),
            span_ms: (kept * config.segment.target_duration * 1000.0).min(f64::from(u32::MAX))
                as u32,
        }
    }

    /// Checks a sequence header's size.
    pub fn record(&self, len: usize) -> Result<(), LimitExceeded> {
        LimitExceeded::check(Limit::ConfigRecordBytes, len, self.record_bytes)
    }
}

/// One track's recent configuration changes, by RTMP timestamp.
#[derive(Debug, Default)]
pub struct ChangeLog {
    times: VecDeque<u32>,
}

impl ChangeLog {
    /// Records a change at `timestamp_ms`, or refuses it when `budget.changes` changes
    /// already happened within `budget.span_ms` before it. Timestamps that go backwards
    /// count as far apart: the store's own cap on init versions still bounds memory then.
    pub fn change(
        &mut self,
        budget: &ConfigBudget,
        timestamp_ms: u32,
    ) -> Result<(), LimitExceeded> {
        if self.times.len() >= budget.changes {
            if let Some(&oldest) = self.times.front() {
                if timestamp_ms.wrapping_sub(oldest) < budget.span_ms {
                    return Err(LimitExceeded::new(
                        Limit::InitVersions,
                        self.times.len() + 1,
                        budget.changes,
                    ));
                }
            }
        }
        self.times.push_back(timestamp_ms);
        while self.times.len() > budget.changes {
            self.times.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_config() {
        let b = ConfigBudget::default();
        assert_eq!(b.record_bytes, 64 << 10);
        assert_eq!(b.changes, 3);
        assert_eq!(b.span_ms, 18_000, "(6 listed + 3 grace) × 2 s");
        assert!(b.record(64 << 10).is_ok());
        assert_eq!(
            b.record((64 << 10) + 1).unwrap_err().limit,
            Limit::ConfigRecordBytes
        );
    }

    #[test]
    fn changes_are_rate_limited_over_the_kept_span() {
        let b = ConfigBudget {
            record_bytes: 1000,
            changes: 2,
            span_ms: 10_000,
        };
        let mut log = ChangeLog::default();
        assert!(log.change(&b, 0).is_ok());
        assert!(log.change(&b, 1_000).is_ok());
        let e = log.change(&b, 9_999).unwrap_err();
        assert_eq!((e.limit, e.asked, e.max), (Limit::InitVersions, 3, 2));
        // Once the oldest change is a span old, one more fits, and so on.
        assert!(log.change(&b, 10_000).is_ok());
        assert!(log.change(&b, 10_999).is_err());
        assert!(log.change(&b, 11_000).is_ok());
        // A burst at one timestamp is refused after `changes`.
        let mut log = ChangeLog::default();
        let refused = (0..300).filter(|_| log.change(&b, 5).is_err()).count();
        assert_eq!(refused, 298);
    }
}

//! Budget hits: the one error type every sans-IO layer returns when a client asks the
//! server to hold more than a `[limits]` budget (or a fixed protocol bound) allows. The
//! driver closes the offending connection, logs the hit once and counts it in `/metrics`.

use std::fmt;

/// Which budget was hit; its label in `packgate_limit_hits_total{limit=...}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `limits.message_bytes`: a declared RTMP message length.
    MessageBytes,
    /// `limits.unfinished_bytes`: partial messages over all chunk streams of a connection.
    UnfinishedBytes,
    /// `limits.config_record_bytes`: a sequence header (parameter sets, AudioSpecificConfig).
    ConfigRecordBytes,
    /// `limits.init_versions`: codec configuration changes within the kept window.
    InitVersions,
    /// `limits.held_bytes`: media held before the first keyframe.
    HeldBytes,
    /// AMF0 bounds (nesting depth, values per message, declared counts the data cannot hold).
    Amf0,
}

impl Limit {
    /// The metric label and config key name (`limits.<key>` for the configurable ones).
    pub fn key(self) -> &'static str {
        match self {
            Limit::MessageBytes => "message_bytes",
            Limit::UnfinishedBytes => "unfinished_bytes",
            Limit::ConfigRecordBytes => "config_record_bytes",
            Limit::InitVersions => "init_versions",
            Limit::HeldBytes => "held_bytes",
            Limit::Amf0 => "amf0",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A client asked for `asked` where the budget allows `max` (bytes, or items for counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("limit {limit} hit: {asked} > {max}")]
pub struct LimitExceeded {
    /// The budget.
    pub limit: Limit,
    /// What the client asked for.
    pub asked: usize,
    /// What the budget allows.
    pub max: usize,
}

impl LimitExceeded {
    /// A hit of `limit`.
    pub fn new(limit: Limit, asked: usize, max: usize) -> Self {
        LimitExceeded { limit, asked, max }
    }

    /// Checks `asked <= max`.
    pub fn check(limit: Limit, asked: usize, max: usize) -> Result<(), Self> {
        if asked > max {
            Err(Self::new(limit, asked, max))
        } else {
            Ok(())
        }
    }

    /// Counts the hit in `packgate_limit_hits_total{limit=...}`; call once per connection.
    pub fn count(&self) {
        metrics::counter!("packgate_limit_hits_total", "limit" => self.limit.key()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_display() {
        assert!(LimitExceeded::check(Limit::MessageBytes, 10, 10).is_ok());
        let e = LimitExceeded::check(Limit::MessageBytes, 11, 10).unwrap_err();
        assert_eq!(e.to_string(), "limit message_bytes hit: 11 > 10");
        assert_eq!(e.limit, Limit::MessageBytes);
    }
}

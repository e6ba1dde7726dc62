//! Byte budgets: everything a client can make the server hold is counted in bytes and
//! capped, so one bad or broken encoder costs a bounded amount of memory and is closed,
//! never the server.

use serde::Deserialize;

use super::error::ConfigError;

/// `[limits]`: per-connection and per-stream budgets. Hitting one is logged once, counted
/// in `/metrics` (`packgate_limit_hits_total{limit=...}`), and closes only the offending
/// connection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Media bytes a publisher may send before its first keyframe (they are held until the
    /// keyframe fixes the stream's place on the ladder timeline).
    pub held_bytes: usize,
    /// Largest codec configuration record (AVC/HEVC parameter sets, AudioSpecificConfig,
    /// any sequence header), bytes.
    pub config_record_bytes: usize,
    /// Init segment versions kept per track (each codec change makes one).
    pub init_versions: usize,
    /// Largest RTMP message a client may declare, bytes.
    pub message_bytes: usize,
    /// Bytes of unfinished RTMP messages one connection may have in flight, over all its
    /// chunk streams.
    pub unfinished_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            held_bytes: 16 << 20,
            config_record_bytes: 64 << 10,
            init_versions: 4,
            message_bytes: 8 << 20,
            unfinished_bytes: 16 << 20,
        }
    }
}

impl LimitsConfig {
    /// Checks the budgets are usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |key: &'static str, v: usize, min: usize| {
            if v >= min {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    problem: format!("must be at least {min}, got {v}"),
                })
            }
        };
        at_least("limits.held_bytes", self.held_bytes, 64 << 10)?;
        at_least("limits.config_record_bytes", self.config_record_bytes, 256)?;
        at_least("limits.init_versions", self.init_versions, 1)?;
        at_least("limits.message_bytes", self.message_bytes, 64 << 10)?;
        at_least(
            "limits.unfinished_bytes",
            self.unfinished_bytes,
            self.message_bytes,
        )
    }
}

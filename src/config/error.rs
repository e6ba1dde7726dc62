//! [`ConfigError`]: a configuration problem, shared by every section's validation.

/// A configuration problem, reported at start before anything listens.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given on the command line.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a value has the wrong type or an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The path given on the command line.
        path: String,
        /// toml's message, which quotes the offending line and key.
        message: String,
    },
    /// A value parsed but is out of range.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// Dotted key, e.g. `segment.target_duration`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Checks that `v` is a number of seconds in (0, `max`]: the one shape of every duration
/// key, so every section words the problem alike.
pub fn seconds(key: &'static str, v: f64, max: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= max {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            problem: format!("must be a number of seconds in (0, {max}], got {v}"),
        })
    }
}

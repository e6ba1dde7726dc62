//! [`FlvError`]: why an FLV tag body (legacy or Enhanced RTMP) was not usable. Its own
//! file so that the legacy and Enhanced RTMP parsers share it without importing each other.

/// Why a tag body was not usable.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum FlvError {
    /// The body ended before its header did.
    #[error("{0} tag body is truncated")]
    Truncated(&'static str),
    /// A codec or packet kind we do not package (yet); the text names it.
    #[error("{0}")]
    Unsupported(String),
    /// A coded frame arrived before the sequence header that describes it.
    #[error("{0} frame before its sequence header")]
    NoConfig(&'static str),
    /// The sequence header did not parse.
    #[error("bad sequence header: {0}")]
    BadConfig(String),
    /// A sequence header over its size budget, or one configuration change too many.
    #[error("sequence header: {0}")]
    Limit(#[from] crate::limit::LimitExceeded),
}

//! Codec configuration records and their RFC 6381 codec strings.

pub mod aac;
pub mod h264;

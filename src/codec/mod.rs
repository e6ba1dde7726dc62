//! Codec configuration records and their RFC 6381 codec strings.

pub mod aac;
pub mod av1;
mod bits;
pub mod h264;
pub mod hevc;
#[cfg(test)]
pub(crate) mod noise;
pub mod opus;
mod record;
pub mod vp9;

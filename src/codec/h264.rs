//! H.264: AVCDecoderConfigurationRecord (ISO/IEC 14496-15) and SPS facts.

use bytes::Bytes;

/// Parsed AVCDecoderConfigurationRecord plus the facts players need from the SPS.
#[derive(Clone, Debug, PartialEq)]
pub struct AvcConfig {
    /// The record exactly as received (the avcC box body).
    pub record: Bytes,
    /// AVCProfileIndication.
    pub profile_idc: u8,
    /// profile_compatibility (constraint flags byte).
    pub constraint_flags: u8,
    /// AVCLevelIndication.
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// Sequence parameter sets, without length prefixes.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, without length prefixes.
    pub pps: Vec<Bytes>,
    /// Coded width after cropping, in pixels.
    pub width: u32,
    /// Coded height after cropping, in pixels.
    pub height: u32,
    /// Frames per second from the SPS VUI timing info, when present.
    pub frame_rate: Option<f64>,
}

impl AvcConfig {
    /// RFC 6381 string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

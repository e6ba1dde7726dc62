//! AAC: AudioSpecificConfig (ISO/IEC 14496-3).

use bytes::Bytes;

/// Parsed AudioSpecificConfig.
#[derive(Clone, Debug, PartialEq)]
pub struct AacConfig {
    /// The AudioSpecificConfig bytes exactly as received.
    pub asc: Bytes,
    /// audioObjectType (2 = AAC-LC, 5 = SBR/HE-AAC, 29 = PS).
    pub object_type: u8,
    /// Sampling frequency in Hz (the core rate signalled in the ASC).
    pub sample_rate: u32,
    /// Channel count from channelConfiguration.
    pub channels: u8,
}

impl AacConfig {
    /// RFC 6381 string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// PCM samples per AAC frame (1024 for AAC-LC as carried over RTMP).
    pub fn samples_per_frame(&self) -> u32 {
        1024
    }
}

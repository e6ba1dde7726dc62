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

/// Why an AudioSpecificConfig could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AacError {
    /// Fewer bits than the fields need.
    #[error("AudioSpecificConfig is truncated")]
    Truncated,
    /// A reserved sampling frequency index.
    #[error("reserved sampling frequency index {0}")]
    BadFrequencyIndex(u8),
}

const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8).ok_or(AacError::Truncated)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

impl AacConfig {
    /// Parses an AudioSpecificConfig.
    pub fn parse(asc: Bytes) -> Result<AacConfig, AacError> {
        let mut b = Bits { data: &asc, pos: 0 };
        let mut object_type = b.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + b.read(6)? as u8;
        }
        let index = b.read(4)? as u8;
        let sample_rate = match index {
            0x0F => b.read(24)?,
            i => *RATES
                .get(usize::from(i))
                .ok_or(AacError::BadFrequencyIndex(i))?,
        };
        let channels = b.read(4)? as u8;
        // channelConfiguration 7 means 8 channels (7.1); 0 means defined in-band (assume stereo).
        let channels = match channels {
            0 => 2,
            7 => 8,
            c => c,
        };
        Ok(AacConfig {
            asc,
            object_type,
            sample_rate,
            channels,
        })
    }

    /// A 7-byte ADTS header (no CRC) for a raw frame of `payload_len` bytes, for MPEG-TS.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        // ADTS only signals profiles 1-4 (object type minus one); HE-AAC is sent as LC + SBR.
        let profile = self.object_type.clamp(1, 4) - 1;
        let index = RATES
            .iter()
            .position(|r| *r == self.sample_rate)
            .unwrap_or(4) as u8;
        let channels = if self.channels == 8 {
            7
        } else {
            self.channels & 0x07
        };
        let len = (payload_len + 7).min(0x1FFF);
        [
            0xFF,
            0xF1,
            (profile << 6) | (index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1F,
            0xFC,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_configs() {
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44_100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
        let c = AacConfig::parse(Bytes::from_static(&[0x11, 0x88])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 1));
        let c = AacConfig::parse(Bytes::from_static(&[
            0xF8, 0x07, 0x80, 0x00, 0x03, 0xE8, 0x10,
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.object_type, 32);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            AacConfig::parse(Bytes::from_static(&[0x12])),
            Err(AacError::Truncated)
        );
        assert_eq!(
            AacConfig::parse(Bytes::from_static(&[0x16, 0x90])),
            Err(AacError::BadFrequencyIndex(13))
        );
    }

    #[test]
    fn adts_header_fields() {
        let c = AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap();
        let h = c.adts_header(100);
        assert_eq!(&h[..2], &[0xFF, 0xF1]);
        assert_eq!(h[2] >> 6, 1); // LC
        assert_eq!((h[2] >> 2) & 0xF, 4); // 44.1 kHz
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);
    }
}

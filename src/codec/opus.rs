//! Opus: the identification header (OpusHead, RFC 7845 §5.1) that Enhanced RTMP's
//! SequenceStart carries, turned into the `dOps` box of Opus in ISOBMFF.

use bytes::Bytes;

/// The Opus sample rate: packets always decode at 48 kHz, whatever the input rate was.
pub const OPUS_RATE: u32 = 48_000;

/// Parsed OpusHead.
#[derive(Clone, Debug, PartialEq)]
pub struct OpusConfig {
    /// The header as received.
    pub head: Bytes,
    /// Output channel count.
    pub channels: u8,
    /// Samples (at 48 kHz) to drop at the start of decoding.
    pub pre_skip: u16,
    /// The encoder's input sample rate (informational).
    pub input_sample_rate: u32,
    /// Output gain, Q7.8 dB.
    pub output_gain: i16,
    /// Channel mapping family, and for families other than 0 the stream count, coupled
    /// count and mapping table.
    pub mapping: Option<(u8, u8, u8, Vec<u8>)>,
}

/// Why an Opus configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OpusError {
    /// The OpusHead is malformed.
    #[error("bad OpusHead: {0}")]
    BadHead(&'static str),
}

impl OpusConfig {
    /// Parses an OpusHead (little-endian fields after the `OpusHead` magic).
    pub fn parse(head: Bytes) -> Result<OpusConfig, OpusError> {
        let h = &head[..];
        if h.len() < 19 || &h[..8] != b"OpusHead" {
            return Err(OpusError::BadHead("no OpusHead magic or too short"));
        }
        if h[8] >> 4 != 0 {
            return Err(OpusError::BadHead("unsupported major version"));
        }
        let channels = h[9];
        if channels == 0 {
            return Err(OpusError::BadHead("zero channels"));
        }
        let family = h[18];
        let mapping = if family == 0 {
            if channels > 2 {
                return Err(OpusError::BadHead("family 0 allows at most 2 channels"));
            }
            None
        } else {
            let table = h
                .get(21..21 + usize::from(channels))
                .ok_or(OpusError::BadHead("channel mapping table cut short"))?;
            Some((family, h[19], h[20], table.to_vec()))
        };
        Ok(OpusConfig {
            channels,
            pre_skip: u16::from_le_bytes([h[10], h[11]]),
            input_sample_rate: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            output_gain: i16::from_le_bytes([h[16], h[17]]),
            mapping,
            head,
        })
    }

    /// RFC 6381 string: `opus`.
    pub fn codec_string(&self) -> String {
        "opus".to_string()
    }

    /// The mp4-atom `dOps` (big-endian, version 0) for the sample entry.
    pub fn dops(&self) -> mp4_atom::Dops {
        mp4_atom::Dops {
            output_channel_count: self.channels,
            pre_skip: self.pre_skip,
            input_sample_rate: self.input_sample_rate,
            output_gain: self.output_gain,
            channel_mapping: self
                .mapping
                .as_ref()
                .map(
                    |(family, streams, coupled, table)| mp4_atom::OpusChannelMapping {
                        family: *family,
                        stream_count: *streams,
                        coupled_count: *coupled,
                        channel_mapping: table.clone(),
                    },
                ),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// OpusHead of a mono 48 kHz libopus stream (as ffmpeg sends it over RTMP).
    pub(crate) const OPUS_HEAD_MONO: &[u8] =
        b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";

    #[test]
    fn parses_a_real_header() {
        let c = OpusConfig::parse(Bytes::from_static(OPUS_HEAD_MONO)).unwrap();
        assert_eq!(
            (c.channels, c.pre_skip, c.input_sample_rate),
            (1, 312, 48_000)
        );
        assert_eq!(c.mapping, None);
        assert_eq!(c.codec_string(), "opus");
        let d = c.dops();
        assert_eq!((d.output_channel_count, d.pre_skip), (1, 312));
    }

    #[test]
    fn bad_headers_are_errors() {
        for len in 0..OPUS_HEAD_MONO.len() {
            assert!(OpusConfig::parse(Bytes::copy_from_slice(&OPUS_HEAD_MONO[..len])).is_err());
        }
        let mut v = OPUS_HEAD_MONO.to_vec();
        v[18] = 1; // family 1 needs a mapping table
        assert!(OpusConfig::parse(Bytes::from(v.clone())).is_err());
        v.extend_from_slice(&[1, 0, 0]);
        let c = OpusConfig::parse(Bytes::from(v)).unwrap();
        assert_eq!(c.mapping, Some((1, 1, 0, vec![0])));
    }
}

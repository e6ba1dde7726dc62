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

/// Why an H.264 configuration or sample could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum H264Error {
    /// The AVCDecoderConfigurationRecord ended early or has a bad field.
    #[error("bad AVCDecoderConfigurationRecord: {0}")]
    BadRecord(&'static str),
    /// The record carries no SPS.
    #[error("AVCDecoderConfigurationRecord has no SPS")]
    NoSps,
    /// The SPS did not parse.
    #[error("bad SPS: {0}")]
    BadSps(String),
    /// A sample's NAL unit lengths do not add up.
    #[error("malformed NAL unit length prefix")]
    BadNalLength,
}

impl AvcConfig {
    /// Parses an AVCDecoderConfigurationRecord and the facts of its first SPS.
    pub fn parse(record: Bytes) -> Result<AvcConfig, H264Error> {
        let r = &record[..];
        if r.len() < 7 {
            return Err(H264Error::BadRecord("shorter than its fixed header"));
        }
        if r[0] != 1 {
            return Err(H264Error::BadRecord("configurationVersion is not 1"));
        }
        let nal_length_size = (r[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(H264Error::BadRecord(
                "lengthSizeMinusOne of 2 is not allowed",
            ));
        }
        let mut pos = 5;
        let take_sets = |count: usize, pos: &mut usize| -> Result<Vec<Bytes>, H264Error> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                let len_bytes = r
                    .get(*pos..*pos + 2)
                    .ok_or(H264Error::BadRecord("parameter set length past the end"))?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                *pos += 2;
                if *pos + len > r.len() || len == 0 {
                    return Err(H264Error::BadRecord("parameter set past the end"));
                }
                sets.push(record.slice(*pos..*pos + len));
                *pos += len;
            }
            Ok(sets)
        };
        let sps_count = usize::from(r[pos] & 0x1F);
        pos += 1;
        let sps = take_sets(sps_count, &mut pos)?;
        let pps_count = usize::from(*r.get(pos).ok_or(H264Error::BadRecord("no PPS count"))?);
        pos += 1;
        let pps = take_sets(pps_count, &mut pos)?;
        // Whatever follows (the High-profile chroma/bit-depth trailer) is kept in `record`.
        let first = sps.first().ok_or(H264Error::NoSps)?;
        let facts = sps_facts(first)?;
        Ok(AvcConfig {
            profile_idc: r[1],
            constraint_flags: r[2],
            level_idc: r[3],
            nal_length_size,
            width: facts.0,
            height: facts.1,
            frame_rate: facts.2,
            sps,
            pps,
            record,
        })
    }
}

/// Width, height (after cropping) and VUI frame rate of an SPS NAL unit.
fn sps_facts(nal: &[u8]) -> Result<(u32, u32, Option<f64>), H264Error> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitReader};
    if nal.first().map(|b| b & 0x1F) != Some(7) {
        return Err(H264Error::BadSps(
            "first parameter set is not an SPS".into(),
        ));
    }
    let rbsp = decode_nal(nal).map_err(|e| H264Error::BadSps(e.to_string()))?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|e| H264Error::BadSps(format!("{e:?}")))?;
    let (w, h) = sps
        .pixel_dimensions()
        .map_err(|e| H264Error::BadSps(format!("{e:?}")))?;
    let fps = sps
        .fps()
        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0);
    Ok((w, h, fps))
}

/// Splits a length-prefixed sample into its NAL units.
pub fn nal_units(
    mut data: &[u8],
    nal_length_size: u8,
) -> impl Iterator<Item = Result<&[u8], H264Error>> {
    let n = usize::from(nal_length_size.clamp(1, 4));
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        if data.len() < n {
            data = &[];
            return Some(Err(H264Error::BadNalLength));
        }
        let len = data[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len > data.len() - n {
            data = &[];
            return Some(Err(H264Error::BadNalLength));
        }
        let nal = &data[n..n + len];
        data = &data[n + len..];
        Some(Ok(nal))
    })
}

/// nal_unit_type of a NAL unit (5 = IDR, 7 = SPS, 8 = PPS, 9 = AUD).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// avcC of a 640x360 High@3.0 stream made by libx264 (30 fps, VUI timing present).
    pub(crate) const AVCC_640X360: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0x0f, 0x16, 0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ];

    #[test]
    fn parses_record_and_sps() {
        let c = AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap();
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!(c.codec_string(), "avc1.64001e");
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.pps.len(), 1);
        assert_eq!(c.frame_rate, Some(30.0));
    }

    #[test]
    fn truncated_records_are_errors() {
        // Cut anywhere before the end of the PPS (the trailer is optional).
        for len in 0..AVCC_640X360.len() - 4 {
            assert!(
                AvcConfig::parse(Bytes::copy_from_slice(&AVCC_640X360[..len])).is_err(),
                "len {len}"
            );
        }
        let mut bad = AVCC_640X360.to_vec();
        bad[0] = 2;
        assert_eq!(
            AvcConfig::parse(Bytes::from(bad)),
            Err(H264Error::BadRecord("configurationVersion is not 1"))
        );
    }

    #[test]
    fn splits_nal_units() {
        let data = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 1, 0x65];
        let nals: Vec<_> = nal_units(&data, 4).collect::<Result<_, _>>().unwrap();
        assert_eq!(nals, vec![&[0x09, 0xf0][..], &[0x65][..]]);
        assert_eq!(nal_type(nals[1]), 5);
        assert!(nal_units(&[0, 0, 0, 9, 1], 4).any(|r| r.is_err()));
    }
}

//! HEVC: HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, 8.3.3.1), SPS facts and the
//! RFC 6381 codec string (ISO/IEC 14496-15 Annex E).

use bytes::Bytes;

use super::bits::BitReader;
use super::record::RecordReader;

/// Parsed HEVCDecoderConfigurationRecord plus the picture size from its SPS.
#[derive(Clone, Debug, PartialEq)]
pub struct HevcConfig {
    /// The record exactly as received (the hvcC box body).
    pub record: Bytes,
    /// general_profile_space (0..3).
    pub profile_space: u8,
    /// general_tier_flag: High tier.
    pub high_tier: bool,
    /// general_profile_idc (1 Main, 2 Main 10...).
    pub profile_idc: u8,
    /// general_profile_compatibility_flags, flag 0 in the most significant bit.
    pub compatibility: u32,
    /// general_constraint_indicator_flags.
    pub constraints: [u8; 6],
    /// general_level_idc (30 × the level, e.g. 93 for 3.1).
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// VPS, SPS and PPS NAL units (headers included), in that order.
    pub parameter_sets: Vec<Bytes>,
    /// Picture width after the conformance window, in pixels.
    pub width: u32,
    /// Picture height after the conformance window, in pixels.
    pub height: u32,
    /// Frames per second from the record's avgFrameRate, when the encoder set it.
    pub frame_rate: Option<f64>,
}

/// Why an HEVC configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HevcError {
    /// The record ended early or has a bad field.
    #[error("bad HEVCDecoderConfigurationRecord: {0}")]
    BadRecord(&'static str),
    /// The record carries no SPS.
    #[error("HEVCDecoderConfigurationRecord has no SPS")]
    NoSps,
    /// The SPS did not parse.
    #[error("bad HEVC SPS: {0}")]
    BadSps(&'static str),
}

/// NAL unit types (ITU-T H.265 Table 7-1).
pub const NAL_VPS: u8 = 32;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// Picture parameter set.
pub const NAL_PPS: u8 = 34;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 35;

/// nal_unit_type of an HEVC NAL unit; 0xFF for one too short to have a header.
pub fn nal_type(nal: &[u8]) -> u8 {
    if nal.len() < 2 {
        return 0xFF;
    }
    (nal[0] >> 1) & 0x3F
}

/// True for an intra random access point picture (BLA, IDR, CRA: types 16..=23).
pub fn is_irap(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

impl HevcConfig {
    /// Parses an HEVCDecoderConfigurationRecord and the picture size of its first SPS.
    pub fn parse(record: Bytes) -> Result<HevcConfig, HevcError> {
        const SHORT: HevcError = HevcError::BadRecord("shorter than its fixed header");
        let r = &record[..];
        if r.len() < 23 {
            return Err(if r.is_empty() {
                HevcError::BadRecord("empty")
            } else {
                SHORT
            });
        }
        if r[0] != 1 {
            return Err(HevcError::BadRecord("configurationVersion is not 1"));
        }
        let nal_length_size = (r[21] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(HevcError::BadRecord(
                "lengthSizeMinusOne of 2 is not allowed",
            ));
        }
        let avg_frame_rate = u16::from_be_bytes([r[19], r[20]]);
        let mut parameter_sets = Vec::new();
        let mut arrays = RecordReader::at(&record, 23);
        let past_the_end = |_| HevcError::BadRecord("array past the end");
        for _ in 0..r[22] {
            let kind = arrays.u8().map_err(past_the_end)? & 0x3F;
            let count = arrays.u16().map_err(past_the_end)?;
            for _ in 0..count {
                let nal = arrays.nal_unit().map_err(past_the_end)?;
                // SEI and other arrays stay in the record (the sample entry carries it
                // whole); only the parameter sets are repeated in TS.
                if matches!(kind, NAL_VPS | NAL_SPS | NAL_PPS) {
                    parameter_sets.push(nal);
                }
            }
        }
        parameter_sets.sort_by_key(|n| nal_type(n));
        let sps = parameter_sets
            .iter()
            .find(|n| nal_type(n) == NAL_SPS)
            .ok_or(HevcError::NoSps)?;
        let (width, height) = sps_size(sps)?;
        let mut constraints = [0u8; 6];
        constraints.copy_from_slice(&r[6..12]);
        Ok(HevcConfig {
            profile_space: r[1] >> 6,
            high_tier: r[1] & 0x20 != 0,
            profile_idc: r[1] & 0x1F,
            compatibility: u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
            constraints,
            level_idc: r[12],
            nal_length_size,
            width,
            height,
            frame_rate: (avg_frame_rate > 0).then(|| f64::from(avg_frame_rate) / 256.0),
            parameter_sets,
            record,
        })
    }

    /// RFC 6381 string, e.g. `hvc1.1.6.L93.B0`: profile (with its space letter), the
    /// compatibility flags bit-reversed in hex, tier and level, then the constraint bytes
    /// with trailing zero bytes left out.
    pub fn codec_string(&self) -> String {
        let space = ["", "A", "B", "C"][usize::from(self.profile_space & 3)];
        let tier = if self.high_tier { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility.reverse_bits(),
            self.level_idc
        );
        let used = self
            .constraints
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraints[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// The cropped picture size of an SPS NAL unit (header included, emulation prevention
/// bytes still in place).
fn sps_size(nal: &[u8]) -> Result<(u32, u32), HevcError> {
    const SHORT: HevcError = HevcError::BadSps("ends early");
    if nal.len() < 3 {
        return Err(SHORT);
    }
    // decode_nal drops one header byte; HEVC's header has two.
    let rbsp = h264_reader::rbsp::decode_nal(&nal[1..])
        .map_err(|_| HevcError::BadSps("bad emulation prevention"))?;
    let mut b = BitReader::new(&rbsp);
    b.skip(4).ok_or(SHORT)?; // sps_video_parameter_set_id
    let sub_layers = b.bits(3).ok_or(SHORT)?;
    b.skip(1).ok_or(SHORT)?; // temporal_id_nesting
                             // profile_tier_level(1, sub_layers): general part 88 bits + level 8 bits.
    b.skip(96).ok_or(SHORT)?;
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((b.flag().ok_or(SHORT)?, b.flag().ok_or(SHORT)?));
    }
    if sub_layers > 0 {
        b.skip(2 * (8 - sub_layers as usize)).ok_or(SHORT)?;
    }
    for (profile, level) in present {
        b.skip(if profile { 88 } else { 0 } + if level { 8 } else { 0 })
            .ok_or(SHORT)?;
    }
    b.ue().ok_or(SHORT)?; // sps_seq_parameter_set_id
    let chroma = b.ue().ok_or(SHORT)?;
    if chroma > 3 {
        return Err(HevcError::BadSps("chroma_format_idc over 3"));
    }
    if chroma == 3 && b.flag().ok_or(SHORT)? {
        // separate_colour_plane_flag: coded as monochrome planes.
    }
    let width = b.ue().ok_or(SHORT)?;
    let height = b.ue().ok_or(SHORT)?;
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut w, mut h) = (width, height);
    if b.flag().ok_or(SHORT)? {
        let (l, r, t, bt) = (
            b.ue().ok_or(SHORT)?,
            b.ue().ok_or(SHORT)?,
            b.ue().ok_or(SHORT)?,
            b.ue().ok_or(SHORT)?,
        );
        w = w.saturating_sub(sub_w * (l.saturating_add(r)));
        h = h.saturating_sub(sub_h * (t.saturating_add(bt)));
    }
    if w == 0 || h == 0 {
        return Err(HevcError::BadSps("no picture"));
    }
    Ok((w, h))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// hvcC of a 320x240 Main@L2 stream made by libx265 (VPS/SPS/PPS; x265's SEI array
    /// left out).
    pub(crate) const HVCC_320X240: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02, 0x00, 0x00,
        0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10, 0x22, 0x00, 0x01, 0x00, 0x07, 0x44,
        0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    #[test]
    fn parses_a_real_record() {
        let c = HevcConfig::parse(Bytes::from_static(HVCC_320X240)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!((c.profile_idc, c.level_idc, c.nal_length_size), (1, 60, 4));
        assert_eq!(c.codec_string(), "hvc1.1.6.L60.90");
        let types: Vec<u8> = c.parameter_sets.iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, [NAL_VPS, NAL_SPS, NAL_PPS]);
        assert_eq!(c.frame_rate, None);
    }

    #[test]
    fn codec_strings_follow_annex_e() {
        let mut c = HevcConfig::parse(Bytes::from_static(HVCC_320X240)).unwrap();
        c.level_idc = 93;
        c.constraints = [0xB0, 0, 0, 0, 0, 0];
        assert_eq!(c.codec_string(), "hvc1.1.6.L93.B0");
        // Main 10, High tier, level 5.1, two constraint bytes; profile space 1.
        c.profile_idc = 2;
        c.compatibility = 0x2000_0000;
        c.high_tier = true;
        c.level_idc = 153;
        c.constraints = [0xB0, 0x08, 0, 0, 0, 0];
        assert_eq!(c.codec_string(), "hvc1.2.4.H153.B0.8");
        c.profile_space = 1;
        c.constraints = [0; 6];
        assert_eq!(c.codec_string(), "hvc1.A2.4.H153");
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for len in 0..HVCC_320X240.len() {
            let r = HevcConfig::parse(Bytes::copy_from_slice(&HVCC_320X240[..len]));
            assert!(r.is_err(), "len {len}");
        }
        let mut v = HVCC_320X240.to_vec();
        v[0] = 0;
        assert!(HevcConfig::parse(Bytes::from(v)).is_err());
        let mut noise = crate::codec::noise::Noise::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5_000 {
            let mut v = HVCC_320X240.to_vec();
            for _ in 0..4 {
                let state = noise.next();
                let i = (state % v.len() as u64) as usize;
                v[i] = (state >> 32) as u8;
            }
            let _ = HevcConfig::parse(Bytes::from(v));
        }
    }

    #[test]
    fn nal_types() {
        assert_eq!(nal_type(&[0x40, 0x01]), NAL_VPS);
        assert_eq!(nal_type(&[0x26, 0x01]), 19);
        assert!(is_irap(19) && is_irap(21) && !is_irap(1));
        assert_eq!(nal_type(&[0x26]), 0xFF);
    }
}

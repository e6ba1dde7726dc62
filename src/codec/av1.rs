//! AV1: AV1CodecConfigurationRecord (av1C, AV1 in ISOBMFF §2.3), the sequence header OBU
//! it carries, and the RFC 6381 codec string (`av01.P.LLT.DD`).

use bytes::Bytes;

use super::bits::BitReader;

/// Parsed av1C plus the sequence header facts players need.
#[derive(Clone, Debug, PartialEq)]
pub struct Av1Config {
    /// The record exactly as received (the av1C box body).
    pub record: Bytes,
    /// seq_profile (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// seq_level_idx[0] (level 2.0 = 0, 4.0 = 8...).
    pub level_idx: u8,
    /// seq_tier[0]: High tier.
    pub high_tier: bool,
    /// Bits per sample (8, 10 or 12).
    pub bit_depth: u8,
    /// Maximum frame width, in pixels.
    pub width: u32,
    /// Maximum frame height, in pixels.
    pub height: u32,
}

/// Why an AV1 configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Av1Error {
    /// The av1C record is malformed.
    #[error("bad AV1CodecConfigurationRecord: {0}")]
    BadRecord(&'static str),
    /// The record's configOBUs hold no sequence header.
    #[error("av1C has no sequence header OBU")]
    NoSequenceHeader,
    /// The sequence header did not parse.
    #[error("bad AV1 sequence header: {0}")]
    BadSequenceHeader(&'static str),
}

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// One OBU's type and where its payload lies in `data`; `None` if the header is cut.
fn obu_at(data: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let header = *data.first()?;
    let kind = (header >> 3) & 0x0F;
    let mut pos = 1 + usize::from(header & 0x04 != 0); // extension byte
    let size = if header & 0x02 != 0 {
        let mut size = 0usize;
        for i in 0..8 {
            let b = *data.get(pos)?;
            pos += 1;
            size |= usize::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        size
    } else {
        data.len().checked_sub(pos)?
    };
    let end = pos.checked_add(size).filter(|e| *e <= data.len())?;
    Some((kind, pos..end))
}

/// Drops the leading temporal delimiter of a sample: AV1 in ISOBMFF (§2.4) forbids them
/// in samples, while FLV carries the encoder's temporal unit as is.
pub fn strip_temporal_delimiter(data: Bytes) -> Bytes {
    match obu_at(&data) {
        Some((OBU_TEMPORAL_DELIMITER, payload)) => data.slice(payload.end..),
        _ => data,
    }
}

impl Av1Config {
    /// Parses an av1C record and the sequence header OBU in its configOBUs.
    pub fn parse(record: Bytes) -> Result<Av1Config, Av1Error> {
        if record.len() < 4 {
            return Err(Av1Error::BadRecord("shorter than its fixed header"));
        }
        if record[0] != 0x81 {
            return Err(Av1Error::BadRecord("marker/version is not 1/1"));
        }
        let mut obus = &record[4..];
        let seq = loop {
            let (kind, payload) = obu_at(obus).ok_or(Av1Error::NoSequenceHeader)?;
            if kind == OBU_SEQUENCE_HEADER {
                break &obus[payload];
            }
            obus = &obus[payload.end..];
        };
        let facts = SequenceHeader::parse(seq)
            .ok_or(Av1Error::BadSequenceHeader("ends early or out of range"))?;
        Ok(Av1Config {
            record,
            profile: facts.profile,
            level_idx: facts.level_idx,
            high_tier: facts.high_tier,
            bit_depth: facts.bit_depth,
            width: facts.width,
            height: facts.height,
        })
    }

    /// RFC 6381 string in the short form of AV1 in ISOBMFF Annex A, e.g. `av01.0.08M.08`.
    pub fn codec_string(&self) -> String {
        let tier = if self.high_tier { 'H' } else { 'M' };
        format!(
            "av01.{}.{:02}{tier}.{:02}",
            self.profile, self.level_idx, self.bit_depth
        )
    }
}

/// What the codec string and the playlists need from a sequence header (AV1 §5.5).
struct SequenceHeader {
    profile: u8,
    level_idx: u8,
    high_tier: bool,
    bit_depth: u8,
    width: u32,
    height: u32,
}

impl SequenceHeader {
    fn parse(payload: &[u8]) -> Option<SequenceHeader> {
        let mut b = BitReader::new(payload);
        let profile = b.bits(3)? as u8;
        if profile > 2 {
            return None;
        }
        b.skip(1)?; // still_picture
        let reduced = b.flag()?;
        let (level_idx, high_tier);
        if reduced {
            level_idx = b.bits(5)? as u8;
            high_tier = false;
        } else {
            let mut buffer_delay_bits = 0;
            let mut decoder_model = false;
            if b.flag()? {
                // timing_info
                b.skip(64)?;
                if b.flag()? {
                    b.uvlc()?;
                }
                decoder_model = b.flag()?;
                if decoder_model {
                    buffer_delay_bits = b.bits(5)? as usize + 1;
                    b.skip(32 + 5 + 5)?;
                }
            }
            let display_delay = b.flag()?;
            let points = b.bits(5)? + 1;
            let mut first = None;
            for _ in 0..points {
                b.skip(12)?; // operating_point_idc
                let level = b.bits(5)? as u8;
                let tier = level > 7 && b.flag()?;
                if decoder_model && b.flag()? {
                    b.skip(2 * buffer_delay_bits + 1)?;
                }
                if display_delay && b.flag()? {
                    b.skip(4)?;
                }
                first.get_or_insert((level, tier));
            }
            (level_idx, high_tier) = first?;
        }
        let width_bits = b.bits(4)? + 1;
        let height_bits = b.bits(4)? + 1;
        let width = b.bits(width_bits)?.checked_add(1)?;
        let height = b.bits(height_bits)?.checked_add(1)?;
        if !reduced && b.flag()? {
            b.skip(4 + 3)?; // frame id lengths
        }
        b.skip(3)?; // 128x128 superblock, filter intra, intra edge filter
        if !reduced {
            b.skip(4)?; // interintra, masked compound, warped motion, dual filter
            let order_hint = b.flag()?;
            if order_hint {
                b.skip(2)?; // jnt_comp, ref_frame_mvs
            }
            let force_screen_content = if b.flag()? { 2 } else { b.bits(1)? };
            if force_screen_content > 0 && !b.flag()? {
                b.skip(1)?; // seq_force_integer_mv
            }
            if order_hint {
                b.skip(3)?;
            }
        }
        b.skip(3)?; // superres, cdef, restoration
        let high_bitdepth = b.flag()?;
        let bit_depth = if profile == 2 && high_bitdepth {
            if b.flag()? {
                12
            } else {
                10
            }
        } else if high_bitdepth {
            10
        } else {
            8
        };
        Some(SequenceHeader {
            profile,
            level_idx,
            high_tier,
            bit_depth,
            width,
            height,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// av1C of a 320x240 8-bit stream made by SVT-AV1 (as ffmpeg sends it over RTMP).
    pub(crate) const AV1C_320X240: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x61, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];

    #[test]
    fn parses_a_real_record() {
        let c = Av1Config::parse(Bytes::from_static(AV1C_320X240)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!((c.profile, c.level_idx, c.bit_depth), (0, 0, 8));
        assert_eq!(c.codec_string(), "av01.0.00M.08");
        let mut c = c;
        (c.level_idx, c.high_tier, c.bit_depth) = (8, false, 8);
        assert_eq!(c.codec_string(), "av01.0.08M.08");
        (c.profile, c.level_idx, c.high_tier, c.bit_depth) = (2, 13, true, 12);
        assert_eq!(c.codec_string(), "av01.2.13H.12");
    }

    #[test]
    fn temporal_delimiters_are_stripped() {
        let tu = Bytes::from_static(&[0x12, 0x00, 0x32, 0x01, 0xAA]);
        assert_eq!(&strip_temporal_delimiter(tu)[..], &[0x32, 0x01, 0xAA]);
        let frame = Bytes::from_static(&[0x32, 0x01, 0xAA]);
        assert_eq!(strip_temporal_delimiter(frame.clone()), frame);
        assert_eq!(strip_temporal_delimiter(Bytes::new()), Bytes::new());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for len in 0..AV1C_320X240.len() {
            let r = Av1Config::parse(Bytes::copy_from_slice(&AV1C_320X240[..len]));
            assert!(r.is_err(), "len {len}");
        }
        let mut noise = crate::codec::noise::Noise::new(0x2545_F491_4F6C_DD1D);
        for _ in 0..5_000 {
            let mut v = AV1C_320X240.to_vec();
            let state = noise.next();
            let i = (state % v.len() as u64) as usize;
            v[i] = (state >> 40) as u8;
            let _ = Av1Config::parse(Bytes::from(v));
        }
    }
}

//! VP9: the VP Codec Configuration Record (vpcC, "VP Codec ISO Media File Format Binding"
//! §2.2) and its codec string (`vp09.PP.LL.DD`).

use bytes::Bytes;

/// Parsed vpcC.
#[derive(Clone, Debug, PartialEq)]
pub struct Vp9Config {
    /// The record as received (the vpcC box body, version and flags included).
    pub record: Bytes,
    /// Profile (0..3).
    pub profile: u8,
    /// Level × 10 (e.g. 31 for 3.1).
    pub level: u8,
    /// Bits per sample (8, 10 or 12).
    pub bit_depth: u8,
    /// chromaSubsampling (0/1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_subsampling: u8,
    /// videoFullRangeFlag.
    pub full_range: bool,
    /// colourPrimaries, transferCharacteristics, matrixCoefficients (ISO/IEC 23091-2).
    pub colour: [u8; 3],
    /// Picture size, which vpcC does not carry: read from the first key frame's header.
    pub size: Option<(u32, u32)>,
}

/// Why a VP9 configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Vp9Error {
    /// The vpcC record is malformed.
    #[error("bad VPCodecConfigurationRecord: {0}")]
    BadRecord(&'static str),
}

impl Vp9Config {
    /// Parses a version 1 vpcC (the form Enhanced RTMP's SequenceStart carries).
    pub fn parse(record: Bytes) -> Result<Vp9Config, Vp9Error> {
        let r = &record[..];
        if r.len() < 12 {
            return Err(Vp9Error::BadRecord("shorter than its fixed fields"));
        }
        if r[0] != 1 {
            return Err(Vp9Error::BadRecord("version is not 1"));
        }
        let (profile, level) = (r[4], r[5]);
        let bit_depth = r[6] >> 4;
        if profile > 3 || !matches!(bit_depth, 8 | 10 | 12) {
            return Err(Vp9Error::BadRecord("profile or bit depth out of range"));
        }
        Ok(Vp9Config {
            profile,
            level,
            bit_depth,
            chroma_subsampling: (r[6] >> 1) & 0x07,
            full_range: r[6] & 1 != 0,
            colour: [r[7], r[8], r[9]],
            size: None,
            record,
        })
    }

    /// RFC 6381 string with the mandatory fields, e.g. `vp09.00.20.08`.
    pub fn codec_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}",
            self.profile, self.level, self.bit_depth
        )
    }

    /// The mp4-atom `vpcC` for the sample entry. Matrix coefficients 0 (identity/RGB)
    /// with subsampled chroma is a contradiction some remuxers write (ffmpeg's FLV copy
    /// path does); it goes out as 2 (unspecified) rather than failing the init segment.
    pub fn vpcc(&self) -> mp4_atom::VpcC {
        let matrix = match self.colour[2] {
            0 if self.chroma_subsampling != 3 => 2,
            m => m,
        };
        mp4_atom::VpcC {
            profile: self.profile,
            level: self.level,
            bit_depth: self.bit_depth,
            chroma_subsampling: self.chroma_subsampling,
            video_full_range_flag: self.full_range,
            color_primaries: self.colour[0],
            transfer_characteristics: self.colour[1],
            matrix_coefficients: matrix,
            codec_initialization_data: Vec::new(),
        }
    }
}

/// The picture size in a VP9 key frame's uncompressed header (VP9 bitstream spec 6.2);
/// `None` for other frames or a header cut short.
pub fn key_frame_size(frame: &[u8]) -> Option<(u32, u32)> {
    let mut b = super::bits::BitReader::new(frame);
    if b.bits(2)? != 2 {
        return None; // frame_marker
    }
    let profile = b.bits(1)? | b.bits(1)? << 1;
    if profile == 3 {
        b.skip(1)?;
    }
    if b.flag()? || b.flag()? {
        return None; // show_existing_frame, or not a key frame (frame_type 1)
    }
    b.skip(2)?; // show_frame, error_resilient_mode
    if b.bits(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    if profile >= 2 {
        b.skip(1)?; // ten_or_twelve_bit
    }
    let rgb = b.bits(3)? == 7;
    let extra = match (rgb, profile) {
        (false, 1 | 3) => 4, // color_range, subsampling_x/y, reserved
        (false, _) => 1,     // color_range
        (true, 1 | 3) => 1,  // reserved
        (true, _) => 0,
    };
    b.skip(extra)?;
    let width = b.bits(16)? + 1;
    let height = b.bits(16)? + 1;
    Some((width, height))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// vpcC of a 320x240 profile 0 level 2.0 8-bit 4:2:0 stream made by libvpx-vp9 (as
    /// ffmpeg sends it over RTMP).
    pub(crate) const VPCC_320X240: &[u8] = &[
        0x01, 0x00, 0x00, 0x00, 0x00, 0x14, 0x82, 0x02, 0x02, 0x02, 0x00, 0x00,
    ];

    #[test]
    fn parses_a_real_record() {
        let c = Vp9Config::parse(Bytes::from_static(VPCC_320X240)).unwrap();
        assert_eq!(c.codec_string(), "vp09.00.20.08");
        assert_eq!((c.chroma_subsampling, c.full_range), (1, false));
        assert_eq!(c.vpcc().level, 20);
        let mut rgb = c.clone();
        rgb.colour = [2, 2, 0];
        assert_eq!(rgb.vpcc().matrix_coefficients, 2);
    }

    #[test]
    fn key_frame_sizes() {
        // Profile 0 key frame: marker 10, profile 00, show_existing 0, frame_type 0,
        // show_frame 1, error_res 0, sync code, color space 2 (BT.709), range 0, then
        // 319 and 239 on 16 bits each.
        let mut bits = String::from("10000010");
        bits += &format!("{:024b}", 0x49_83_42);
        bits += "0100";
        bits += &format!("{:016b}{:016b}", 319, 239);
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let bytes: Vec<u8> = (0..bits.len() / 8)
            .map(|i| u8::from_str_radix(&bits[i * 8..i * 8 + 8], 2).unwrap())
            .collect();
        assert_eq!(key_frame_size(&bytes), Some((320, 240)));
        // An inter frame (frame_type 1) has no size here.
        let mut inter = bytes.clone();
        inter[0] |= 0b0000_0100;
        assert_eq!(key_frame_size(&inter), None);
        assert_eq!(key_frame_size(&bytes[..5]), None);
    }

    #[test]
    fn bad_records_are_errors() {
        for len in 0..VPCC_320X240.len() {
            assert!(Vp9Config::parse(Bytes::copy_from_slice(&VPCC_320X240[..len])).is_err());
        }
        let mut v = VPCC_320X240.to_vec();
        v[6] = 0x92; // 9-bit
        assert!(Vp9Config::parse(Bytes::from(v)).is_err());
    }
}

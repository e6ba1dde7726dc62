//! H.264: AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1) and SPS facts.

use bytes::Bytes;

use super::record::{Overrun, RecordReader};

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

/// nal_unit_type of a sequence parameter set.
const NAL_SPS: u8 = 7;

/// Frames per second above this are taken as a bogus VUI rather than a real stream.
const MAX_FRAME_RATE: f64 = 1000.0;

/// The record's cursor; every read past the end is a `BadRecord` naming the field.
struct Record<'a>(RecordReader<'a>);

impl Record<'_> {
    fn u8(&mut self, field: &'static str) -> Result<u8, H264Error> {
        self.0.u8().map_err(|_| H264Error::BadRecord(field))
    }

    /// `count` parameter sets, each behind a 16-bit length, as zero-copy slices.
    fn parameter_sets(&mut self, count: u8) -> Result<Vec<Bytes>, H264Error> {
        let set = |r: &mut RecordReader| match r.nal_unit() {
            Err(Overrun::Field) => Err(H264Error::BadRecord("parameter set length past the end")),
            // A zero-length set cannot even hold its NAL header.
            Err(Overrun::Unit) => Err(H264Error::BadRecord("parameter set past the end")),
            Ok(nal) if nal.is_empty() => Err(H264Error::BadRecord("parameter set past the end")),
            Ok(nal) => Ok(nal),
        };
        (0..count).map(|_| set(&mut self.0)).collect()
    }
}

impl AvcConfig {
    /// Parses an AVCDecoderConfigurationRecord and the facts of its first SPS.
    ///
    /// The record must hold at least one SPS; a missing PPS is accepted (it can arrive
    /// in-band). Anything after the PPS list (the High-profile chroma/bit-depth trailer,
    /// which encoders often get wrong) is not interpreted but stays in `record`.
    pub fn parse(record: Bytes) -> Result<AvcConfig, H264Error> {
        let mut r = Record(RecordReader::at(&record, 0));
        if r.u8("empty")? != 1 {
            return Err(H264Error::BadRecord("configurationVersion is not 1"));
        }
        let profile_idc = r.u8("shorter than its fixed header")?;
        let constraint_flags = r.u8("shorter than its fixed header")?;
        let level_idc = r.u8("shorter than its fixed header")?;
        let nal_length_size = (r.u8("shorter than its fixed header")? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(H264Error::BadRecord(
                "lengthSizeMinusOne of 2 is not allowed",
            ));
        }
        let sps_count = r.u8("no SPS count")? & 0x1F;
        let sps = r.parameter_sets(sps_count)?;
        let pps_count = r.u8("no PPS count")?;
        let pps = r.parameter_sets(pps_count)?;
        let facts = SpsFacts::parse(sps.first().ok_or(H264Error::NoSps)?)?;
        Ok(AvcConfig {
            profile_idc,
            constraint_flags,
            level_idc,
            nal_length_size,
            width: facts.width,
            height: facts.height,
            frame_rate: facts.frame_rate,
            sps,
            pps,
            record,
        })
    }
}

/// What playlists and init segments need from an SPS.
struct SpsFacts {
    width: u32,
    height: u32,
    frame_rate: Option<f64>,
}

impl SpsFacts {
    /// Reads an SPS NAL unit (header included, emulation prevention still in place).
    fn parse(nal: &[u8]) -> Result<SpsFacts, H264Error> {
        use h264_reader::nal::sps::SeqParameterSet;
        use h264_reader::rbsp::{decode_nal, BitReader};
        if nal_type(nal) != NAL_SPS {
            return Err(H264Error::BadSps(
                "first parameter set is not an SPS".into(),
            ));
        }
        let rbsp = decode_nal(nal).map_err(|e| H264Error::BadSps(e.to_string()))?;
        let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
            .map_err(|e| H264Error::BadSps(format!("{e:?}")))?;
        // pixel_dimensions applies frame_cropping, so 1920x1088 coded is 1920x1080 here.
        let (width, height) = sps
            .pixel_dimensions()
            .map_err(|e| H264Error::BadSps(format!("{e:?}")))?;
        if width == 0 || height == 0 {
            return Err(H264Error::BadSps("cropped to nothing".into()));
        }
        // fps() is time_scale / (2 * num_units_in_tick): a tick is one field. A zero
        // divisor or absurd rate says more about the encoder than the content; omit it.
        let frame_rate = sps
            .fps()
            .filter(|f| f.is_finite() && *f > 0.0 && *f <= MAX_FRAME_RATE);
        Ok(SpsFacts {
            width,
            height,
            frame_rate,
        })
    }
}

/// Splits a length-prefixed sample (as in FLV and MP4) into its NAL units.
///
/// `nal_length_size` is the record's (1, 2 or 4; other values are clamped to 1..=4). A
/// length that overruns the sample yields one `BadNalLength` and ends the iteration.
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

/// nal_unit_type of a NAL unit (5 = IDR, 7 = SPS, 8 = PPS, 9 = AUD); 0 for an empty one.
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

    /// avcC of samples/h264_aac_1280x720.flv: libx264 High@3.1, 30 fps.
    const AVCC_1280X720: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40,
        0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
        0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    /// avcC of a libx264 High@4.0 1920x1080 stream at 30000/1001 fps: coded as 1088 lines,
    /// with 8 cropped at the bottom.
    const AVCC_1920X1080: &[u8] = &[
        0x01, 0x64, 0x00, 0x28, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40,
        0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x0f, 0xa4, 0x00, 0x03, 0xa9, 0x80, 0x3c,
        0x60, 0xc6, 0x58, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8,
        0x00,
    ];

    /// avcC of a libx264 Constrained Baseline@1.3 320x240 25 fps stream: no trailer.
    const AVCC_320X240_BASELINE: &[u8] = &[
        0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41,
        0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42,
        0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
    ];

    fn parse(record: &[u8]) -> Result<AvcConfig, H264Error> {
        AvcConfig::parse(Bytes::copy_from_slice(record))
    }

    /// MSB-first bit writer with Exp-Golomb, for SPSs no encoder would make.
    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn u(&mut self, n: u32, v: u32) -> &mut Self {
            self.bits.extend((0..n).rev().map(|i| (v >> i) & 1 == 1));
            self
        }

        fn ue(&mut self, v: u32) -> &mut Self {
            let len = 32 - (v + 1).leading_zeros();
            self.u(len - 1, 0).u(len, v + 1)
        }

        /// The SPS NAL unit: header, RBSP with stop bit, emulation prevention.
        fn sps_nal(&mut self) -> Vec<u8> {
            self.u(1, 1);
            let pad = (8 - self.bits.len() % 8) % 8;
            self.bits.extend(std::iter::repeat_n(false, pad));
            let mut nal = vec![0x67];
            let mut zeros = 0;
            for byte in self.bits.chunks(8) {
                let byte = byte.iter().fold(0u8, |acc, b| (acc << 1) | u8::from(*b));
                if zeros >= 2 && byte <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if byte == 0 { zeros + 1 } else { 0 };
                nal.push(byte);
            }
            nal
        }
    }

    fn record_with(sps: &[u8]) -> Vec<u8> {
        let mut r = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(sps);
        r.extend_from_slice(&[1, 0, 2, 0x68, 0xCE]);
        r
    }

    /// A Baseline SPS: `width_mbs` x `height_mbs` macroblocks, optional crop, no VUI.
    fn baseline_sps(width_mbs: u32, height_mbs: u32, crop: Option<[u32; 4]>) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, 66).u(8, 0xC0).u(8, 40); // profile, constraint flags, level 4.0 (1080p fits)
        w.ue(0).ue(0).ue(2).ue(1).u(1, 0); // id, frame_num bits, POC type 2, 1 ref, no gaps
        w.ue(width_mbs - 1).ue(height_mbs - 1).u(1, 1).u(1, 1); // frames only, direct 8x8
        match crop {
            Some(offsets) => {
                w.u(1, 1);
                for o in offsets {
                    w.ue(o);
                }
            }
            None => {
                w.u(1, 0);
            }
        }
        w.u(1, 0).sps_nal() // no VUI
    }

    #[test]
    fn parses_record_and_sps() {
        let c = parse(AVCC_640X360).unwrap();
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!(c.codec_string(), "avc1.64001e");
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.pps.len(), 1);
        assert_eq!(c.frame_rate, Some(30.0));
        assert_eq!(&c.record[..], AVCC_640X360, "kept whole, trailer included");
        assert_eq!(&c.sps[0][..], &AVCC_640X360[8..34]);
        assert_eq!(&c.pps[0][..], &AVCC_640X360[37..43]);
    }

    #[test]
    fn real_encoder_records() {
        let c = parse(AVCC_1280X720).unwrap();
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(
            (c.profile_idc, c.constraint_flags, c.level_idc),
            (100, 0, 31)
        );
        assert_eq!(c.codec_string(), "avc1.64001f");
        assert_eq!(c.frame_rate, Some(30.0));

        let c = parse(AVCC_1920X1080).unwrap();
        assert_eq!(
            (c.width, c.height),
            (1920, 1080),
            "1088 coded lines, 8 cropped"
        );
        assert_eq!(c.codec_string(), "avc1.640028");
        let fps = c.frame_rate.unwrap();
        assert!((fps - 30_000.0 / 1001.0).abs() < 1e-9, "{fps}");

        let c = parse(AVCC_320X240_BASELINE).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(c.codec_string(), "avc1.42c00d");
        assert_eq!(c.frame_rate, Some(25.0));
    }

    #[test]
    fn sps_without_vui_and_with_cropping() {
        let c = parse(&record_with(&baseline_sps(20, 15, None))).unwrap();
        assert_eq!((c.width, c.height, c.frame_rate), (320, 240, None));
        // 4:2:0 crop units are 2 pixels: 1 left + 2 right columns, 0 top + 4 bottom rows.
        let c = parse(&record_with(&baseline_sps(120, 68, Some([1, 2, 0, 4])))).unwrap();
        assert_eq!((c.width, c.height), (1920 - 6, 1088 - 8));
        let e = parse(&record_with(&baseline_sps(1, 1, Some([4, 4, 0, 0])))).unwrap_err();
        assert!(matches!(e, H264Error::BadSps(_)), "{e:?}");
    }

    #[test]
    fn other_length_sizes_and_set_counts() {
        let mut two = AVCC_640X360.to_vec();
        two[4] = 0xFD;
        assert_eq!(parse(&two).unwrap().nal_length_size, 2);
        let mut three = AVCC_640X360.to_vec();
        three[4] = 0xFE;
        assert_eq!(
            parse(&three),
            Err(H264Error::BadRecord(
                "lengthSizeMinusOne of 2 is not allowed"
            ))
        );
        // No PPS in the record: accepted, the encoder may send it in-band.
        let mut no_pps = AVCC_640X360[..34].to_vec();
        no_pps.push(0);
        assert!(parse(&no_pps).unwrap().pps.is_empty());
        assert_eq!(
            parse(&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]),
            Err(H264Error::NoSps)
        );
        // The first parameter set must be an SPS.
        let mut pps_first = AVCC_640X360.to_vec();
        pps_first[8] = 0x68;
        assert!(matches!(parse(&pps_first), Err(H264Error::BadSps(_))));
    }

    #[test]
    fn truncated_records_are_errors() {
        // Cut anywhere before the end of the PPS (the trailer is optional).
        for len in 0..AVCC_640X360.len() - 4 {
            assert!(parse(&AVCC_640X360[..len]).is_err(), "len {len}");
        }
        assert!(parse(&AVCC_640X360[..AVCC_640X360.len() - 4]).is_ok());
        let mut bad = AVCC_640X360.to_vec();
        bad[0] = 2;
        assert_eq!(
            parse(&bad),
            Err(H264Error::BadRecord("configurationVersion is not 1"))
        );
    }

    #[test]
    fn garbage_never_panics() {
        // xorshift: deterministic, no dev-dependency.
        let mut noise = crate::codec::noise::Noise::new(0x9E37_79B9_7F4A_7C15u64);
        let mut next = move || noise.next();
        for base in [
            AVCC_640X360,
            AVCC_1280X720,
            AVCC_1920X1080,
            AVCC_320X240_BASELINE,
        ] {
            for _ in 0..3000 {
                let mut r = base.to_vec();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % r.len();
                    r[i] ^= 1 << (next() % 8);
                }
                let _ = parse(&r);
                let _ = nal_units(&r, (next() % 5) as u8).count();
            }
        }
    }

    #[test]
    fn splits_nal_units() {
        let data = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 1, 0x65];
        let nals: Vec<_> = nal_units(&data, 4).collect::<Result<_, _>>().unwrap();
        assert_eq!(nals, vec![&[0x09, 0xf0][..], &[0x65][..]]);
        assert_eq!(nal_type(nals[0]), 9);
        assert_eq!(nal_type(nals[1]), 5);
        assert_eq!(nal_type(&[]), 0);
        let data = [0, 1, 0x67, 0, 2, 0x68, 0xCE];
        let nals: Vec<_> = nal_units(&data, 2).collect::<Result<_, _>>().unwrap();
        assert_eq!(nals, vec![&[0x67][..], &[0x68, 0xCE][..]]);
        assert_eq!(nal_units(&[], 4).count(), 0);
    }

    #[test]
    fn bad_nal_lengths_end_the_iteration() {
        let r: Vec<_> = nal_units(&[0, 0, 0, 9, 1], 4).collect();
        assert_eq!(r, vec![Err(H264Error::BadNalLength)]);
        let r: Vec<_> = nal_units(&[0, 0, 0, 1, 0x65, 0, 0], 4).collect();
        assert_eq!(r, vec![Ok(&[0x65][..]), Err(H264Error::BadNalLength)]);
    }
}

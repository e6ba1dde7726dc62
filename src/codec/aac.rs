//! AAC: AudioSpecificConfig (ISO/IEC 14496-3, 1.6.2.1) and the ADTS header that MPEG-TS
//! needs in front of every raw frame.

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
    /// An explicit (escape-coded) sampling frequency no decoder can use.
    #[error("explicit sampling frequency of {0} Hz")]
    BadSampleRate(u32),
    /// A reserved channelConfiguration.
    #[error("reserved channel configuration {0}")]
    BadChannelConfig(u8),
}

/// Sampling frequencies by samplingFrequencyIndex (0x0D and 0x0E are reserved, 0x0F escapes).
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Lower bounds of the rate ranges that decoders map a non-table rate to (14496-3 table
/// 4.82); the position of the first bound `<=` a rate is its index.
const RATE_FLOORS: [u32; 11] = [
    92_017, 75_132, 55_426, 46_009, 37_566, 27_713, 23_004, 18_783, 13_856, 11_502, 9_391,
];

/// MSB-first bit reader over a byte slice; every read past the end is `Truncated`.
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

    /// Reads `n <= 8` bits, which always fit a u8.
    fn read_u8(&mut self, n: usize) -> Result<u8, AacError> {
        Ok(self.read(n)? as u8)
    }

    /// GetAudioObjectType(): 5 bits, with 31 escaping to 32 + 6 more bits (at most 95).
    fn object_type(&mut self) -> Result<u8, AacError> {
        match self.read_u8(5)? {
            31 => Ok(32 + self.read_u8(6)?),
            t => Ok(t),
        }
    }

    /// A samplingFrequencyIndex and the rate it stands for (24 explicit bits after 0xF).
    fn sample_rate(&mut self) -> Result<u32, AacError> {
        match self.read_u8(4)? {
            0x0F => match self.read(24)? {
                0 => Err(AacError::BadSampleRate(0)),
                rate => Ok(rate),
            },
            i => RATES
                .get(usize::from(i))
                .copied()
                .ok_or(AacError::BadFrequencyIndex(i)),
        }
    }
}

/// Everything the ASC says that this crate uses, including what only ADTS needs.
struct Asc {
    /// The signalled object type (5 or 29 for explicitly signalled HE-AAC).
    object_type: u8,
    /// The object type of the core coder (under SBR/PS), the one ADTS can describe.
    core_object_type: u8,
    /// The core sampling rate.
    sample_rate: u32,
    /// The raw channelConfiguration field.
    channel_config: u8,
    /// Output channel count.
    channels: u8,
}

/// Object types whose ASC continues with a GASpecificConfig (14496-3 table 1.8).
fn is_general_audio(object_type: u8) -> bool {
    matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23)
}

fn parse_asc(data: &[u8]) -> Result<Asc, AacError> {
    let mut b = Bits { data, pos: 0 };
    let object_type = b.object_type()?;
    let sample_rate = b.sample_rate()?;
    let channel_config = b.read_u8(4)?;
    let mut core_object_type = object_type;
    if object_type == 5 || object_type == 29 {
        // Explicit hierarchical SBR signalling: the rate above is the core coder's, then
        // comes the SBR output rate (not needed: timing runs at the core rate) and the
        // real core object type.
        b.sample_rate()?;
        core_object_type = b.object_type()?;
        if core_object_type == 22 {
            b.read(4)?; // extensionChannelConfiguration
        }
    }
    let channels = match channel_config {
        0 if is_general_audio(core_object_type) => pce_channels(&mut b)?,
        // Other object types describe their layout elsewhere; stereo is the usual case.
        0 => 2,
        1..=6 => channel_config,
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        c => return Err(AacError::BadChannelConfig(c)),
    };
    // Parametric Stereo decodes a mono core into two output channels.
    let channels = if object_type == 29 && channels == 1 {
        2
    } else {
        channels
    };
    Ok(Asc {
        object_type,
        core_object_type,
        sample_rate,
        channel_config,
        channels,
    })
}

/// Channel count of the program_config_element that a GASpecificConfig carries when
/// channelConfiguration is 0 (14496-3 4.4.1.1).
fn pce_channels(b: &mut Bits<'_>) -> Result<u8, AacError> {
    b.read(1)?; // frameLengthFlag
    if b.read(1)? == 1 {
        b.read(14)?; // coreCoderDelay
    }
    b.read(1)?; // extensionFlag; its fields come after the PCE
    b.read(4 + 2 + 4)?; // element_instance_tag, object_type, sampling_frequency_index
    let front = b.read(4)?;
    let side = b.read(4)?;
    let back = b.read(4)?;
    let lfe = b.read(2)?;
    b.read(3 + 4)?; // num_assoc_data_elements, num_valid_cc_elements
    for skip in [4, 4, 3] {
        // Mono, stereo and matrix mixdown: a presence flag, then the field.
        if b.read(1)? == 1 {
            b.read(skip)?;
        }
    }
    let mut channels = lfe;
    for _ in 0..front + side + back {
        let is_cpe = b.read(1)?;
        b.read(4)?; // element_tag_select
        channels += 1 + is_cpe;
    }
    // At most 3 * 15 * 2 + 3 = 93, so the cast cannot truncate.
    Ok(channels as u8)
}

/// The samplingFrequencyIndex ADTS must carry for `rate`: exact when the rate is in the
/// table, otherwise the range decoders map that rate to.
fn frequency_index(rate: u32) -> u8 {
    if let Some(i) = RATES.iter().position(|r| *r == rate) {
        return i as u8;
    }
    RATE_FLOORS
        .iter()
        .position(|floor| rate >= *floor)
        .unwrap_or(RATE_FLOORS.len()) as u8
}

impl AacConfig {
    /// Parses an AudioSpecificConfig.
    ///
    /// For explicitly signalled HE-AAC (object type 5 or 29) `sample_rate` is the core
    /// rate, so that 1024-sample frames keep the right duration; bytes after the fields we
    /// use (GASpecificConfig tail, implicit SBR sync extensions) are kept in `asc`.
    pub fn parse(asc: Bytes) -> Result<AacConfig, AacError> {
        let fields = parse_asc(&asc)?;
        Ok(AacConfig {
            object_type: fields.object_type,
            sample_rate: fields.sample_rate,
            channels: fields.channels,
            asc,
        })
    }

    /// A 7-byte ADTS header (no CRC) for a raw frame of `payload_len` bytes, for MPEG-TS.
    ///
    /// ADTS can only describe object types 1-4, so HE-AAC is announced as its core (LC)
    /// and decoders find the SBR/PS data in-band; rates outside the index table use the
    /// nearest index, and channel layouts beyond 7.1 are written as 0 (in-band PCE).
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        // The public fields lose the core object type and raw channelConfiguration, so
        // read them again; a config built by hand falls back to the public fields.
        let (core, channel_config) = match parse_asc(&self.asc) {
            Ok(f) => (f.core_object_type, f.channel_config),
            Err(_) => {
                let config = match self.channels {
                    c @ 1..=6 => c,
                    8 => 7,
                    _ => 0,
                };
                (self.object_type, config)
            }
        };
        let profile = match core {
            1..=4 => core - 1,
            _ => 1, // LC: the only sensible guess for a core ADTS cannot name
        };
        let channels = if channel_config <= 7 {
            channel_config
        } else {
            0
        };
        let index = frequency_index(self.sample_rate);
        // aac_frame_length is 13 bits; a legal raw frame (<= 6144 bits per channel, 8
        // channels) never comes close, so saturating only guards against garbage.
        let len = (payload_len + 7).min(0x1FFF);
        [
            0xFF,
            0xF1, // sync word end, MPEG-4, layer 0, no CRC
            (profile << 6) | (index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            // Buffer fullness 0x7FF (variable rate), one raw data block.
            (((len & 7) as u8) << 5) | 0x1F,
            0xFC,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(asc: &[u8]) -> Result<AacConfig, AacError> {
        AacConfig::parse(Bytes::copy_from_slice(asc))
    }

    fn fields(c: &AacConfig) -> (u8, u32, u8) {
        (c.object_type, c.sample_rate, c.channels)
    }

    /// (profile, frequency index, channel config, frame length) of an ADTS header.
    fn adts_fields(h: &[u8; 7]) -> (u8, u8, u8, usize) {
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        (
            h[2] >> 6,
            (h[2] >> 2) & 0xF,
            ((h[2] & 1) << 2) | (h[3] >> 6),
            len,
        )
    }

    #[test]
    fn parses_common_configs() {
        let c = parse(&[0x12, 0x10]).unwrap();
        assert_eq!(fields(&c), (2, 44_100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
        assert_eq!(fields(&parse(&[0x11, 0x90]).unwrap()), (2, 48_000, 2));
        assert_eq!(fields(&parse(&[0x11, 0x88]).unwrap()), (2, 48_000, 1));
        assert_eq!(fields(&parse(&[0x12, 0x08]).unwrap()), (2, 44_100, 1));
        // ffmpeg appends an implicit-SBR sync extension (0x2B7); it is tolerated and kept.
        let c = parse(&[0x11, 0x90, 0x56, 0xE5, 0x00]).unwrap();
        assert_eq!(fields(&c), (2, 48_000, 2));
        assert_eq!(c.asc.len(), 5);
    }

    #[test]
    fn escaped_object_type_and_explicit_rate() {
        // AOT 31 + 6 bits (0) = 32, index 0xF + 24-bit rate 1000 Hz, channelConfiguration 1.
        let c = parse(&[0xF8, 0x1E, 0x00, 0x07, 0xD0, 0x20]).unwrap();
        assert_eq!(fields(&c), (32, 1000, 1));
        assert_eq!(c.codec_string(), "mp4a.40.32");
        // AAC-LC at an explicit 44.1 kHz is the same as index 4.
        let c = parse(&[0x17, 0x80, 0x56, 0x22, 0x10]).unwrap();
        assert_eq!(fields(&c), (2, 44_100, 2));
        assert_eq!(adts_fields(&c.adts_header(0)).1, 4);
        assert_eq!(
            parse(&[0x17, 0x80, 0x00, 0x00, 0x10]),
            Err(AacError::BadSampleRate(0))
        );
    }

    #[test]
    fn he_aac_keeps_the_core_rate() {
        // AOT 5, core 24 kHz stereo, SBR at 48 kHz, core AOT 2.
        let c = parse(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(fields(&c), (5, 24_000, 2));
        assert_eq!(c.codec_string(), "mp4a.40.5");
        let (profile, index, channels, _) = adts_fields(&c.adts_header(10));
        assert_eq!(
            (profile, index, channels),
            (1, 6, 2),
            "announced as LC at 24 kHz"
        );
        // AOT 29 (PS): a mono core decodes to stereo.
        let c = parse(&[0xEB, 0x09, 0x88, 0x00]).unwrap();
        assert_eq!(fields(&c), (29, 24_000, 2));
        assert_eq!(
            adts_fields(&c.adts_header(10)).2,
            1,
            "ADTS carries the core layout"
        );
    }

    #[test]
    fn channel_configurations() {
        assert_eq!(parse(&[0x11, 0xB0]).unwrap().channels, 6); // 5.1
        assert_eq!(parse(&[0x11, 0xB8]).unwrap().channels, 8); // 7.1
        assert_eq!(parse(&[0x11, 0xD8]).unwrap().channels, 7); // 11: 6.1
        assert_eq!(parse(&[0x11, 0xE8]).unwrap().channels, 24); // 13: 22.2
        assert_eq!(parse(&[0x11, 0xC0]), Err(AacError::BadChannelConfig(8)));
        // channelConfiguration 0: a PCE with one front CPE, one front SCE and one LFE.
        let c = parse(&[0x11, 0x80, 0x04, 0xC8, 0x01, 0x00, 0x20, 0x10]).unwrap();
        assert_eq!(c.channels, 4);
        assert_eq!(
            parse(&[0x11, 0x80, 0x04, 0xC8]),
            Err(AacError::Truncated),
            "PCE cut short"
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(&[]), Err(AacError::Truncated));
        assert_eq!(parse(&[0x12]), Err(AacError::Truncated));
        assert_eq!(parse(&[0xF8]), Err(AacError::Truncated), "escape cut short");
        assert_eq!(parse(&[0x16, 0x90]), Err(AacError::BadFrequencyIndex(13)));
        assert_eq!(parse(&[0x17, 0x10]), Err(AacError::BadFrequencyIndex(14)));
        assert_eq!(parse(&[0x17, 0x80, 0x00]), Err(AacError::Truncated));
    }

    #[test]
    fn adts_header_fields() {
        let c = parse(&[0x12, 0x10]).unwrap();
        let h = c.adts_header(100);
        assert_eq!(&h[..2], &[0xFF, 0xF1]);
        assert_eq!(adts_fields(&h), (1, 4, 2, 107));
        assert_eq!(h[6] & 3, 0, "one raw data block");
        let h = parse(&[0x11, 0x88]).unwrap().adts_header(8184);
        assert_eq!(adts_fields(&h), (1, 3, 1, 8191));
        // A hand-built config whose ASC does not parse still gets a usable header.
        let c = AacConfig {
            asc: Bytes::new(),
            object_type: 2,
            sample_rate: 44_100,
            channels: 8,
        };
        assert_eq!(adts_fields(&c.adts_header(1)), (1, 4, 7, 8));
    }

    #[test]
    fn non_table_rates_use_the_nearest_index() {
        assert_eq!(frequency_index(48_000), 3);
        assert_eq!(frequency_index(7_350), 12);
        assert_eq!(frequency_index(47_000), 3);
        assert_eq!(frequency_index(46_008), 4);
        assert_eq!(frequency_index(100_000), 0);
        assert_eq!(frequency_index(1_000), 11);
    }
}

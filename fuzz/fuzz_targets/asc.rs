//! AAC AudioSpecificConfig parsing, and the ADTS header built from what it parsed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use packgate::codec::aac::AacConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AacConfig::parse(Bytes::copy_from_slice(data)) {
        assert!(config.sample_rate > 0);
        let codec = config.codec_string();
        assert!(codec.starts_with("mp4a.40."), "{codec}");
        let frame = config.samples_per_frame();
        assert!(frame > 0);
        for len in [0, 1, 2000, 8184] {
            let adts = config.adts_header(len);
            assert_eq!(adts[0], 0xFF, "ADTS syncword");
            assert_eq!(adts[1] & 0xF0, 0xF0, "ADTS syncword");
            let frame_length = (usize::from(adts[3] & 0x03) << 11)
                | (usize::from(adts[4]) << 3)
                | usize::from(adts[5] >> 5);
            assert_eq!(frame_length, len + 7, "ADTS frame length");
        }
    }
});

//! H.264 configuration: an AVCDecoderConfigurationRecord (input starting with 1), or an SPS
//! NAL unit wrapped into one, so the SPS parser sees the fuzzer's bytes directly.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use packgate::codec::h264::{nal_type, nal_units, AvcConfig};

fn wrap_sps(sps: &[u8]) -> Vec<u8> {
    let profile = sps.get(1..4).unwrap_or(&[66, 0, 30]);
    let mut record = vec![1, profile[0], profile[1], profile[2], 0xFF, 0xE1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(0);
    record
}

fuzz_target!(|data: &[u8]| {
    if data.len() > u16::MAX as usize {
        return;
    }
    let record = if data.first() == Some(&1) {
        data.to_vec()
    } else {
        wrap_sps(data)
    };
    if let Ok(config) = AvcConfig::parse(Bytes::from(record)) {
        assert!(config.width > 0 && config.height > 0);
        assert!(!config.sps.is_empty());
        assert!(matches!(config.nal_length_size, 1 | 2 | 4));
        let codec = config.codec_string();
        assert!(codec.starts_with("avc1."), "{codec}");
        if let Some(rate) = config.frame_rate {
            assert!(rate.is_finite() && rate > 0.0);
        }
        // The record's bytes read as a sample: lengths must never overrun.
        for nal in nal_units(&config.record, config.nal_length_size).flatten() {
            let _ = nal_type(nal);
        }
    }
});

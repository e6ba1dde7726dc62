//! Tests of the CMAF muxer: every box parsed back with mp4-atom.
use super::*;
use mp4_atom::{Decode, Styp};

/// avcC written by libx264 for a 1280x720 High@3.1 stream (with the chroma/bit-depth
/// trailer High profile records carry).
const AVCC_720P: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
    0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83,
    0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
];
/// End of the PPS in [`AVCC_720P`]; the High-profile trailer follows.
const AVCC_PPS_END: usize = 43;

fn avc_config(record: Bytes) -> AvcConfig {
    AvcConfig {
        sps: vec![record.slice(8..34)],
        pps: vec![record.slice(37..43)],
        record,
        profile_idc: 0x64,
        constraint_flags: 0x00,
        level_idc: 0x1f,
        nal_length_size: 4,
        width: 1280,
        height: 720,
        frame_rate: Some(30.0),
    }
}

fn video() -> CodecConfig {
    CodecConfig::H264(avc_config(Bytes::from_static(AVCC_720P)))
}

fn aac_config() -> AacConfig {
    // AAC-LC, 44.1 kHz, stereo.
    AacConfig {
        asc: Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44_100,
        channels: 2,
    }
}

fn sample(dts: i64, duration: u32, cts: i32, keyframe: bool, fill: u8, len: usize) -> Sample {
    Sample {
        dts,
        duration,
        cts,
        keyframe,
        data: Bytes::from(vec![fill; len]),
    }
}

fn decode_init(init: &[u8]) -> (Ftyp, Moov) {
    let mut buf = init;
    let ftyp = Ftyp::decode(&mut buf).expect("ftyp");
    let moov = Moov::decode(&mut buf).expect("moov");
    assert!(buf.is_empty(), "nothing after moov");
    (ftyp, moov)
}

fn pos(haystack: &[u8], fourcc: &[u8; 4]) -> usize {
    haystack
        .windows(4)
        .position(|w| w == fourcc)
        .expect("box present")
}

#[test]
fn video_init_segment_parses_back() {
    let init = init_segment(&video(), 1).unwrap();
    let (ftyp, moov) = decode_init(&init);
    assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
    for brand in [b"iso6", b"cmfc", b"iso5", b"dash", b"mp41"] {
        assert!(ftyp.compatible_brands.contains(&FourCC::new(brand)));
    }
    assert_eq!((moov.mvhd.timescale, moov.mvhd.duration), (1000, 0));
    assert_eq!(moov.mvhd.next_track_id, 2);
    assert_eq!(moov.trak.len(), 1);
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, 1);
    assert!(trak.tkhd.enabled && trak.tkhd.in_movie);
    assert_eq!(trak.tkhd.width, FixedPoint::new(1280, 0));
    assert_eq!(trak.tkhd.height, FixedPoint::new(720, 0));
    assert_eq!(trak.mdia.mdhd.timescale, 90_000);
    assert_eq!(trak.mdia.mdhd.language, "und");
    assert_eq!(trak.mdia.hdlr.handler, FourCC::new(b"vide"));
    let minf = &trak.mdia.minf;
    assert!(minf.vmhd.is_some() && minf.smhd.is_none());
    assert_eq!(minf.dinf.dref.entries, vec![DrefEntry::Url(Url::default())]);
    let stbl = &minf.stbl;
    assert!(stbl.stts.entries.is_empty() && stbl.stsc.entries.is_empty());
    assert_eq!(stbl.stsz, Default::default());
    assert_eq!(stbl.stco, Some(Stco::default()));
    assert_eq!(stbl.stsd.codecs.len(), 1);
    let Codec::Avc1(avc1) = &stbl.stsd.codecs[0] else {
        panic!("expected avc1, got {:?}", stbl.stsd.codecs[0]);
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (1280, 720));
    assert_eq!(avc1.visual.data_reference_index, 1);
    let mut avcc = Vec::new();
    avc1.avcc.encode_body(&mut avcc).unwrap();
    assert_eq!(avcc, AVCC_720P, "avcC carries the record byte for byte");
    // ...and so does the file itself.
    let at = pos(&init, b"avcC");
    assert_eq!(&init[at + 4..at + 4 + AVCC_720P.len()], AVCC_720P);
    let trex = &moov.mvex.as_ref().expect("mvex").trex;
    assert_eq!(trex.len(), 1);
    assert_eq!(
        (trex[0].track_id, trex[0].default_sample_description_index),
        (1, 1)
    );
    // Conventional order: header boxes first, mvex after the track.
    assert!(pos(&init, b"mvhd") < pos(&init, b"trak"));
    assert!(pos(&init, b"trak") < pos(&init, b"mvex"));
    assert!(pos(&init, b"vmhd") < pos(&init, b"dinf"));
    assert!(pos(&init, b"dinf") < pos(&init, b"stbl"));
}

#[test]
fn audio_init_segment_parses_back() {
    let init = init_segment(&CodecConfig::Aac(aac_config()), 2).unwrap();
    let (_, moov) = decode_init(&init);
    assert_eq!(moov.mvhd.next_track_id, 3);
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, 2);
    assert_eq!(trak.tkhd.volume, FixedPoint::new(1, 0));
    assert_eq!(trak.tkhd.width, FixedPoint::new(0, 0));
    assert_eq!(trak.mdia.mdhd.timescale, 44_100);
    assert_eq!(trak.mdia.hdlr.handler, FourCC::new(b"soun"));
    assert!(trak.mdia.minf.smhd.is_some() && trak.mdia.minf.vmhd.is_none());
    let Codec::Mp4a(mp4a) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected mp4a");
    };
    assert_eq!(mp4a.audio.channel_count, 2);
    assert_eq!(mp4a.audio.sample_rate, FixedPoint::new(44_100, 0));
    let dc = &mp4a.esds.es_desc.dec_config;
    assert_eq!((dc.object_type_indication, dc.stream_type), (0x40, 0x05));
    let ds = dc.dec_specific.as_ref().expect("DecoderSpecificInfo");
    assert_eq!(ds.raw, [0x12, 0x10]);
    assert_eq!((ds.profile, ds.freq_index, ds.chan_conf), (2, 4, 2));
    assert_eq!(moov.mvex.as_ref().unwrap().trex[0].track_id, 2);
    assert!(pos(&init, b"smhd") < pos(&init, b"dinf"));
}

#[test]
fn damaged_avcc_trailer_falls_back_to_parameter_sets() {
    // A High-profile trailer cut after two of its four bytes.
    let record = Bytes::copy_from_slice(&AVCC_720P[..AVCC_PPS_END + 2]);
    let init = init_segment(&CodecConfig::H264(avc_config(record)), 1).unwrap();
    let (_, moov) = decode_init(&init);
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected avc1");
    };
    let mut avcc = Vec::new();
    avc1.avcc.encode_body(&mut avcc).unwrap();
    assert_eq!(avcc, &AVCC_720P[..AVCC_PPS_END]);
}

#[test]
fn video_fragment_parses_back_with_exact_offsets() {
    // An IDR then two frames, one with a negative composition offset.
    let samples = [
        sample(900_000, 3000, 6000, true, 0xA1, 1000),
        sample(903_000, 3000, -3000, false, 0xB2, 300),
        sample(906_000, 3003, 0, false, 0xC3, 77),
    ];
    let frag = fragment(1, 42, &samples).unwrap();
    let mut buf = &frag[..];
    let moof = Moof::decode(&mut buf).unwrap();
    let moof_size = frag.len() - buf.len();
    assert_eq!(moof.mfhd.sequence_number, 42);
    assert_eq!(moof.traf.len(), 1);
    let traf = &moof.traf[0];
    assert_eq!(traf.tfhd.track_id, 1);
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(traf.tfhd.base_data_offset, None);
    assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 900_000);
    assert_eq!(traf.trun.len(), 1);
    let trun = &traf.trun[0];
    let entries: Vec<TrunEntry> = trun.samples.iter().collect();
    assert_eq!(entries.len(), 3);
    let field = |f: fn(&TrunEntry) -> Option<i64>| -> Vec<i64> {
        entries
            .iter()
            .map(|e| f(e).expect("per-sample field"))
            .collect()
    };
    assert_eq!(field(|e| e.duration.map(i64::from)), [3000, 3000, 3003]);
    assert_eq!(field(|e| e.size.map(i64::from)), [1000, 300, 77]);
    assert_eq!(field(|e| e.cts), [6000, -3000, 0]);
    let flags = field(|e| e.flags.map(i64::from));
    assert_eq!(flags, [0x0200_0000, 0x0101_0000, 0x0101_0000]);
    // The negative offset needs trun version 1.
    let at = pos(&frag, b"trun");
    assert_eq!(frag[at + 4], 1, "trun version");

    let offset = usize::try_from(trun.data_offset.unwrap()).unwrap();
    assert_eq!(offset, moof_size + 8);
    assert_eq!(&frag[offset - 4..offset], b"mdat");
    let mdat_size = u32::from_be_bytes(frag[moof_size..moof_size + 4].try_into().unwrap());
    assert_eq!(mdat_size as usize, frag.len() - moof_size);
    assert_eq!(&frag[offset..offset + 1000], &samples[0].data[..]);
    let payload: Vec<u8> = samples.iter().flat_map(|s| s.data.to_vec()).collect();
    assert_eq!(
        &frag[offset..],
        &payload[..],
        "mdat holds exactly the samples"
    );
    assert!(frag.len() <= fragment_capacity(&samples), "allocated once");
}

#[test]
fn audio_fragment_states_sync_flags_once() {
    let samples = [
        sample(0, 1024, 0, true, 1, 371),
        sample(1024, 1024, 0, true, 2, 365),
    ];
    let frag = fragment(2, 7, &samples).unwrap();
    let moof = Moof::decode(&mut &frag[..]).unwrap();
    let traf = &moof.traf[0];
    assert_eq!(traf.tfhd.track_id, 2);
    assert_eq!(traf.tfhd.default_sample_flags, Some(SYNC_SAMPLE));
    assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 0);
    let entries: Vec<TrunEntry> = traf.trun[0].samples.iter().collect();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.flags.is_none() && e.cts.is_none()));
    assert!(entries.iter().all(|e| e.duration == Some(1024)));
    let offset = traf.trun[0].data_offset.unwrap() as usize;
    assert_eq!(&frag[offset..offset + 371], &samples[0].data[..]);
    assert_eq!(frag.len(), offset + 371 + 365);
}

#[test]
fn lone_non_sync_sample_keeps_its_flags() {
    // mp4-atom writes a single flagged entry as first_sample_flags; it must survive.
    let frag = fragment(1, 1, &[sample(3000, 3000, 0, false, 9, 5)]).unwrap();
    let moof = Moof::decode(&mut &frag[..]).unwrap();
    let traf = &moof.traf[0];
    let first = traf.trun[0].samples.get(0).unwrap();
    assert_eq!(
        first.flags.or(traf.tfhd.default_sample_flags),
        Some(NON_SYNC_SAMPLE)
    );
}

#[test]
fn media_segment_is_styp_then_fragment() {
    let samples = [sample(90_000, 3000, 0, true, 5, 64)];
    let seg = media_segment(1, 3, &samples).unwrap();
    let mut buf = &seg[..];
    let styp = Styp::decode(&mut buf).unwrap();
    assert_eq!(styp.major_brand, FourCC::new(b"msdh"));
    for brand in [b"msdh", b"cmfs", b"cmff"] {
        assert!(styp.compatible_brands.contains(&FourCC::new(brand)));
    }
    assert_eq!(buf, &fragment(1, 3, &samples).unwrap()[..]);
    // The hand-written constant is exactly what mp4-atom would encode.
    let mut encoded = Vec::new();
    styp.encode(&mut encoded).unwrap();
    assert_eq!(&super::styp()[..], &encoded[..]);
    assert_eq!(&seg[..STYP.len()], &encoded[..]);
}

#[test]
fn errors() {
    let ok = [sample(0, 1, 0, true, 0, 1)];
    assert!(matches!(fragment(1, 1, &[]), Err(Fmp4Error::NoSamples)));
    assert!(matches!(
        media_segment(1, 1, &[]),
        Err(Fmp4Error::NoSamples)
    ));
    assert!(matches!(
        fragment(1, 1, &[sample(-1, 1, 0, true, 0, 1)]),
        Err(Fmp4Error::NegativeTime(-1))
    ));
    assert!(matches!(fragment(0, 1, &ok), Err(Fmp4Error::ZeroTrackId)));
    assert!(matches!(
        init_segment(&video(), 0),
        Err(Fmp4Error::ZeroTrackId)
    ));

    let bad = |c| matches!(init_segment(&c, 1), Err(Fmp4Error::BadConfig(_)));
    let (mut no_asc, mut no_rate) = (aac_config(), aac_config());
    no_asc.asc = Bytes::new();
    no_rate.sample_rate = 0;
    assert!(bad(CodecConfig::Aac(no_asc)) && bad(CodecConfig::Aac(no_rate)));
    let mut wide = avc_config(Bytes::from_static(AVCC_720P));
    wide.width = 70_000;
    assert!(bad(CodecConfig::H264(wide)));
}

#[test]
fn edit_list_delays_presentation_by_the_first_composition_offset() {
    assert!(decode_init(&init_segment(&video(), 1).unwrap()).1.trak[0]
        .edts
        .is_none());
    let init = init_segment_with_delay(&video(), 1, 6000).unwrap();
    let (_, moov) = decode_init(&init);
    let elst = moov.trak[0].edts.as_ref().and_then(|e| e.elst.as_ref());
    let entries = &elst.expect("elst").entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].media_time, Some(6000));
    assert_eq!(entries[0].segment_duration, 0);
    assert_eq!(entries[0].media_rate, FixedPoint::new(1, 0));
}

#[test]
fn enhanced_rtmp_codecs_get_their_sample_entries() {
    use crate::codec::av1::tests::AV1C_320X240;
    use crate::codec::hevc::tests::HVCC_320X240;
    use crate::codec::opus::tests::OPUS_HEAD_MONO;
    use crate::codec::opus::OpusConfig;
    use crate::codec::vp9::tests::VPCC_320X240;
    use crate::codec::vp9::Vp9Config;
    let hevc = HevcConfig::parse(Bytes::from_static(HVCC_320X240)).unwrap();
    let init = init_segment(&CodecConfig::Hevc(hevc), 1).unwrap();
    let (_, moov) = decode_init(&init);
    let Codec::Hvc1(hvc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected hvc1");
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (320, 240));
    let mut hvcc = Vec::new();
    hvc1.hvcc.encode_body(&mut hvcc).unwrap();
    assert_eq!(hvcc, HVCC_320X240, "the encoder's hvcC, byte for byte");
    assert_eq!(moov.trak[0].mdia.mdhd.timescale, 90_000);

    let av1 = Av1Config::parse(Bytes::from_static(AV1C_320X240)).unwrap();
    let init = init_segment(&CodecConfig::Av1(av1), 1).unwrap();
    let (_, moov) = decode_init(&init);
    let Codec::Av01(av01) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected av01");
    };
    assert_eq!((av01.visual.width, av01.visual.height), (320, 240));
    assert_eq!(av01.av1c.config_obus, &AV1C_320X240[4..]);

    let vp9 = Vp9Config::parse(Bytes::from_static(VPCC_320X240)).unwrap();
    let init = init_segment(&CodecConfig::Vp9(vp9), 1).unwrap();
    let (_, moov) = decode_init(&init);
    let Codec::Vp09(vp09) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected vp09");
    };
    assert_eq!(
        (vp09.vpcc.profile, vp09.vpcc.level, vp09.vpcc.bit_depth),
        (0, 20, 8)
    );

    let opus = OpusConfig::parse(Bytes::from_static(OPUS_HEAD_MONO)).unwrap();
    let init = init_segment(&CodecConfig::Opus(opus), 2).unwrap();
    let (_, moov) = decode_init(&init);
    let Codec::Opus(entry) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("expected Opus");
    };
    assert_eq!(
        (entry.dops.output_channel_count, entry.dops.pre_skip),
        (1, 312)
    );
    assert_eq!(moov.trak[0].mdia.mdhd.timescale, 48_000);
    assert_eq!(moov.trak[0].mdia.hdlr.handler, FourCC::new(b"soun"));
}

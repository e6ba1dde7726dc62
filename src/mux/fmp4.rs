//! CMAF / fragmented MP4 (ISO/IEC 14496-12, 23000-19) with mp4-atom.
//!
//! Tracks are written demuxed, one track per init segment and per segment, so the same
//! objects can be listed by an HLS playlist and a DASH manifest alike.

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{
    Atom, Audio, Avc1, Avcc, Codec, Dinf, Dref, DrefEntry, Encode, Esds, FixedPoint, FourCC, Ftyp,
    Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stsd, Styp, Tfdt, Tfhd,
    Tkhd, Traf, Trak, Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};

use crate::media::{CodecConfig, Sample};

/// Why a box could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    /// A segment or fragment needs at least one sample.
    #[error("no samples to write")]
    NoSamples,
    /// tfdt cannot express a negative decode time.
    #[error("negative decode time {0}")]
    NegativeTime(i64),
    /// A field does not fit its box.
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
    /// mp4-atom refused the structure.
    #[error("mp4 encoding failed: {0}")]
    Encode(#[from] mp4_atom::Error),
}

/// trun sample flags of a sync sample: depends on no other sample.
const SYNC: u32 = 0x0200_0000;
/// trun sample flags of a non-sync sample: depends on others, sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0101_0000;

fn encode(atom: &impl Encode, out: &mut BytesMut) -> Result<(), Fmp4Error> {
    atom.encode(out)?;
    Ok(())
}

/// The init segment of one track: ftyp + moov (with mvex/trex, empty sample tables).
pub fn init_segment(config: &CodecConfig, track_id: u32) -> Result<Bytes, Fmp4Error> {
    let timescale = config.timescale();
    let (handler, codec, width, height, volume, vmhd, smhd) = match config {
        CodecConfig::H264(avc) => {
            let avcc = Avcc::decode_body(&mut &avc.record[..])?;
            let w = u16::try_from(avc.width).map_err(|_| Fmp4Error::OutOfRange("width"))?;
            let h = u16::try_from(avc.height).map_err(|_| Fmp4Error::OutOfRange("height"))?;
            let avc1 = Avc1 {
                visual: Visual {
                    data_reference_index: 1,
                    width: w,
                    height: h,
                    horizresolution: FixedPoint::new(72, 0),
                    vertresolution: FixedPoint::new(72, 0),
                    frame_count: 1,
                    compressor: "".into(),
                    depth: 0x0018,
                },
                avcc,
                ..Default::default()
            };
            (
                b"vide",
                Codec::Avc1(avc1),
                w,
                h,
                0,
                Some(Vmhd::default()),
                None,
            )
        }
        CodecConfig::Aac(aac) => {
            let rate = u16::try_from(aac.sample_rate).unwrap_or(0);
            let mp4a = Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(aac.channels),
                    sample_size: 16,
                    sample_rate: FixedPoint::new(rate, 0),
                },
                esds: Esds {
                    es_desc: EsDescriptor {
                        es_id: 1,
                        dec_config: DecoderConfig {
                            object_type_indication: 0x40, // MPEG-4 Audio
                            stream_type: 0x05,            // audio stream
                            up_stream: 0,
                            dec_specific: Some(DecoderSpecific {
                                profile: aac.object_type,
                                freq_index: 0,
                                chan_conf: aac.channels,
                                raw: aac.asc.to_vec(),
                            }),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                },
                btrt: None,
                taic: None,
            };
            (
                b"soun",
                Codec::Mp4a(mp4a),
                0,
                0,
                1,
                None,
                Some(Smhd::default()),
            )
        }
    };
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: [b"iso6", b"cmfc", b"iso5", b"dash", b"mp41"]
            .map(FourCC::new)
            .to_vec(),
    };
    let trak = Trak {
        tkhd: Tkhd {
            track_id,
            enabled: true,
            in_movie: true,
            volume: FixedPoint::new(volume, 0),
            width: FixedPoint::new(width, 0),
            height: FixedPoint::new(height, 0),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: "packgate".into(),
            },
            minf: Minf {
                vmhd,
                smhd,
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::Url(Url {
                            location: String::new(),
                        })],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    };
    let moov = Moov {
        mvhd: Mvhd {
            creation_time: 0,
            modification_time: 0,
            timescale: 1000,
            duration: 0,
            rate: FixedPoint::new(1, 0),
            volume: FixedPoint::new(1, 0),
            matrix: Default::default(),
            next_track_id: track_id + 1,
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![trak],
        ..Default::default()
    };
    let mut out = BytesMut::with_capacity(1024);
    encode(&ftyp, &mut out)?;
    encode(&moov, &mut out)?;
    Ok(out.freeze())
}

/// The `styp` that opens a CMAF segment.
pub fn styp() -> Bytes {
    let styp = Styp {
        major_brand: FourCC::new(b"msdh"),
        minor_version: 0,
        compatible_brands: [b"msdh", b"msix", b"cmfs", b"cmff", b"iso6"]
            .map(FourCC::new)
            .to_vec(),
    };
    let mut out = BytesMut::with_capacity(40);
    // A fixed, well-formed box: encoding cannot fail.
    let _ = styp.encode(&mut out);
    out.freeze()
}

/// One fragment: moof + mdat holding `samples` of track `track_id`.
pub fn fragment(
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<Bytes, Fmp4Error> {
    let mut out = BytesMut::new();
    write_fragment(&mut out, track_id, sequence_number, samples)?;
    Ok(out.freeze())
}

/// A whole media segment: styp + one fragment.
pub fn media_segment(
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<Bytes, Fmp4Error> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&styp());
    write_fragment(&mut out, track_id, sequence_number, samples)?;
    Ok(out.freeze())
}

fn write_fragment(
    out: &mut BytesMut,
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<(), Fmp4Error> {
    let first = samples.first().ok_or(Fmp4Error::NoSamples)?;
    let base = u64::try_from(first.dts).map_err(|_| Fmp4Error::NegativeTime(first.dts))?;
    // Audio (all sync, no reordering) needs neither per-sample flags nor offsets.
    let all_sync = samples.iter().all(|s| s.keyframe);
    let any_cts = samples.iter().any(|s| s.cts != 0);
    let entries = samples
        .iter()
        .map(|s| {
            Ok(TrunEntry {
                duration: Some(s.duration),
                size: Some(
                    u32::try_from(s.data.len())
                        .map_err(|_| Fmp4Error::OutOfRange("sample size"))?,
                ),
                flags: (!all_sync).then_some(if s.keyframe { SYNC } else { NON_SYNC }),
                cts: any_cts.then_some(i64::from(s.cts)),
            })
        })
        .collect::<Result<Vec<_>, Fmp4Error>>()?;
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id,
                default_base_is_moof: true,
                default_sample_flags: all_sync.then_some(SYNC),
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: base,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of the moof to the first sample byte; its
    // field has a fixed size, so measuring the moof once gives the final layout.
    let mut moof_bytes = BytesMut::with_capacity(64 + samples.len() * 16);
    moof.encode(&mut moof_bytes)?;
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let offset =
        i32::try_from(moof_bytes.len() + 8).map_err(|_| Fmp4Error::OutOfRange("data offset"))?;
    moof.traf[0].trun[0].data_offset = Some(offset);
    moof_bytes.clear();
    moof.encode(&mut moof_bytes)?;
    let mdat_size = u32::try_from(payload + 8).map_err(|_| Fmp4Error::OutOfRange("mdat size"))?;
    out.reserve(moof_bytes.len() + 8 + payload);
    out.extend_from_slice(&moof_bytes);
    out.put_u32(mdat_size);
    out.extend_from_slice(b"mdat");
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::aac::AacConfig;
    use crate::codec::h264::{tests::AVCC_640X360, AvcConfig};
    use mp4_atom::{Decode, TrunSamples};

    fn avc() -> CodecConfig {
        CodecConfig::H264(AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap())
    }

    fn aac() -> CodecConfig {
        CodecConfig::Aac(AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap())
    }

    fn sample(dts: i64, cts: i32, key: bool, byte: u8, len: usize) -> Sample {
        Sample {
            dts,
            duration: 3000,
            cts,
            keyframe: key,
            data: Bytes::from(vec![byte; len]),
        }
    }

    #[test]
    fn video_init_segment_parses_back() {
        let init = init_segment(&avc(), 1).unwrap();
        let mut buf = &init[..];
        let ftyp = Ftyp::decode(&mut buf).unwrap();
        assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
        assert!(ftyp.compatible_brands.contains(&FourCC::new(b"cmfc")));
        let moov = Moov::decode(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(moov.trak.len(), 1);
        let trak = &moov.trak[0];
        assert_eq!(trak.tkhd.track_id, 1);
        assert_eq!(trak.mdia.mdhd.timescale, 90_000);
        assert_eq!(trak.mdia.hdlr.handler, FourCC::new(b"vide"));
        let Codec::Avc1(avc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not avc1")
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
        let mut avcc = BytesMut::new();
        avc1.avcc.encode_body(&mut avcc).unwrap();
        assert_eq!(&avcc[..], AVCC_640X360, "avcC round-trips byte for byte");
        let mvex = moov.mvex.as_ref().unwrap();
        assert_eq!(mvex.trex[0].track_id, 1);
    }

    #[test]
    fn audio_init_segment_parses_back() {
        let init = init_segment(&aac(), 2).unwrap();
        let mut buf = &init[..];
        Ftyp::decode(&mut buf).unwrap();
        let moov = Moov::decode(&mut buf).unwrap();
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 44_100);
        assert!(trak.mdia.minf.smhd.is_some());
        let Codec::Mp4a(mp4a) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not mp4a")
        };
        assert_eq!(mp4a.audio.channel_count, 2);
        assert_eq!(mp4a.audio.sample_rate.integer(), 44_100);
        let ds = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
        assert_eq!(ds.raw, vec![0x12, 0x10]);
        assert_eq!(moov.mvex.as_ref().unwrap().trex[0].track_id, 2);
    }

    #[test]
    fn video_fragment_parses_back_with_exact_offsets() {
        let samples = vec![
            sample(900_000, 6000, true, 1, 100),
            sample(903_000, -3000, false, 2, 50),
            sample(906_000, 0, false, 3, 70),
        ];
        let seg = media_segment(1, 42, &samples).unwrap();
        let mut buf = &seg[..];
        Styp::decode(&mut buf).unwrap();
        let moof_start = seg.len() - buf.len();
        let moof = Moof::decode(&mut buf).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 42);
        let traf = &moof.traf[0];
        assert_eq!(traf.tfhd.track_id, 1);
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 900_000);
        let trun = &traf.trun[0];
        let TrunSamples::Explicit(entries) = &trun.samples else {
            panic!("inherited samples")
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries.iter().map(|e| e.size.unwrap()).collect::<Vec<_>>(),
            vec![100, 50, 70]
        );
        assert_eq!(
            entries.iter().map(|e| e.cts.unwrap()).collect::<Vec<_>>(),
            vec![6000, -3000, 0]
        );
        assert_eq!(entries[0].flags, Some(SYNC));
        assert_eq!(entries[1].flags, Some(NON_SYNC));
        assert!(entries.iter().all(|e| e.duration == Some(3000)));
        let first_byte = moof_start + trun.data_offset.unwrap() as usize;
        assert_eq!(&seg[first_byte..first_byte + 100], &[1u8; 100][..]);
        assert_eq!(&seg[first_byte + 100..first_byte + 150], &[2u8; 50][..]);
        assert_eq!(
            seg.len(),
            first_byte + 220,
            "mdat holds exactly the samples"
        );
        assert_eq!(&seg[first_byte - 4..first_byte], b"mdat");
    }

    #[test]
    fn audio_fragment_uses_default_sync_flags() {
        let samples = vec![sample(0, 0, true, 1, 10), sample(1024, 0, true, 2, 10)];
        let frag = fragment(2, 1, &samples).unwrap();
        let moof = Moof::decode(&mut &frag[..]).unwrap();
        assert_eq!(moof.traf[0].tfhd.default_sample_flags, Some(SYNC));
        let TrunSamples::Explicit(entries) = &moof.traf[0].trun[0].samples else {
            panic!()
        };
        assert!(entries.iter().all(|e| e.flags.is_none() && e.cts.is_none()));
    }

    #[test]
    fn errors() {
        assert!(matches!(fragment(1, 1, &[]), Err(Fmp4Error::NoSamples)));
        assert!(matches!(
            fragment(1, 1, &[sample(-1, 0, true, 0, 1)]),
            Err(Fmp4Error::NegativeTime(-1))
        ));
    }
}

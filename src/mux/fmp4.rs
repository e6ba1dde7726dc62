//! CMAF / fragmented MP4 (ISO/IEC 14496-12, ISO/IEC 23000-19) with mp4-atom.
//!
//! Tracks are written demuxed, one track per init segment and per media segment, so the
//! same objects can be listed by an HLS playlist and a DASH manifest alike.

use bytes::{BufMut as _, Bytes, BytesMut};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, BufMut as _, Codec, Dinf, Dref, DrefEntry, Edts, Elst,
    ElstEntry, Encode, Esds, FixedPoint, FourCC, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov,
    Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url, Visual, Vmhd, Vp09,
};

use crate::codec::aac::AacConfig;
use crate::codec::av1::Av1Config;
use crate::codec::h264::AvcConfig;
use crate::codec::hevc::HevcConfig;
use crate::media::{CodecConfig, Sample, TrackKind};

/// Why an init segment or a fragment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    /// A fragment needs at least one sample.
    #[error("no samples to write")]
    NoSamples,
    /// tfdt cannot express a decode time before zero.
    #[error("negative decode time {0}")]
    NegativeTime(i64),
    /// Track ID 0 is reserved by ISO/IEC 14496-12.
    #[error("track id 0 is not allowed")]
    ZeroTrackId,
    /// The codec configuration cannot be described in a sample entry.
    #[error("unusable codec configuration: {0}")]
    BadConfig(&'static str),
    /// A size or offset does not fit its 32-bit field.
    #[error("{0} does not fit in 32 bits")]
    TooLarge(&'static str),
    /// mp4-atom refused to encode a box.
    #[error("mp4 encoding failed: {0}")]
    Encode(#[from] mp4_atom::Error),
}

/// Sample flags of a sync sample: sample_depends_on = 2 (an I-frame).
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample: sample_depends_on = 1, sample_is_non_sync_sample.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// `styp`: a DASH media segment (`msdh`) that is also a CMAF segment (`cmfs`) made of a
/// single CMAF fragment (`cmff`). Not `msix`: that brand promises a `sidx`, which live
/// segments do not carry.
const STYP: [u8; 32] = *b"\0\0\0\x20stypmsdh\0\0\0\0msdhcmfscmffiso6";

/// The init segment of one CMAF track: `ftyp` + `moov` with empty sample tables and `mvex`.
///
/// `track_id` must match the one passed to [`fragment`] for this track (1 is customary,
/// since every track lives in its own init segment).
pub fn init_segment(config: &CodecConfig, track_id: u32) -> Result<Bytes, Fmp4Error> {
    init_segment_with_delay(config, track_id, 0)
}

/// An init segment whose edit list starts presentation `delay` track-timescale ticks into
/// the media (`elst` media_time): with B-frames the first keyframe is shown its
/// composition offset after it is decoded, and this edit moves it back onto its decode
/// time, where the playlists (PROGRAM-DATE-TIME, part and segment starts, DASH `S@t`)
/// place it. Decode times and the positive offsets in `trun` stay as the encoder made
/// them, so demuxers that ignore the edit still see increasing DTS. `delay` 0 writes no
/// edit list.
pub fn init_segment_with_delay(
    config: &CodecConfig,
    track_id: u32,
    delay: u64,
) -> Result<Bytes, Fmp4Error> {
    if track_id == 0 {
        return Err(Fmp4Error::ZeroTrackId);
    }
    let timescale = config.timescale();
    if timescale == 0 {
        return Err(Fmp4Error::BadConfig("timescale is zero"));
    }
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: [b"iso6", b"cmfc", b"iso5", b"dash", b"mp41"]
            .map(FourCC::new)
            .to_vec(),
    };
    let mvhd = Mvhd {
        timescale: 1000,
        duration: 0,
        rate: FixedPoint::new(1, 0),
        volume: FixedPoint::new(1, 0),
        next_track_id: track_id.saturating_add(1),
        ..Default::default()
    };
    let mut tkhd = Tkhd {
        track_id,
        enabled: true,
        in_movie: true,
        ..Default::default()
    };
    let (codec, handler, name) = match config {
        CodecConfig::H264(avc) => {
            let entry = avc1(avc)?;
            tkhd.width = FixedPoint::new(entry.visual.width, 0);
            tkhd.height = FixedPoint::new(entry.visual.height, 0);
            (Codec::Avc1(entry), b"vide", "VideoHandler")
        }
        CodecConfig::Hevc(_) | CodecConfig::Av1(_) | CodecConfig::Vp9(_) => {
            let entry = other_video(config)?;
            if let Some(visual) = entry.visual() {
                tkhd.width = FixedPoint::new(visual.width, 0);
                tkhd.height = FixedPoint::new(visual.height, 0);
            }
            (entry, b"vide", "VideoHandler")
        }
        CodecConfig::Aac(aac) => {
            tkhd.volume = FixedPoint::new(1, 0);
            (Codec::Mp4a(mp4a(aac)?), b"soun", "SoundHandler")
        }
        CodecConfig::Opus(opus) => {
            tkhd.volume = FixedPoint::new(1, 0);
            let entry = mp4_atom::Opus {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(opus.channels),
                    sample_size: 16,
                    sample_rate: FixedPoint::new(48_000, 0),
                },
                dops: opus.dops(),
                btrt: None,
            };
            (Codec::Opus(entry), b"soun", "SoundHandler")
        }
    };
    let mdhd = Mdhd {
        timescale,
        duration: 0,
        language: "und".into(),
        ..Default::default()
    };
    let hdlr = Hdlr {
        handler: FourCC::new(handler),
        name: name.into(),
    };
    let dinf = Dinf {
        dref: Dref {
            // An empty location sets the self-contained flag: samples are in this file.
            entries: vec![DrefEntry::Url(Url::default())],
        },
    };
    let stbl = Stbl {
        stsd: Stsd {
            codecs: vec![codec],
        },
        // Fragmented: the tables stay empty, but stco is mandatory so it is written too.
        stco: Some(Stco::default()),
        ..Default::default()
    };
    let mvex = Mvex {
        mehd: None, // live: the total duration is unknown
        trex: vec![Trex {
            track_id,
            default_sample_description_index: 1,
            ..Default::default()
        }],
    };

    let mut out = BytesMut::with_capacity(1024);
    ftyp.encode(&mut out)?;
    // mp4-atom's own container encoders put mvex before trak and the media header after
    // stbl; ISO/IEC 14496-12 §6.2.3 strongly recommends header boxes first, and some
    // strict demuxers expect the conventional order, so the containers are written here.
    out.encode_atom(Moov::KIND, |b| {
        mvhd.encode(b)?;
        b.encode_atom(Trak::KIND, |b| {
            tkhd.encode(b)?;
            if delay > 0 {
                // One edit for the whole (unknown, live) duration: segment_duration 0.
                Edts {
                    elst: Some(Elst {
                        entries: vec![ElstEntry {
                            segment_duration: 0,
                            media_time: Some(delay),
                            media_rate: FixedPoint::new(1, 0),
                        }],
                    }),
                }
                .encode(b)?;
            }
            b.encode_atom(Mdia::KIND, |b| {
                mdhd.encode(b)?;
                hdlr.encode(b)?;
                b.encode_atom(Minf::KIND, |b| {
                    match config.kind() {
                        TrackKind::Video => Vmhd::default().encode(b)?,
                        TrackKind::Audio => Smhd::default().encode(b)?,
                    }
                    dinf.encode(b)?;
                    stbl.encode(b)
                })
            })
        })?;
        mvex.encode(b)
    })?;
    Ok(out.freeze())
}

/// The `avc1` sample entry, with the encoder's avcC.
fn avc1(avc: &AvcConfig) -> Result<Avc1, Fmp4Error> {
    let width = u16::try_from(avc.width).map_err(|_| Fmp4Error::BadConfig("width over 65535"))?;
    let height =
        u16::try_from(avc.height).map_err(|_| Fmp4Error::BadConfig("height over 65535"))?;
    // mp4-atom only writes a structured avcC. Decoding the record keeps its High-profile
    // trailer, so well-formed records come out byte for byte; a record whose optional
    // trailer is damaged falls back to the parameter sets alone, which decoders need.
    let avcc = match Avcc::decode_body(&mut &avc.record[..]) {
        Ok(avcc) => avcc,
        Err(_) if !avc.sps.is_empty() => Avcc {
            configuration_version: 1,
            avc_profile_indication: avc.profile_idc,
            profile_compatibility: avc.constraint_flags,
            avc_level_indication: avc.level_idc,
            length_size: avc.nal_length_size,
            sequence_parameter_sets: avc.sps.iter().map(|s| s.to_vec()).collect(),
            picture_parameter_sets: avc.pps.iter().map(|p| p.to_vec()).collect(),
            ext: None,
        },
        Err(_) => return Err(Fmp4Error::BadConfig("unreadable avcC without SPS")),
    };
    Ok(Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            ..Default::default()
        },
        avcc,
        ..Default::default()
    })
}

/// The visual part of a sample entry for a `width` x `height` picture (0 x 0 when the
/// configuration does not say: VP9 states its size in each key frame, not in vpcC).
fn visual(size: Option<(u32, u32)>) -> Result<Visual, Fmp4Error> {
    let (width, height) = size.unwrap_or((0, 0));
    Ok(Visual {
        data_reference_index: 1,
        width: u16::try_from(width).map_err(|_| Fmp4Error::BadConfig("width over 65535"))?,
        height: u16::try_from(height).map_err(|_| Fmp4Error::BadConfig("height over 65535"))?,
        ..Default::default()
    })
}

/// The `hvc1`, `av01` or `vp09` sample entry. Parameter sets live in the configuration
/// record only (`hvc1`, not `hev1`), which is what Apple's HLS authoring spec asks for;
/// TS output repeats them in-band itself.
fn other_video(config: &CodecConfig) -> Result<Codec, Fmp4Error> {
    let visual = visual(config.resolution())?;
    Ok(match config {
        CodecConfig::Hevc(c) => Codec::Hvc1(mp4_atom::Hvc1 {
            visual,
            hvcc: hvcc(c)?,
            ..Default::default()
        }),
        CodecConfig::Av1(c) => Codec::Av01(Av01 {
            visual,
            av1c: av1c(c)?,
            ..Default::default()
        }),
        CodecConfig::Vp9(c) => Codec::Vp09(Vp09 {
            visual,
            vpcc: c.vpcc(),
            btrt: None,
            colr: None,
            pasp: None,
            spatial: None,
        }),
        _ => return Err(Fmp4Error::BadConfig("not an Enhanced RTMP video codec")),
    })
}

/// The encoder's hvcC, decoded into mp4-atom's structure (it writes no raw records).
fn hvcc(c: &HevcConfig) -> Result<mp4_atom::Hvcc, Fmp4Error> {
    mp4_atom::Hvcc::decode_body(&mut &c.record[..])
        .map_err(|_| Fmp4Error::BadConfig("unreadable hvcC"))
}

/// The encoder's av1C, decoded into mp4-atom's structure.
fn av1c(c: &Av1Config) -> Result<Av1c, Fmp4Error> {
    Av1c::decode_body(&mut &c.record[..]).map_err(|_| Fmp4Error::BadConfig("unreadable av1C"))
}

/// The `mp4a` sample entry, with the AudioSpecificConfig in its `esds`.
fn mp4a(aac: &AacConfig) -> Result<Mp4a, Fmp4Error> {
    if aac.asc.is_empty() {
        // mp4-atom would otherwise invent a 2-byte ASC from the (unset) parsed fields.
        return Err(Fmp4Error::BadConfig("empty AudioSpecificConfig"));
    }
    Ok(Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(aac.channels),
            sample_size: 16,
            // The field is 16.16; rates above 65535 Hz are written as 0, as ffmpeg does.
            // Decoders take the rate from the ASC anyway.
            sample_rate: FixedPoint::new(u16::try_from(aac.sample_rate).unwrap_or(0), 0),
        },
        esds: Esds {
            es_desc: EsDescriptor {
                // ISO/IEC 14496-14: ES_ID is stored as 0 in files.
                es_id: 0,
                dec_config: DecoderConfig {
                    object_type_indication: 0x40, // MPEG-4 Audio
                    stream_type: 0x05,            // AudioStream
                    dec_specific: Some(DecoderSpecific {
                        // Written verbatim; the parsed fields are only used when it is empty.
                        raw: aac.asc.to_vec(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    })
}

/// The `styp` box that opens every CMAF media segment.
pub fn styp() -> Bytes {
    Bytes::from_static(&STYP)
}

/// One CMAF fragment: `moof` + `mdat` holding `samples` of track `track_id`.
///
/// Decode times come from `samples[0].dts` (the tfdt) plus the running sum of durations,
/// so the samples must be contiguous. Also usable on its own as an LL-HLS part.
pub fn fragment(
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<Bytes, Fmp4Error> {
    let mut out = BytesMut::with_capacity(fragment_capacity(samples));
    write_fragment(&mut out, track_id, sequence_number, samples)?;
    Ok(out.freeze())
}

/// A complete CMAF media segment: [`styp`] followed by one [`fragment`].
pub fn media_segment(
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<Bytes, Fmp4Error> {
    let mut out = BytesMut::with_capacity(STYP.len() + fragment_capacity(samples));
    out.extend_from_slice(&STYP);
    write_fragment(&mut out, track_id, sequence_number, samples)?;
    Ok(out.freeze())
}

/// An upper bound on the fragment's size, so the output is allocated exactly once.
fn fragment_capacity(samples: &[Sample]) -> usize {
    // moof 8 + mfhd 16 + traf 8 + tfhd ≤ 20 + tfdt 20 + trun ≤ 24 + mdat header 8 = 104
    // fixed bytes, then at most 16 per sample (duration, size, flags, composition offset).
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    128 + 16 * samples.len() + payload
}

fn write_fragment(
    out: &mut BytesMut,
    track_id: u32,
    sequence_number: u32,
    samples: &[Sample],
) -> Result<(), Fmp4Error> {
    if track_id == 0 {
        return Err(Fmp4Error::ZeroTrackId);
    }
    let first = samples.first().ok_or(Fmp4Error::NoSamples)?;
    let base = u64::try_from(first.dts).map_err(|_| Fmp4Error::NegativeTime(first.dts))?;
    // Audio runs (all sync, never reordered) state the flags once in tfhd and carry no
    // composition offsets, which saves 8 bytes per AAC frame.
    let all_sync = samples.iter().all(|s| s.keyframe);
    let any_cts = samples.iter().any(|s| s.cts != 0);
    let entries = samples
        .iter()
        .map(|s| {
            let size = u32::try_from(s.data.len()).map_err(|_| Fmp4Error::TooLarge("sample"))?;
            let flags = if s.keyframe {
                SYNC_SAMPLE
            } else {
                NON_SYNC_SAMPLE
            };
            Ok(TrunEntry {
                duration: Some(s.duration),
                size: Some(size),
                flags: (!all_sync).then_some(flags),
                // mp4-atom writes trun version 1 (signed offsets) whenever they fit i32.
                cts: any_cts.then_some(i64::from(s.cts)),
            })
        })
        .collect::<Result<Vec<_>, Fmp4Error>>()?;
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mdat_size = u32::try_from(payload + 8).map_err(|_| Fmp4Error::TooLarge("mdat"))?;

    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id,
                default_base_is_moof: true,
                default_sample_flags: all_sync.then_some(SYNC_SAMPLE),
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
    // data_offset counts from the first byte of the moof to the first sample byte, i.e.
    // the moof size plus the mdat header. The field has a fixed width, so a first pass
    // measures the moof and the second writes it with the final offset.
    let start = out.len();
    moof.encode(out)?;
    let moof_size = out.len() - start;
    let offset = i32::try_from(moof_size + 8).map_err(|_| Fmp4Error::TooLarge("data offset"))?;
    moof.traf[0].trun[0].data_offset = Some(offset);
    out.truncate(start);
    moof.encode(out)?;
    out.put_u32(mdat_size);
    out.extend_from_slice(b"mdat");
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Ok(())
}

#[cfg(test)]
#[path = "fmp4_tests.rs"]
mod tests;

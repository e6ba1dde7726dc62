//! MPEG-TS (ISO/IEC 13818-1) segments cut at the same boundaries as the CMAF segments:
//! PAT/PMT at the start of every segment, H.264 or HEVC in Annex B with an AUD (and the
//! parameter sets before each IDR / IRAP picture), AAC in ADTS, PCR on the video PID, continuity counters carried across
//! segments so a player concatenating them sees no gap.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::aac::AacConfig;
use crate::codec::h264::{self, AvcConfig};
use crate::codec::hevc::{self, HevcConfig};
use crate::media::Sample;

/// A video codec MPEG-TS carries here, with the configuration its samples need.
#[derive(Clone, Copy, Debug)]
pub enum TsVideo<'a> {
    /// H.264 (stream type 0x1B).
    H264(&'a AvcConfig),
    /// HEVC (stream type 0x24).
    Hevc(&'a HevcConfig),
}

impl TsVideo<'_> {
    fn stream_type(self) -> u8 {
        match self {
            TsVideo::H264(_) => STREAM_TYPE_H264,
            TsVideo::Hevc(_) => STREAM_TYPE_HEVC,
        }
    }
}

const PACKET: usize = 188;
const PAT_PID: u16 = 0x0000;
const PMT_PID: u16 = 0x1000;
/// PID of the video elementary stream (also carries the PCR).
pub const VIDEO_PID: u16 = 0x0100;
/// PID of the audio elementary stream.
pub const AUDIO_PID: u16 = 0x0101;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_HEVC: u8 = 0x24;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
const TS_CLOCK_MASK: i64 = (1 << 33) - 1;
/// The PCR runs this far (100 ms) behind the DTS so decoders see data before it is due.
const PCR_LEAD: i64 = 9_000;

/// Why a TS segment could not be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TsError {
    /// A video sample's NAL length prefixes do not add up.
    #[error("malformed video sample: {0}")]
    BadSample(&'static str),
    /// Nothing to write.
    #[error("segment has no samples")]
    Empty,
}

/// Writes TS segments for one rendition; keeps continuity counters between segments.
#[derive(Debug, Default)]
pub struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

impl TsMuxer {
    /// A muxer whose counters start at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Muxes one segment. Video samples are length-prefixed H.264 or HEVC NAL units;
    /// audio samples are raw AAC frames described by `aac`. All times are 90 kHz.
    pub fn segment(
        &mut self,
        video: Option<(TsVideo<'_>, &[Sample])>,
        audio: Option<(&AacConfig, &[Sample])>,
    ) -> Result<Bytes, TsError> {
        // Packets each sample's PES can take (payload plus start codes or ADTS and the PES
        // header, 184 bytes a packet, one more for stuffing and one for an adaptation
        // field), so the buffer is sized once: growing it doubled its capacity, and the
        // live window kept segments in buffers half empty (small audio PES are mostly
        // stuffing, which a per-byte estimate missed).
        let packets = |samples: &[Sample], extra: usize| {
            samples
                .iter()
                .map(|x| (x.data.len() + extra) / (PACKET - 4) + 2)
                .sum::<usize>()
        };
        let total = video.map_or(0, |(_, s)| packets(s, 64 + 19))
            + audio.map_or(0, |(_, s)| packets(s, 7 + 14));
        if total == 0 {
            return Err(TsError::Empty);
        }
        let mut out = BytesMut::with_capacity((total + 4) * PACKET);
        self.write_pat(&mut out);
        self.write_pmt(&mut out, video.map(|v| v.0.stream_type()), audio.is_some());
        // Interleave by decode time, as a demuxer reading sequentially expects.
        let (vs, as_) = (
            video.map_or(&[][..], |v| v.1),
            audio.map_or(&[][..], |a| a.1),
        );
        let (mut vi, mut ai) = (0, 0);
        let mut pes = Vec::new();
        while vi < vs.len() || ai < as_.len() {
            let take_video = match (vs.get(vi), as_.get(ai)) {
                (Some(v), Some(a)) => v.dts <= a.dts,
                (Some(_), None) => true,
                _ => false,
            };
            pes.clear();
            if take_video {
                let (codec, _) = video.ok_or(TsError::Empty)?;
                let s = &vs[vi];
                match codec {
                    TsVideo::H264(avc) => annex_b(
                        &H264_NALS,
                        avc.nal_length_size,
                        &avc.sps,
                        &avc.pps,
                        s,
                        &mut pes,
                    )?,
                    TsVideo::Hevc(c) => annex_b(
                        &HEVC_NALS,
                        c.nal_length_size,
                        &c.parameter_sets,
                        &[],
                        s,
                        &mut pes,
                    )?,
                }
                let pts = s.dts + i64::from(s.cts);
                let header = pes_header(0xE0, pts, Some(s.dts), 0);
                let pcr = Some((s.dts - PCR_LEAD).max(0));
                self.write_pes(&mut out, VIDEO_PID, &header, &pes, pcr, s.keyframe);
                vi += 1;
            } else {
                let (aac, _) = audio.ok_or(TsError::Empty)?;
                let s = &as_[ai];
                pes.extend_from_slice(&aac.adts_header(s.data.len()));
                pes.extend_from_slice(&s.data);
                let header = pes_header(0xC0, s.dts + i64::from(s.cts), None, pes.len());
                // Without video the PCR rides on the audio PID (the PMT says so).
                let pcr = video.is_none().then(|| (s.dts - PCR_LEAD).max(0));
                self.write_pes(&mut out, AUDIO_PID, &header, &pes, pcr, video.is_none());
                ai += 1;
            }
        }
        Ok(out.freeze())
    }

    fn write_pat(&mut self, out: &mut BytesMut) {
        let mut section = vec![0x00, 0xB0, 0x00, 0x00, 0x01, 0xC1, 0x00, 0x00];
        section.extend_from_slice(&[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
        finish_section(&mut section);
        psi_packet(out, PAT_PID, &mut self.cc_pat, &section);
    }

    fn write_pmt(&mut self, out: &mut BytesMut, video: Option<u8>, audio: bool) {
        let pcr_pid = if video.is_some() {
            VIDEO_PID
        } else {
            AUDIO_PID
        };
        let mut section = vec![0x02, 0xB0, 0x00, 0x00, 0x01, 0xC1, 0x00, 0x00];
        section.extend_from_slice(&[0xE0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xF0, 0x00]);
        for (present, stream_type, pid) in [
            (video.is_some(), video.unwrap_or(0), VIDEO_PID),
            (audio, STREAM_TYPE_AAC_ADTS, AUDIO_PID),
        ] {
            if present {
                section.extend_from_slice(&[
                    stream_type,
                    0xE0 | (pid >> 8) as u8,
                    pid as u8,
                    0xF0,
                    0x00,
                ]);
            }
        }
        finish_section(&mut section);
        psi_packet(out, PMT_PID, &mut self.cc_pmt, &section);
    }

    fn write_pes(
        &mut self,
        out: &mut BytesMut,
        pid: u16,
        header: &[u8],
        payload: &[u8],
        pcr: Option<i64>,
        random_access: bool,
    ) {
        let cc = if pid == VIDEO_PID {
            &mut self.cc_video
        } else {
            &mut self.cc_audio
        };
        let mut rest = [header, payload];
        let mut remaining = header.len() + payload.len();
        let mut first = true;
        while remaining > 0 {
            // The adaptation field body (after its length byte), if the packet has one.
            let mut af: Option<Vec<u8>> = None;
            if first && (pcr.is_some() || random_access) {
                let mut body = vec![if random_access { 0x40 } else { 0x00 }];
                if let Some(pcr) = pcr {
                    body[0] |= 0x10;
                    let base = pcr & TS_CLOCK_MASK;
                    body.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        (((base & 1) << 7) as u8) | 0x7E,
                        0x00,
                    ]);
                }
                af = Some(body);
            }
            let used = af.as_ref().map_or(0, |b| b.len() + 1);
            let room = PACKET - 4 - used;
            if remaining < room {
                // The last packet is filled up with stuffing in the adaptation field.
                let stuffing = room - remaining;
                match af.as_mut() {
                    Some(body) => body.extend(std::iter::repeat_n(0xFF, stuffing)),
                    None if stuffing == 1 => af = Some(Vec::new()),
                    None => {
                        let mut body = vec![0x00];
                        body.extend(std::iter::repeat_n(0xFF, stuffing - 2));
                        af = Some(body);
                    }
                }
            }
            let used = af.as_ref().map_or(0, |b| b.len() + 1);
            out.put_u8(0x47);
            out.put_u8(if first { 0x40 } else { 0x00 } | ((pid >> 8) as u8 & 0x1F));
            out.put_u8(pid as u8);
            out.put_u8(if af.is_some() { 0x30 } else { 0x10 } | *cc);
            *cc = (*cc + 1) & 0x0F;
            if let Some(body) = &af {
                out.put_u8(body.len() as u8);
                out.extend_from_slice(body);
            }
            let mut take = (PACKET - 4 - used).min(remaining);
            remaining -= take;
            for part in rest.iter_mut() {
                let n = take.min(part.len());
                out.extend_from_slice(&part[..n]);
                *part = &part[n..];
                take -= n;
            }
            first = false;
        }
    }
}

/// A PES header with PTS (and DTS when it differs). `payload_len` 0 means unbounded
/// (allowed for video only).
fn pes_header(stream_id: u8, pts: i64, dts: Option<i64>, payload_len: usize) -> Vec<u8> {
    let dts = dts.filter(|d| *d != pts);
    let header_data = if dts.is_some() { 10 } else { 5 };
    let mut h = vec![0x00, 0x00, 0x01, stream_id];
    let len = if payload_len == 0 {
        0
    } else {
        payload_len + 3 + header_data
    };
    let len = if len > 0xFFFF { 0 } else { len };
    h.extend_from_slice(&(len as u16).to_be_bytes());
    h.push(0x80); // marker bits '10', no scrambling, not aligned
    h.push(if dts.is_some() { 0xC0 } else { 0x80 });
    h.push(header_data as u8);
    write_timestamp(&mut h, if dts.is_some() { 0x3 } else { 0x2 }, pts);
    if let Some(dts) = dts {
        write_timestamp(&mut h, 0x1, dts);
    }
    h
}

fn write_timestamp(h: &mut Vec<u8>, prefix: u8, t: i64) {
    let t = t & TS_CLOCK_MASK;
    h.push((prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1);
    h.extend_from_slice(&((((t >> 15) & 0x7FFF) << 1 | 1) as u16).to_be_bytes());
    h.extend_from_slice(&((((t & 0x7FFF) << 1) | 1) as u16).to_be_bytes());
}

/// How one codec's NAL units are told apart, for [`annex_b`].
struct NalSyntax {
    /// The codec's access unit delimiter NAL unit (any picture type).
    aud: &'static [u8],
    /// nal_unit_type of a NAL unit.
    kind: fn(&[u8]) -> u8,
    /// True for a picture a decoder can start at (IDR; HEVC IRAP).
    random_access: fn(u8) -> bool,
    /// True for a parameter set the sample already carries in-band.
    parameter_set: fn(u8) -> bool,
    /// nal_unit_type of the AUD, which is replaced by ours.
    aud_type: u8,
}

const H264_NALS: NalSyntax = NalSyntax {
    aud: &[0x09, 0xF0],
    kind: |nal| nal.first().map_or(0, |b| b & 0x1F),
    random_access: |t| t == 5,
    parameter_set: |t| t == 7,
    aud_type: 9,
};

const HEVC_NALS: NalSyntax = NalSyntax {
    // nal_unit_type 35, layer 0, temporal id 1; pic_type 2 (I, P or B) + stop bit.
    aud: &[0x46, 0x01, 0x50],
    kind: hevc::nal_type,
    random_access: hevc::is_irap,
    parameter_set: |t| t == hevc::NAL_VPS || t == hevc::NAL_SPS,
    aud_type: hevc::NAL_AUD,
};

/// Converts one length-prefixed sample to Annex B, starting with an AUD and with the
/// parameter sets (`sets` then `more`) in front of a random access picture that lacks them
/// (players joining mid-stream need them). Their size is bounded where they enter: the
/// FLV demuxer refuses a sequence header over `limits.config_record_bytes`
/// (`flv::budget`), so they cannot make every keyframe huge.
fn annex_b(
    syntax: &NalSyntax,
    nal_length_size: u8,
    sets: &[Bytes],
    more: &[Bytes],
    sample: &Sample,
    out: &mut Vec<u8>,
) -> Result<(), TsError> {
    const START: [u8; 4] = [0, 0, 0, 1];
    out.extend_from_slice(&START);
    out.extend_from_slice(syntax.aud);
    let nals = h264::nal_units(&sample.data, nal_length_size)
        .collect::<Result<Vec<&[u8]>, _>>()
        .map_err(|_| TsError::BadSample("NAL length past the end of the sample"))?;
    let kind = syntax.kind;
    let random_access = nals.iter().any(|n| (syntax.random_access)(kind(n)));
    let has_sets = nals.iter().any(|n| (syntax.parameter_set)(kind(n)));
    if random_access && !has_sets {
        for ps in sets.iter().chain(more) {
            out.extend_from_slice(&START);
            out.extend_from_slice(ps);
        }
    }
    for nal in nals {
        if nal.is_empty() || kind(nal) == syntax.aud_type {
            continue; // we wrote our own AUD
        }
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
    }
    Ok(())
}

fn finish_section(section: &mut Vec<u8>) {
    // section_length counts from after the length field through the CRC.
    let len = section.len() - 3 + 4;
    section[1] = 0xB0 | ((len >> 8) as u8 & 0x0F);
    section[2] = len as u8;
    let crc = crc32_mpeg(section);
    section.extend_from_slice(&crc.to_be_bytes());
}

fn psi_packet(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    out.put_u8(0x47);
    out.put_u8(0x40 | ((pid >> 8) as u8 & 0x1F));
    out.put_u8(pid as u8);
    out.put_u8(0x10 | *cc);
    *cc = (*cc + 1) & 0x0F;
    out.put_u8(0x00); // pointer_field
    out.extend_from_slice(section);
    out.extend(std::iter::repeat_n(0xFF, PACKET - 5 - section.len()));
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, init all ones).
fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h264::tests::AVCC_640X360;
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

    fn avc() -> AvcConfig {
        AvcConfig::parse(Bytes::from_static(AVCC_640X360)).unwrap()
    }

    fn aac() -> AacConfig {
        AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap()
    }

    /// A length-prefixed IDR of `n` payload bytes.
    fn idr(n: usize) -> Bytes {
        let mut v = ((n + 1) as u32).to_be_bytes().to_vec();
        v.push(0x65);
        v.extend(std::iter::repeat_n(0xAB, n));
        Bytes::from(v)
    }

    fn parse(data: &[u8]) -> Vec<mpeg2ts::ts::TsPacket> {
        assert_eq!(data.len() % PACKET, 0);
        let mut r = TsPacketReader::new(data);
        let mut out = Vec::new();
        while let Some(p) = r.read_ts_packet().expect("valid TS") {
            out.push(p);
        }
        out
    }

    #[test]
    fn every_payload_size_packs_into_whole_packets() {
        // Sizes around packet boundaries exercise 0-, 1- and 2-byte stuffing.
        let mut muxer = TsMuxer::new();
        for n in 100..600 {
            let s = Sample {
                dts: 9000,
                duration: 3000,
                cts: 3000,
                keyframe: true,
                data: idr(n),
            };
            let out = muxer
                .segment(
                    Some((TsVideo::H264(&avc()), std::slice::from_ref(&s))),
                    None,
                )
                .unwrap();
            let packets = parse(&out);
            let pes: Vec<u8> = packets
                .iter()
                .filter(|p| p.header.pid.as_u16() == VIDEO_PID)
                .flat_map(|p| match &p.payload {
                    Some(TsPayload::PesStart(pes)) => pes.data.to_vec(),
                    Some(TsPayload::PesContinuation(b)) | Some(TsPayload::Raw(b)) => b.to_vec(),
                    _ => Vec::new(),
                })
                .collect();
            assert!(pes.ends_with(&[0xAB; 10]), "payload cut short for n = {n}");
            assert_eq!(pes.iter().filter(|b| **b == 0xAB).count(), n, "n = {n}");
        }
    }

    #[test]
    fn psi_timestamps_and_counters() {
        let mut muxer = TsMuxer::new();
        let video = [Sample {
            dts: 90_000,
            duration: 3000,
            cts: 6000,
            keyframe: true,
            data: idr(50),
        }];
        let audio = [Sample {
            dts: 90_000,
            duration: 2090,
            cts: 0,
            keyframe: true,
            data: Bytes::from_static(&[1, 2, 3]),
        }];
        let mut ccs: std::collections::HashMap<u16, u8> = Default::default();
        for round in 0..20 {
            let out = muxer
                .segment(
                    Some((TsVideo::H264(&avc()), &video)),
                    Some((&aac(), &audio)),
                )
                .unwrap();
            let packets = parse(&out);
            assert!(
                matches!(packets[0].payload, Some(TsPayload::Pat(_))),
                "PAT first"
            );
            assert!(
                matches!(packets[1].payload, Some(TsPayload::Pmt(_))),
                "PMT second"
            );
            for p in &packets {
                let (pid, cc) = (p.header.pid.as_u16(), p.header.continuity_counter.as_u8());
                if let Some(prev) = ccs.insert(pid, cc) {
                    assert_eq!(cc, (prev + 1) % 16, "round {round} pid {pid:#x}");
                }
                if let Some(TsPayload::PesStart(pes)) = &p.payload {
                    let pts = pes.header.pts.unwrap().as_u64();
                    if pid == VIDEO_PID {
                        assert_eq!((pts, pes.header.dts.unwrap().as_u64()), (96_000, 90_000));
                        let pcr = p.adaptation_field.as_ref().and_then(|a| a.pcr).unwrap();
                        assert_eq!(pcr.as_u64(), (90_000 - PCR_LEAD as u64) * 300);
                        assert_eq!(&pes.data[..6], &[0, 0, 0, 1, 0x09, 0xF0]);
                    } else {
                        assert_eq!(pts, 90_000);
                        assert_eq!(&pes.data[..2], &[0xFF, 0xF1]);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_samples_are_errors() {
        let mut muxer = TsMuxer::new();
        let s = Sample {
            dts: 0,
            duration: 1,
            cts: 0,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 9, 1]),
        };
        assert!(muxer
            .segment(Some((TsVideo::H264(&avc()), &[s][..])), None)
            .is_err());
        assert_eq!(muxer.segment(None, None), Err(TsError::Empty));
        assert_eq!(crc32_mpeg(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn hevc_gets_stream_type_0x24_and_parameter_sets_before_irap() {
        use crate::codec::hevc::tests::HVCC_320X240;
        let hevc = HevcConfig::parse(Bytes::from_static(HVCC_320X240)).unwrap();
        // An IDR_W_RADL slice (type 19) and a trailing picture (type 1), length-prefixed.
        let sample = |nal_type: u8, keyframe: bool| Sample {
            dts: 9000,
            duration: 3000,
            cts: 0,
            keyframe,
            data: Bytes::from(vec![0, 0, 0, 3, nal_type << 1, 0x01, 0xAF]),
        };
        let samples = [sample(19, true), sample(1, false)];
        let mut pes = Vec::new();
        annex_b(
            &HEVC_NALS,
            4,
            &hevc.parameter_sets,
            &[],
            &samples[0],
            &mut pes,
        )
        .unwrap();
        let mut expected = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
        for ps in &hevc.parameter_sets {
            expected.extend_from_slice(&[0, 0, 0, 1]);
            expected.extend_from_slice(ps);
        }
        expected.extend_from_slice(&[0, 0, 0, 1, 19 << 1, 0x01, 0xAF]);
        assert_eq!(pes, expected);
        pes.clear();
        annex_b(
            &HEVC_NALS,
            4,
            &hevc.parameter_sets,
            &[],
            &samples[1],
            &mut pes,
        )
        .unwrap();
        assert_eq!(
            pes,
            [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x02, 0x01, 0xAF]
        );
        // The PMT announces HEVC.
        let out = TsMuxer::new()
            .segment(Some((TsVideo::Hevc(&hevc), &samples[..])), None)
            .unwrap();
        let pmt = parse(&out)
            .into_iter()
            .find_map(|p| match p.payload {
                Some(TsPayload::Pmt(pmt)) => Some(pmt),
                _ => None,
            })
            .expect("a PMT");
        assert_eq!(pmt.es_info[0].stream_type as u8, 0x24);
    }
}

//! MPEG-TS segments cut at exactly the CMAF boundaries: the segmenter finishes a
//! segment's video and audio at slightly different moments, so the cuts of one sequence
//! number are paired here and muxed together once both are in.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::media::{CodecConfig, Sample, TrackKind, MEDIA_CLOCK};
use crate::mux::ts::{TsError, TsMuxer, TsVideo};
use crate::segment::CutSegment;

/// A TS segment ready to store.
#[derive(Debug)]
pub struct TsSegment {
    /// Sequence number, the same as the CMAF segments'.
    pub seq: u64,
    /// The segment's nominal start on the media clock.
    pub media_start: i64,
    /// Decode time of the first sample, 90 kHz.
    pub start: i64,
    /// Duration, 90 kHz.
    pub duration: u64,
    /// 188-byte packets.
    pub data: Bytes,
    /// Starts with a video keyframe (or has no video).
    pub independent: bool,
    /// Starts a new timeline (EXT-X-DISCONTINUITY).
    pub discontinuity: bool,
}

#[derive(Debug, Default)]
struct Pair {
    video: Option<CutSegment>,
    audio: Option<CutSegment>,
}

/// Pairs cuts and muxes TS; keeps continuity counters across segments.
#[derive(Debug, Default)]
pub struct TsPackager {
    muxer: TsMuxer,
    pending: BTreeMap<u64, Pair>,
    /// The next TS segment muxed starts a new timeline.
    discontinuity: bool,
}

impl TsPackager {
    /// A packager whose first segment starts a new timeline when `discontinuity` (a
    /// reconnect continuing the playlists).
    pub fn new(discontinuity: bool) -> Self {
        TsPackager {
            discontinuity,
            ..Self::default()
        }
    }

    /// Takes one finished cut, which starts a new timeline when `discontinuity`; returns
    /// the TS segments that became complete. `has` says which tracks (video, audio) the
    /// stream has.
    pub fn push(
        &mut self,
        cut: CutSegment,
        discontinuity: bool,
        has: (bool, bool),
        video: Option<&CodecConfig>,
        audio: Option<&CodecConfig>,
    ) -> Vec<Result<TsSegment, TsError>> {
        self.discontinuity |= discontinuity;
        let newest = cut.seq;
        let pair = self.pending.entry(cut.seq).or_default();
        match cut.kind {
            TrackKind::Video => pair.video = Some(cut),
            TrackKind::Audio => pair.audio = Some(cut),
        }
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let p = entry.get();
            let complete = (p.video.is_some() || !has.0) && (p.audio.is_some() || !has.1);
            // A track that had nothing in a segment never delivers it: don't wait forever.
            let stale = *entry.key() + 1 < newest;
            if !complete && !stale {
                break;
            }
            let (seq, pair) = entry.remove_entry();
            out.push(self.mux(seq, pair, video, audio));
        }
        out
    }

    /// Muxes whatever is still waiting (end of stream).
    pub fn flush(
        &mut self,
        video: Option<&CodecConfig>,
        audio: Option<&CodecConfig>,
    ) -> Vec<Result<TsSegment, TsError>> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .map(|(seq, pair)| self.mux(seq, pair, video, audio))
            .collect()
    }

    fn mux(
        &mut self,
        seq: u64,
        pair: Pair,
        video: Option<&CodecConfig>,
        audio: Option<&CodecConfig>,
    ) -> Result<TsSegment, TsError> {
        let audio90: Option<Vec<Sample>> = pair.audio.as_ref().map(|a| {
            let rate = i64::from(a.timescale.max(1));
            let to90 = |t: i64| (t * i64::from(MEDIA_CLOCK) + rate / 2).div_euclid(rate);
            a.samples
                .iter()
                .map(|s| Sample {
                    dts: to90(s.dts),
                    duration: (to90(s.dts + i64::from(s.duration)) - to90(s.dts)) as u32,
                    cts: 0,
                    keyframe: true,
                    data: s.data.clone(),
                })
                .collect()
        });
        let codec = match video {
            Some(CodecConfig::H264(c)) => Some(TsVideo::H264(c)),
            Some(CodecConfig::Hevc(c)) => Some(TsVideo::Hevc(c)),
            _ => None,
        };
        let aac = match audio {
            Some(CodecConfig::Aac(c)) => Some(c),
            _ => None,
        };
        let video = pair
            .video
            .as_ref()
            .zip(codec)
            .map(|(v, c)| (c, &v.samples[..]));
        let audio = audio90.as_deref().zip(aac).map(|(s, c)| (c, s));
        let data = self.muxer.segment(video, audio)?;
        let (start, duration) = match (&pair.video, &audio90) {
            (Some(v), _) => (v.start(), v.duration()),
            (None, Some(a)) => (a[0].dts, a.iter().map(|s| u64::from(s.duration)).sum()),
            (None, None) => (0, 0),
        };
        let media_start = pair
            .video
            .as_ref()
            .or(pair.audio.as_ref())
            .map_or(0, |c| c.media_start);
        let independent = pair
            .video
            .as_ref()
            .is_none_or(|v| v.samples.first().is_some_and(|s| s.keyframe));
        Ok(TsSegment {
            seq,
            media_start,
            start,
            duration,
            data,
            independent,
            discontinuity: std::mem::take(&mut self.discontinuity),
        })
    }
}

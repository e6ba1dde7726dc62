//! The CMAF track output of a publisher: fMP4 init segments (with the edit list the first
//! video keyframe needs) and the moof+mdat fragments of cut segments and LL-HLS parts.
//! Pure muxing: what it returns is stored by [`super::storage`].

use bytes::Bytes;
use tracing::warn;

use super::rendition::slot;
use crate::media::{CodecConfig, TrackKind, MEDIA_CLOCK};
use crate::mux::fmp4::{self, Fmp4Error};
use crate::segment::{CutPart, CutSegment};
use crate::store::StoredPart;

/// fMP4 track ids: distinct per kind so a player muxing both never sees a clash.
fn track_id(kind: TrackKind) -> u32 {
    match kind {
        TrackKind::Video => 1,
        TrackKind::Audio => 2,
    }
}

/// Muxes one rendition's tracks as CMAF.
#[derive(Debug, Default)]
pub(super) struct CmafOutput {
    /// The video init segment waits for the first keyframe's composition offset (its
    /// edit list).
    edit_pending: bool,
    /// Per track (video, audio): the last fragment's `mfhd` sequence number, counted from
    /// 1 under each init segment (ISO/IEC 14496-12 8.8.5: increasing within a file).
    fragments: [u32; 2],
}

impl CmafOutput {
    /// The init segment for a (new) configuration of its track.
    pub(super) fn init(&mut self, config: &CodecConfig) -> Result<Bytes, Fmp4Error> {
        let kind = config.kind();
        let init = fmp4::init_segment(config, track_id(kind))?;
        self.edit_pending |= kind == TrackKind::Video;
        self.fragments[slot(kind)] = 0;
        Ok(init)
    }

    /// The `mfhd` sequence number of track `kind`'s next fragment.
    fn next_fragment(&mut self, kind: TrackKind) -> u32 {
        let n = &mut self.fragments[slot(kind)];
        *n = n.checked_add(1).unwrap_or(1);
        *n
    }

    /// True until the first video keyframe after a new video init segment was seen.
    pub(super) fn wants_edit(&self) -> bool {
        self.edit_pending
    }

    /// For the first video keyframe after a new init segment, whose composition offset is
    /// `offset` (media clock): that init segment again, with an edit list that shows the
    /// keyframe at its decode time. `None` when nothing needs rewriting.
    pub(super) fn edit(
        &mut self,
        keyframe: bool,
        offset: i64,
        config: Option<&CodecConfig>,
    ) -> Option<Bytes> {
        if !self.edit_pending || !keyframe {
            return None;
        }
        self.edit_pending = false;
        let config = config.filter(|_| offset > 0)?;
        let timescale = i64::from(config.timescale());
        let delay = (offset * timescale + i64::from(MEDIA_CLOCK) / 2) / i64::from(MEDIA_CLOCK);
        match fmp4::init_segment_with_delay(config, track_id(TrackKind::Video), delay as u64) {
            Ok(init) => Some(init),
            Err(e) => {
                warn!(error = %e, "cannot add the edit list to the init segment");
                None
            }
        }
    }

    /// One LL-HLS part; the first part of a segment carries the segment's styp, so the
    /// parts concatenate to exactly the segment.
    pub(super) fn part(&mut self, part: &CutPart) -> Option<Bytes> {
        let kind = part.kind;
        let number = self.next_fragment(kind);
        let muxed = if part.index == 0 {
            fmp4::media_segment(track_id(kind), number, &part.samples)
        } else {
            fmp4::fragment(track_id(kind), number, &part.samples)
        };
        muxed
            .map_err(|e| {
                warn!(track = kind.as_str(), seq = part.seq, part = part.index, error = %e, "cannot mux part; dropped");
            })
            .ok()
    }

    /// A whole segment as one fragment.
    pub(super) fn segment(&mut self, cut: &CutSegment) -> Option<StoredPart> {
        let kind = cut.kind;
        let number = self.next_fragment(kind);
        match fmp4::media_segment(track_id(kind), number, &cut.samples) {
            Ok(data) => Some(StoredPart {
                id: cut.seq,
                duration: cut.duration(),
                independent: cut.samples.first().is_some_and(|s| s.keyframe),
                data,
            }),
            Err(e) => {
                warn!(track = kind.as_str(), seq = cut.seq, error = %e, "cannot mux segment; dropped");
                None
            }
        }
    }
}

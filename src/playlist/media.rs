//! HLS media playlists, written by hand (m3u8-rs has no LL-HLS tags): the classic form, and
//! the Low-Latency form of RFC 8216bis with parts, a preload hint, server control,
//! rendition reports and delta updates (EXT-X-SKIP).

use std::fmt::Write as _;

use super::hls::VERSION;
use crate::store::{StoredSegment, TrackWindow};
pub use crate::urls::Container;
use crate::urls::ObjectName;
use crate::wallclock::iso8601;

/// EXT-X-SKIP needs protocol version 9 (RFC 8216bis 4.4.5.2).
const LL_VERSION: usize = 9;

/// Where another rendition's playlist ends, for EXT-X-RENDITION-REPORT.
#[derive(Clone, Debug, PartialEq)]
pub struct RenditionReport {
    /// Its media playlist, relative to this one.
    pub uri: String,
    /// Its last media sequence number (the open segment's, once that has parts).
    pub last_msn: u64,
    /// Its last part in that segment.
    pub last_part: Option<u32>,
}

/// The Low-Latency HLS settings of one playlist answer.
#[derive(Clone, Debug, PartialEq)]
pub struct LowLatency {
    /// PART-TARGET, seconds.
    pub part_target: f64,
    /// PART-HOLD-BACK in part targets.
    pub hold_back_parts: f64,
    /// Answer with a delta update (`_HLS_skip=YES|v2`).
    pub skip: bool,
    /// The other renditions' positions.
    pub reports: Vec<RenditionReport>,
}

/// One media playlist to write.
#[derive(Debug)]
pub struct MediaPlaylist<'a> {
    /// The segments.
    pub window: &'a TrackWindow,
    /// The directory of the objects relative to the playlist: the feed's name
    /// ([`crate::urls::Feed::name`]; objects are at `{feed}/{file}` next to `{feed}.m3u8`).
    pub prefix: &'a str,
    /// How the feed names its objects.
    pub container: Container,
    /// EXT-X-TARGETDURATION.
    pub target: u64,
    /// The stream has ended: EXT-X-ENDLIST, no parts in progress.
    pub ended: bool,
    /// LL-HLS tags, when on.
    pub low_latency: Option<LowLatency>,
}

/// The last (media sequence number, part index) a window has: the open segment's once it
/// has parts, else the last finished segment's last part.
pub fn last_position(window: &TrackWindow) -> Option<(u64, Option<u32>)> {
    let last_part = |s: &StoredSegment| u32::try_from(s.parts.len()).ok()?.checked_sub(1);
    window
        .open()
        .filter(|o| !o.parts.is_empty())
        .or_else(|| window.last())
        .map(|s| (s.seq, last_part(s)))
}

/// Segments whose parts are still listed: the ones within this many target durations of
/// the end (RFC 8216bis 6.2.2 asks for at least the last three target durations' worth).
const PART_LISTING_TARGETS: f64 = 3.0;

/// CAN-SKIP-UNTIL in target durations (the minimum RFC 8216bis allows).
const SKIP_UNTIL_TARGETS: f64 = 6.0;

/// How far before the end of a segment a joining player is sent when it must start in
/// that segment: more than hls.js's fragment look-up tolerance (0.25 s), so the player
/// picks this segment and not the next.
const JOIN_MARGIN: f64 = 0.3;

/// EXT-X-START's TIME-OFFSET (negative, from the playlist's end) when a player joining
/// PART-HOLD-BACK from the end would land in a segment that does not start on a keyframe
/// (a GOP longer than the longest segment is cut between keyframes): the latest point,
/// inside the last segment that does start on one, from which it can decode. hls.js
/// starting in such a segment finds no INDEPENDENT part, appends video it cannot decode
/// and stalls on the hole up to the next keyframe. `None` when the usual join works.
pub fn join_offset<'s>(
    segments: impl Iterator<Item = &'s StoredSegment>,
    hold_back: f64,
) -> Option<f64> {
    let spans: Vec<(f64, f64, bool)> = segments
        .scan(0.0, |start, s| {
            let span = (
                *start,
                *start + s.duration_secs(),
                !s.is_gap() && starts_on_keyframe(s),
            );
            *start = span.1;
            Some(span)
        })
        .collect();
    let total = spans.last()?.1;
    let join = total - hold_back;
    let at = spans.iter().position(|&(_, end, _)| end > join)?;
    if spans[at].2 {
        return None;
    }
    let &(start, end, _) = spans[..at].iter().rev().find(|s| s.2)?;
    Some((end - JOIN_MARGIN).max(start) - total)
}

/// Whether a segment's first frame is a keyframe (a gap, having no media, does not
/// spoil EXT-X-INDEPENDENT-SEGMENTS).
fn starts_on_keyframe(s: &StoredSegment) -> bool {
    s.parts.first().is_none_or(|p| p.independent)
}

impl MediaPlaylist<'_> {
    /// CAN-SKIP-UNTIL, seconds.
    pub fn skip_until(&self) -> f64 {
        SKIP_UNTIL_TARGETS * self.target as f64
    }

    /// Writes the playlist text.
    pub fn render(&self) -> String {
        let listed: Vec<&StoredSegment> = self.window.listed().collect();
        let open = match (&self.low_latency, self.ended) {
            (Some(_), false) => self.window.open().filter(|o| !o.parts.is_empty()),
            _ => None,
        };
        let first = listed.first().map_or(0, |s| s.seq);
        let mut out = String::with_capacity(1024);
        let version = if self.low_latency.is_some() {
            LL_VERSION
        } else {
            VERSION
        };
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n",
            self.target
        );
        // Seconds from each listed segment's end to the playlist's end.
        let total: f64 = listed.iter().map(|s| s.duration_secs()).sum::<f64>()
            + open.map_or(0.0, |o| o.duration_secs());
        let mut skipped = 0;
        if let Some(ll) = &self.low_latency {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3},HOLD-BACK={:.1}",
                self.skip_until(),
                ll.hold_back_parts * ll.part_target,
                3.0 * self.target as f64
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", ll.part_target);
            if ll.skip {
                // Skip the segments that lie wholly before the skip boundary.
                let mut end = 0.0;
                for s in &listed {
                    end += s.duration_secs();
                    if total - end < self.skip_until() {
                        break;
                    }
                    skipped += 1;
                }
            }
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
        let dseq = self.window.discontinuity_sequence();
        if dseq > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{dseq}");
        }
        // Claimed only while true: a segment cut between keyframes (no keyframe within the
        // longest segment) starts on a frame that needs earlier ones.
        if listed.iter().copied().chain(open).all(starts_on_keyframe) {
            out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        if let (Some(ll), false) = (&self.low_latency, self.ended) {
            let hold_back = ll.hold_back_parts * ll.part_target;
            if let Some(offset) = join_offset(listed.iter().copied().chain(open), hold_back) {
                let _ = writeln!(out, "#EXT-X-START:TIME-OFFSET={offset:.3}");
            }
        }
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let mut map: Option<u64> = None;
        let mut elapsed = 0.0;
        let part_horizon = total - PART_LISTING_TARGETS * self.target as f64;
        for (i, seg) in listed.iter().enumerate() {
            elapsed += seg.duration_secs();
            if i < skipped {
                continue;
            }
            self.segment_head(&mut out, seg, i > 0, &mut map);
            if self.low_latency.is_some() && elapsed > part_horizon {
                self.parts(&mut out, seg);
            }
            if seg.is_gap() {
                // RFC 8216bis 4.4.4.7: no media for this number (a rung that was away).
                out.push_str("#EXT-X-GAP\n");
            }
            let _ = write!(
                out,
                "#EXTINF:{:.3},\n{}/{}\n",
                seg.duration_secs(),
                self.prefix,
                self.file(ObjectName::Segment(seg.seq))
            );
        }
        if let Some(open) = open {
            self.segment_head(&mut out, open, !listed.is_empty(), &mut map);
            self.parts(&mut out, open);
        }
        if let Some(ll) = &self.low_latency {
            if !self.ended {
                let _ = writeln!(
                    out,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}/{}\"",
                    self.prefix,
                    self.file(ObjectName::Part(self.window.next_part_id()))
                );
            }
            for r in &ll.reports {
                let _ = write!(
                    out,
                    "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
                    r.uri, r.last_msn
                );
                if let Some(part) = r.last_part {
                    let _ = write!(out, ",LAST-PART={part}");
                }
                out.push('\n');
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }

    /// Discontinuity, map and date lines that precede a segment's parts and URI.
    fn segment_head(
        &self,
        out: &mut String,
        seg: &StoredSegment,
        not_first: bool,
        map: &mut Option<u64>,
    ) {
        if seg.discontinuity && not_first {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if self.container == Container::Cmaf && *map != Some(seg.init_version) {
            let _ = writeln!(
                out,
                "#EXT-X-MAP:URI=\"{}/{}\"",
                self.prefix,
                self.file(ObjectName::Init(seg.init_version))
            );
            *map = Some(seg.init_version);
        }
        // Every segment gets a date: cheap, and players use it for sync across renditions.
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(seg.wall_clock));
    }

    /// The file name of an object of this playlist's feed.
    fn file(&self, name: ObjectName) -> crate::urls::live::FileName {
        name.file(self.container)
    }

    fn parts(&self, out: &mut String, seg: &StoredSegment) {
        for p in &seg.parts {
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={:.3},URI=\"{}/{}\"",
                p.duration as f64 / f64::from(seg.timescale),
                self.prefix,
                self.file(ObjectName::Part(p.id))
            );
            if p.independent {
                out.push_str(",INDEPENDENT=YES");
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;

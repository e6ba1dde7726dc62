//! Live DASH manifests (ISO/IEC 23009-1, DASH-IF IOP live profile) whose SegmentTemplate
//! URLs point at the very CMAF objects the HLS playlists list.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::media::{secs_to_ticks, TrackKind};
use crate::store::TrackWindow;
use crate::urls::live::segment_template;
use crate::urls::{Container, ObjectName};
use crate::wallclock::iso8601;

/// One Representation: a CMAF track of a rendition.
pub struct DashTrack<'a> {
    /// Representation id (unique in the MPD).
    pub id: String,
    /// The directory of its objects relative to the MPD: a written
    /// [`crate::urls::FeedDir`], e.g. `720p/video`.
    pub prefix: String,
    /// Its segments.
    pub window: &'a TrackWindow,
    /// Video or audio.
    pub kind: TrackKind,
    /// RFC 6381 codec string.
    pub codecs: String,
    /// Bits per second (measured peak).
    pub bandwidth: u64,
    /// Width and height, for video.
    pub resolution: Option<(u32, u32)>,
    /// Frames per second, for video.
    pub frame_rate: Option<f64>,
    /// Sample rate, for audio (also its timescale).
    pub sample_rate: Option<u32>,
    /// Channel count, for audio.
    pub channels: Option<u8>,
}

/// Everything an MPD says.
pub struct Manifest<'a> {
    /// Wall-clock time of media time zero.
    pub availability_start: SystemTime,
    /// When this version of the manifest was made.
    pub publish_time: SystemTime,
    /// True after unpublish: the manifest becomes static.
    pub ended: bool,
    /// Segment target duration in seconds.
    pub target_duration: f64,
    /// Video Representations (one AdaptationSet).
    pub video: Vec<DashTrack<'a>>,
    /// Audio Representations, each in its own AdaptationSet: the ladder's audio first (the
    /// main one), then the alternatives (multitrack audio tracks).
    pub audio: Vec<DashTrack<'a>>,
    /// Absolute or relative URL of the server's clock (`UTCTiming`); empty = none (a
    /// bucket copy has no clock to offer).
    pub utc_timing_url: String,
    /// True when all Representations start segments at the same times (segmentAlignment).
    pub aligned: bool,
    /// Low-latency DASH signalling, when parts are cut.
    pub low_latency: Option<LowLatencyDash>,
}

/// Low-latency DASH (DASH-IF IOP low-latency modes): the segment being cut is announced with
/// its expected duration and may be requested once its first chunk exists; its response
/// streams the CMAF chunks as they are made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LowLatencyDash {
    /// Duration of one CMAF chunk (the LL-HLS part target), seconds.
    pub chunk: f64,
    /// Target live latency for ServiceDescription, seconds.
    pub target_latency: f64,
}

fn duration(d: Duration) -> String {
    format!("PT{:.3}S", d.as_secs_f64())
}

fn secs(s: f64) -> String {
    duration(Duration::from_secs_f64(s.max(0.0)))
}

/// Writes the MPD.
pub fn mpd(m: &Manifest) -> String {
    let mut out = String::with_capacity(2048);
    let window_secs: f64 = m
        .video
        .iter()
        .chain(m.audio.iter())
        .map(|t| {
            current_timeline(t.window)
                .iter()
                .map(|s| s.duration_secs())
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\"");
    if m.ended {
        let total: f64 = m.video.first().or(m.audio.first()).map_or(0.0, |t| {
            current_timeline(t.window)
                .iter()
                .map(|s| s.duration_secs())
                .sum::<f64>()
        });
        let _ = write!(
            out,
            " type=\"static\" mediaPresentationDuration=\"{}\"",
            secs(total)
        );
    } else {
        let _ = write!(
            out,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
            iso8601(m.availability_start),
            iso8601(m.publish_time),
            // With low latency the segment in progress is announced, so the MPD must be
            // fetched again within a chunk of the next one starting: a player that learns
            // of it later plays the end of the old one dry whenever the encoder's clock
            // runs a little behind the wall clock (live GStreamer sources stalled dash.js
            // at every segment boundary with a quarter-segment period).
            secs(m.low_latency.map_or(m.target_duration, |ll| ll.chunk)),
            secs(window_secs),
            secs(
                m.low_latency
                    .map_or(m.target_duration * 3.0, |ll| ll.target_latency)
            ),
        );
    }
    let _ = writeln!(out, " minBufferTime=\"{}\">", secs(m.target_duration));
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    let low_latency = m.low_latency.filter(|_| !m.ended);
    let audio_sets = m.audio.iter().map(std::slice::from_ref);
    let sets = std::iter::once(m.video.as_slice()).chain(audio_sets);
    for (id, tracks) in sets.enumerate() {
        let Some(first) = tracks.first() else {
            continue;
        };
        let (content, mime) = match first.kind {
            TrackKind::Video => ("video", "video/mp4"),
            TrackKind::Audio => ("audio", "audio/mp4"),
        };
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"{}\" startWithSAP=\"1\">",
            // One audio Representation is aligned with itself; video depends on the ladder.
            m.aligned || first.kind == TrackKind::Audio
        );
        if first.kind == TrackKind::Audio && m.audio.len() > 1 {
            // Which one a player starts with: the ladder's audio, as HLS's DEFAULT=YES.
            let role = if id == 1 { "main" } else { "alternate" };
            let _ = writeln!(
                out,
                "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
            );
        }
        for t in tracks.iter() {
            representation(&mut out, t, m.ended, low_latency, m.target_duration);
        }
        out.push_str("    </AdaptationSet>\n");
    }
    out.push_str("  </Period>\n");
    if let Some(ll) = low_latency {
        let ms = (ll.target_latency * 1000.0).round() as u64;
        let _ = writeln!(
            out,
            "  <ServiceDescription id=\"0\">\n    <Latency target=\"{ms}\" min=\"{}\" max=\"{}\"/>\n    <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n  </ServiceDescription>",
            ms / 2,
            ms * 3
        );
    }
    if !m.ended && !m.utc_timing_url.is_empty() {
        let _ = writeln!(
            out,
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>",
            m.utc_timing_url
        );
    }
    out.push_str("</MPD>\n");
    out
}

/// The segments of the current timeline: a reconnect starts a new one, and SegmentTimeline
/// times must only grow. Gaps (a ladder rung's numbers from while it was away) come just
/// before a reconnect and are never listed: `$Number$` counts every `S`, so the timeline
/// starts after them.
fn current_timeline(window: &TrackWindow) -> Vec<&crate::store::StoredSegment> {
    let listed: Vec<_> = window.listed().collect();
    let from = listed
        .iter()
        .rposition(|s| s.is_gap())
        .map(|g| g + 1)
        .into_iter()
        .chain(listed.iter().rposition(|s| s.discontinuity))
        .max()
        .unwrap_or(0);
    listed[from..].to_vec()
}

fn representation(
    out: &mut String,
    t: &DashTrack,
    ended: bool,
    low_latency: Option<LowLatencyDash>,
    target_duration: f64,
) {
    let _ = write!(
        out,
        "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
        t.id,
        t.codecs,
        t.bandwidth.max(1)
    );
    if let Some((w, h)) = t.resolution {
        let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
    }
    if let Some(f) = t.frame_rate {
        let _ = write!(out, " frameRate=\"{}\"", frame_rate(f));
    }
    if let Some(sr) = t.sample_rate {
        let _ = write!(out, " audioSamplingRate=\"{sr}\"");
    }
    out.push_str(">\n");
    if let Some(ch) = t.channels {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>"
        );
    }
    let mut segments = current_timeline(t.window);
    // The segment in progress, announced with at least the target duration: its real end is
    // known only when the next keyframe arrives, and the next MPD states it.
    let mut growing = None;
    if let (Some(_), Some(open)) = (low_latency, t.window.open()) {
        let follows = segments.last().is_none_or(|l| open.seq == l.seq + 1);
        if follows && (!open.discontinuity || segments.is_empty()) {
            let expected = secs_to_ticks(target_duration, open.timescale) as u64;
            growing = Some(crate::store::StoredSegment {
                duration: open.duration.max(expected),
                parts: Vec::new(),
                ..open.clone()
            });
        }
    }
    segments.extend(growing.as_ref());
    // And the one after it, where the segment in progress is expected to end: a player
    // learns of a segment only from the MPD, which dash.js reloads about once a second, so
    // without it the playhead ran dry at every boundary when the encoder's clock was a
    // little behind the wall clock. Requests for it are held until it starts, and its
    // real start is in the next MPD (segments are addressed by number).
    let ahead = low_latency
        .and_then(|_| segments.last().copied())
        .map(|last| crate::store::StoredSegment {
            seq: last.seq + 1,
            start: last.start + last.duration as i64,
            duration: secs_to_ticks(target_duration, last.timescale) as u64,
            parts: Vec::new(),
            discontinuity: false,
            ..last.clone()
        });
    segments.extend(ahead.as_ref());
    let Some(first) = segments.first() else {
        out.push_str("      </Representation>\n");
        return;
    };
    // A static (ended) presentation starts at its first segment; a live one at
    // availabilityStartTime, which is media time zero.
    let pto = if ended {
        format!(" presentationTimeOffset=\"{}\"", first.start)
    } else {
        String::new()
    };
    // A segment may be requested one chunk after it starts (its nominal end minus this).
    let ato = low_latency.map_or(String::new(), |ll| {
        format!(
            " availabilityTimeOffset=\"{:.3}\" availabilityTimeComplete=\"false\"",
            (target_duration - ll.chunk).max(0.0)
        )
    });
    let _ = writeln!(
        out,
        "        <SegmentTemplate timescale=\"{}\"{pto} initialization=\"{}/{}\" media=\"{}\" startNumber=\"{}\"{ato}>",
        first.timescale,
        t.prefix,
        ObjectName::Init(first.init_version).file(Container::Cmaf),
        segment_template(&t.prefix),
        first.seq
    );
    out.push_str("          <SegmentTimeline>\n");
    // Runs of equal durations collapse into one S@r, as the spec intends.
    let mut run: Option<(i64, u64, u32)> = None;
    let flush = |out: &mut String, run: Option<(i64, u64, u32)>| {
        if let Some((start, d, r)) = run {
            if r > 0 {
                let _ = writeln!(out, "            <S t=\"{start}\" d=\"{d}\" r=\"{r}\"/>");
            } else {
                let _ = writeln!(out, "            <S t=\"{start}\" d=\"{d}\"/>");
            }
        }
    };
    for s in segments {
        run = match run {
            Some((start, d, r))
                if d == s.duration && start + (i64::from(r) + 1) * d as i64 == s.start =>
            {
                Some((start, d, r + 1))
            }
            other => {
                flush(out, other);
                Some((s.start, s.duration, 0))
            }
        };
    }
    flush(out, run);
    out.push_str(
        "          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n",
    );
}

/// Frame rate as DASH writes it: an integer or a ratio like `30000/1001`.
fn frame_rate(f: f64) -> String {
    if (f - f.round()).abs() < 1e-3 {
        format!("{}", f.round() as u64)
    } else {
        format!("{}/1001", (f * 1001.0).round() as u64)
    }
}

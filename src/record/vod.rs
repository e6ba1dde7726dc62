//! A recording as VOD: HLS playlists (EXT-X-PLAYLIST-TYPE:VOD with EXT-X-ENDLIST once the
//! recording ended, EVENT while it grows) and a static DASH MPD, whose URLs name the
//! segments by file and position: `{label}/{track}/init-{n}.mp4`, `{label}/{track}/{n}-{i}.m4s`.
//! Each file is one timeline: a new one (codec change, reconnect) is an HLS discontinuity
//! and a new DASH Period.

use std::fmt::Write as _;

use serde::Serialize;

use super::index::{FileIndex, Recording, RenditionIndex, TrackIndex};
use crate::media::{secs_to_ticks, TrackKind};
use crate::playlist::hls::{master_playlist, AudioRendition, Variant, VERSION};
use crate::urls::{ObjectPath, TrackObject, VodFile, VodObject};

/// `/api/recordings` entry.
#[derive(Debug, Serialize)]
pub struct RecordingInfo {
    /// RTMP application.
    pub app: String,
    /// Ladder base name.
    pub name: String,
    /// Start (UTC, the URL path segment).
    pub start: String,
    /// Start, ISO 8601.
    pub started: String,
    /// True once closed.
    pub ended: bool,
    /// `stopped` or `interrupted`, once closed.
    pub how: Option<String>,
    /// Seconds of media.
    pub duration: f64,
    /// Rendition labels.
    pub renditions: Vec<String>,
    /// URL path of the HLS playlist.
    pub hls: String,
    /// URL path of the DASH MPD.
    pub dash: String,
}

/// Describes a recording for the API.
pub fn info(rec: &Recording) -> RecordingInfo {
    let s = &rec.session;
    let path = |file| {
        ObjectPath::Vod {
            app: s.app.clone(),
            name: s.name.clone(),
            start: s.start.clone(),
            file,
        }
        .to_string()
    };
    RecordingInfo {
        app: s.app.clone(),
        name: s.name.clone(),
        start: s.start.clone(),
        started: s.started.clone(),
        ended: rec.ended.is_some(),
        how: rec.ended.as_ref().map(|e| e.how.clone()),
        duration: (rec.duration_secs() * 1000.0).round() / 1000.0,
        renditions: rec.renditions.iter().map(|r| r.label.clone()).collect(),
        hls: path(VodFile::Master),
        dash: path(VodFile::Mpd),
    }
}

/// The HLS master playlist: a variant per rendition with video, the first rendition's
/// audio as the audio group.
pub fn master(rec: &Recording) -> String {
    let audio = rec
        .renditions
        .iter()
        .find_map(|r| r.track(TrackKind::Audio).map(|t| (r, t)));
    let audio_rendition = audio.map(|(r, t)| AudioRendition {
        uri: playlist(r, TrackKind::Audio),
        channels: first_file(t).and_then(|f| f.meta.channels).unwrap_or(2),
        name: "audio".to_string(),
        language: None,
    });
    let audio_codec = audio
        .and_then(|(_, t)| first_file(t))
        .map(|f| f.meta.codecs.clone());
    let audio_rate = audio.map_or(0, |(_, t)| t.peak_bitrate());
    let mut variants: Vec<Variant> = rec
        .renditions
        .iter()
        .filter_map(|r| {
            let video = r.track(TrackKind::Video)?;
            let meta = &first_file(video)?.meta;
            let codecs = [Some(meta.codecs.clone()), audio_codec.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(",");
            let bandwidth = video.peak_bitrate() + audio_rate;
            Some(Variant {
                uri: playlist(r, TrackKind::Video),
                bandwidth,
                average_bandwidth: average(video) + audio.map_or(0, |(_, t)| average(t)),
                codecs,
                resolution: meta.resolution,
                frame_rate: meta.frame_rate,
            })
        })
        .collect();
    if variants.is_empty() {
        // Audio only: the audio playlist is the one variant.
        if let (Some((r, t)), Some(codecs)) = (audio, audio_codec) {
            variants.push(Variant {
                uri: playlist(r, TrackKind::Audio),
                bandwidth: audio_rate,
                average_bandwidth: average(t),
                codecs,
                resolution: None,
                frame_rate: None,
            });
            return master_playlist(&variants, &[]);
        }
    }
    master_playlist(&variants, audio_rendition.as_slice())
}

/// The URI of a track's media playlist, relative to the master playlist.
fn playlist(r: &RenditionIndex, kind: TrackKind) -> String {
    let label = r.label.clone();
    VodFile::Playlist { label, kind }.to_string()
}

fn first_file(t: &TrackIndex) -> Option<&FileIndex> {
    t.files.first()
}

fn average(t: &TrackIndex) -> u64 {
    let bytes: u64 = t
        .files
        .iter()
        .flat_map(|f| &f.segments)
        .map(|s| s.size)
        .sum();
    let secs = t.duration_secs();
    if secs > 0.0 {
        (bytes as f64 * 8.0 / secs).ceil() as u64
    } else {
        0
    }
}

/// The media playlist of one track.
pub fn media(rec: &Recording, track: &TrackIndex) -> String {
    let target = track
        .files
        .iter()
        .flat_map(|f| {
            let scale = f64::from(f.meta.timescale.max(1));
            f.segments.iter().map(move |s| s.duration as f64 / scale)
        })
        .fold(1.0, f64::max)
        .round() as u64;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        if rec.ended.is_some() { "VOD" } else { "EVENT" }
    );
    let kind = track.kind;
    for (n, f) in track.files.iter().enumerate() {
        if n > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let init = TrackObject(kind, VodObject::Init(n));
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{init}\"");
        let scale = f64::from(f.meta.timescale.max(1));
        for (i, s) in f.segments.iter().enumerate() {
            let _ = write!(
                out,
                "#EXTINF:{:.5},\n{}\n",
                s.duration as f64 / scale,
                TrackObject(kind, VodObject::Segment(n, i))
            );
        }
    }
    if rec.ended.is_some() {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

fn secs(s: f64) -> String {
    format!("PT{:.3}S", s.max(0.0))
}

/// The static MPD (dynamic, without a live edge, would be wrong for a file): one Period
/// per file number, an AdaptationSet per track kind, a Representation per rendition.
pub fn mpd(rec: &Recording) -> String {
    let periods = rec
        .renditions
        .iter()
        .flat_map(|r| r.tracks.iter())
        .map(|t| t.files.len())
        .max()
        .unwrap_or(0);
    let mut body = String::with_capacity(4096);
    let mut at = 0.0;
    for n in 0..periods {
        let files: Vec<(&str, TrackKind, &FileIndex)> = rec
            .renditions
            .iter()
            .flat_map(|r| {
                r.tracks
                    .iter()
                    .filter_map(move |t| Some((r.label.as_str(), t.kind, t.files.get(n)?)))
            })
            .collect();
        // One presentation time offset for the whole period, in seconds: tracks keep their
        // relative timing (audio and video stay in sync).
        let origin = files
            .iter()
            .filter_map(|(_, _, f)| {
                let first = f.segments.first()?;
                Some(first.start as f64 / f64::from(f.meta.timescale.max(1)))
            })
            .fold(f64::INFINITY, f64::min);
        let length = files
            .iter()
            .filter_map(|(_, _, f)| {
                let last = f.segments.last()?;
                let scale = f64::from(f.meta.timescale.max(1));
                Some((last.start as f64 + last.duration as f64) / scale - origin)
            })
            .fold(0.0, f64::max);
        let _ = writeln!(
            body,
            "  <Period id=\"p{n}\" start=\"{}\" duration=\"{}\">",
            secs(at),
            secs(length)
        );
        for track in super::index::KINDS {
            let kind = track.as_str();
            let reps: Vec<_> = files.iter().filter(|(_, k, _)| *k == track).collect();
            if reps.is_empty() {
                continue;
            }
            let _ = writeln!(
                body,
                "    <AdaptationSet contentType=\"{kind}\" mimeType=\"{kind}/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">"
            );
            for (label, _, f) in reps {
                let scale = f.meta.timescale.max(1);
                let bandwidth = f
                    .segments
                    .iter()
                    .filter(|s| s.duration > 0)
                    .map(|s| s.size as f64 * 8.0 * f64::from(scale) / s.duration as f64)
                    .fold(1.0, f64::max)
                    .ceil() as u64;
                let _ = write!(
                    body,
                    "      <Representation id=\"{label}-{kind}\" codecs=\"{}\" bandwidth=\"{bandwidth}\"",
                    f.meta.codecs
                );
                if let Some((w, h)) = f.meta.resolution {
                    let _ = write!(body, " width=\"{w}\" height=\"{h}\"");
                }
                if let Some(rate) = f.meta.sample_rate {
                    let _ = write!(body, " audioSamplingRate=\"{rate}\"");
                }
                body.push_str(">\n");
                if let Some(ch) = f.meta.channels {
                    let _ = writeln!(body, "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>");
                }
                let pto = secs_to_ticks(origin, scale);
                let init = VodFile::Object {
                    label: label.to_string(),
                    kind: track,
                    object: VodObject::Init(n),
                };
                let media = VodFile::segment_template(label, track, n);
                let _ = writeln!(
                    body,
                    "        <SegmentTemplate timescale=\"{scale}\" presentationTimeOffset=\"{pto}\" startNumber=\"0\" initialization=\"{init}\" media=\"{media}\">\n          <SegmentTimeline>"
                );
                for s in &f.segments {
                    let _ = writeln!(
                        body,
                        "            <S t=\"{}\" d=\"{}\"/>",
                        s.start, s.duration
                    );
                }
                body.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n");
            }
            body.push_str("    </AdaptationSet>\n");
        }
        body.push_str("  </Period>\n");
        at += length;
    }
    let mut out = String::with_capacity(body.len() + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT2S\">",
        secs(at)
    );
    out.push_str(&body);
    out.push_str("</MPD>\n");
    out
}

/// The byte range of `object` in the file it is in: (path, offset, length).
pub fn locate(object: VodObject, track: &TrackIndex) -> Option<(&std::path::Path, u64, u64)> {
    match object {
        VodObject::Init(n) => {
            let f = track.files.get(n)?;
            Some((&f.path, 0, f.init))
        }
        VodObject::Segment(n, i) => {
            let f = track.files.get(n)?;
            let s = f.segments.get(i)?;
            Some((&f.path, s.offset, s.size))
        }
    }
}

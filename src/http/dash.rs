//! `/{app}/{base}/index.mpd`: the live DASH manifest over the very CMAF segments the HLS
//! playlists list, made from one snapshot per rendition (no lock held while rendering) and
//! shared by every request for the same state of the ladder.

use std::time::SystemTime;

use bytes::Bytes;
use warp::http::StatusCode;

use super::encoding::text;
use super::lifetimes;
use super::request::Headers;
use super::response::error;
use super::snapshot::{
    alternate_audio, cmaf_ready, listed, not_found, wait_until, LadderKey, Snapshot,
};
use crate::hub::rendition::TrackOutput;
use crate::hub::{Hub, Ladder};
use crate::media::TrackKind;
use crate::playlist::dash::{self, DashTrack, LowLatencyDash, Manifest};
use crate::urls::{Feed, FeedDir, LadderFile, ObjectPath};

/// Content type of an MPD.
const MPD: &str = "application/dash+xml";

/// Answers the MPD of ladder `app/base`.
pub async fn manifest(hub: &Hub, app: &str, base: &str, req: &Headers) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    if !wait_until(hub, &ladder, || !listed(&ladder, cmaf_ready).is_empty()).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stream {app}/{base} has no segment yet"),
        );
    }
    let renditions = listed(&ladder, cmaf_ready);
    let alternates = alternate_audio(&ladder);
    let all: Vec<Snapshot> = renditions.iter().chain(&alternates).cloned().collect();
    let key = LadderKey::new(LadderFile::Mpd, &all);
    let body = ladder.renderings.get_or_render(key, |_| {
        Bytes::from(dash::mpd(&manifest_of(
            hub,
            &ladder,
            &renditions,
            &alternates,
        )))
    });
    text(&body, MPD, lifetimes::manifest(hub.config()), req)
}

/// The MPD of the listed renditions' and alternative audio renditions' snapshots, as
/// viewers get it (the bucket output renders it without the low-latency signalling).
pub fn manifest_of<'a>(
    hub: &Hub,
    ladder: &Ladder,
    renditions: &'a [Snapshot],
    alternates: &'a [Snapshot],
) -> Manifest<'a> {
    let mut video = Vec::new();
    let mut audio = Vec::new();
    // One audio Representation for the ladder, from the same rendition as the HLS ladder
    // audio playlist.
    let with_audio: Vec<&str> = renditions
        .iter()
        .filter(|(_, s)| s.audio.is_some())
        .map(|(r, _)| r.label.as_str())
        .collect();
    let audio_source = ladder.audio_source(&with_audio);
    for (r, state) in renditions {
        let label = r.label.as_str();
        if let Some(t) = state.video.as_ref() {
            video.push(DashTrack {
                id: format!("{label}-video"),
                prefix: rendition_dir(label, TrackKind::Video).to_string(),
                window: &t.window,
                kind: TrackKind::Video,
                codecs: t.config.codec_string(),
                bandwidth: t.window.bitrates().0,
                resolution: t.config.resolution(),
                frame_rate: t.config.frame_rate(),
                sample_rate: None,
                channels: None,
            });
        }
        if let (Some(t), true) = (state.audio.as_ref(), audio_source == Some(label)) {
            // The ladder-level path, as in HLS: stable when the source changes.
            let dir = FeedDir::LadderAudio.to_string();
            audio.extend(audio_track("audio".to_string(), dir, t));
        }
    }
    // Multitrack audio tracks 1..: one AdaptationSet each, after the ladder's audio.
    for (r, state) in alternates {
        if let Some(t) = state.audio.as_ref() {
            let dir = rendition_dir(&r.label, TrackKind::Audio).to_string();
            audio.extend(audio_track(r.label.clone(), dir, t));
        }
    }
    let ended = renditions.iter().all(|(_, s)| s.ended);
    let aligned = renditions.iter().all(|(_, s)| s.misalignment_ms == 0.0);
    let origin = renditions
        .iter()
        .find_map(|(_, s)| s.timeline_origin)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Manifest {
        availability_start: origin,
        // When this content was made: requests sharing the rendering share the time.
        publish_time: SystemTime::now(),
        ended,
        target_duration: hub.config().segment.target_duration,
        video,
        audio,
        utc_timing_url: ObjectPath::Time.to_string(),
        aligned,
        low_latency: hub
            .config()
            .low_latency
            .part_target()
            .map(|chunk| LowLatencyDash {
                chunk: chunk.as_secs_f64(),
                target_latency: hub.config().low_latency.dash_target_latency,
            }),
    }
}

/// Where rendition `label`'s CMAF track `kind` is.
fn rendition_dir(label: &str, kind: TrackKind) -> FeedDir {
    FeedDir::Rendition {
        label: label.to_string(),
        feed: Feed::Cmaf(kind),
    }
}

/// The Representation of audio track `t`, once its format is known.
fn audio_track(id: String, prefix: String, t: &TrackOutput) -> Option<DashTrack<'_>> {
    let (rate, channels) = t.config.audio_format()?;
    Some(DashTrack {
        id,
        prefix,
        window: &t.window,
        kind: TrackKind::Audio,
        codecs: t.config.codec_string(),
        bandwidth: t.window.bitrates().0,
        resolution: None,
        frame_rate: None,
        sample_rate: Some(rate),
        channels: Some(channels),
    })
}

//! Media routes under `/{app}/{base}/`: master playlist, media playlists, init segments
//! and segments, all read straight from the hub's in-memory windows.

use std::sync::Arc;
use std::time::Duration;

use warp::http::StatusCode;

use super::response::{error, ok, Caching, M3U8};
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::media::{CodecConfig, TrackKind};
use crate::playlist::hls::{self, AudioRendition, Variant};

/// Answers one media path (already split into segments), or `None` if the path is not a
/// media path at all.
pub async fn handle(hub: Arc<Hub>, parts: Vec<String>) -> Option<warp::reply::Response> {
    let [app, base, rest @ ..] = parts.as_slice() else {
        return None;
    };
    let reply = match rest {
        [file] if file == "index.m3u8" => master(&hub, app, base).await,
        [label, file] => match track_of(file, ".m3u8") {
            Some(kind) => media_playlist(&hub, app, base, label, kind).await,
            None => error(StatusCode::NOT_FOUND, format!("no such object: {file}")),
        },
        [label, track, file] => object(&hub, app, base, label, track, file),
        _ => return None,
    };
    Some(reply)
}

fn track_of(name: &str, suffix: &str) -> Option<TrackKind> {
    match name.strip_suffix(suffix)? {
        "video" => Some(TrackKind::Video),
        "audio" => Some(TrackKind::Audio),
        _ => None,
    }
}

fn not_found(app: &str, base: &str) -> warp::reply::Response {
    error(
        StatusCode::NOT_FOUND,
        format!("stream {app}/{base} is not live"),
    )
}

/// Waits (bounded by `http.startup_wait`) until `ready` holds for the ladder: a player
/// that asks right after publish starts gets the first playlist as soon as it exists,
/// instead of a 404 it would have to retry.
async fn wait_until(hub: &Hub, ladder: &Ladder, ready: impl Fn() -> bool) -> bool {
    let mut updates = ladder.subscribe();
    let wait = Duration::from_secs_f64(hub.config().http.startup_wait);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if ready() {
            return true;
        }
        match tokio::time::timeout_at(deadline, updates.changed()).await {
            Ok(Ok(())) => {}
            _ => return ready(),
        }
    }
}

/// The renditions a master playlist lists: the live, ready ones; once all have ended,
/// the ended ones (so the tail of the show still plays until it is removed).
fn listed(ladder: &Ladder) -> Vec<Arc<Rendition>> {
    let ready: Vec<_> = ladder
        .renditions()
        .into_iter()
        .filter(|r| r.read().ready())
        .collect();
    let live: Vec<_> = ready.iter().filter(|r| !r.read().ended).cloned().collect();
    if live.is_empty() {
        ready
    } else {
        live
    }
}

async fn master(hub: &Hub, app: &str, base: &str) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    if !wait_until(hub, &ladder, || !listed(&ladder).is_empty()).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stream {app}/{base} has no segment yet"),
        );
    }
    let renditions = listed(&ladder);
    // One audio rendition serves the whole ladder: the first listed one that has audio.
    let audio = renditions.iter().find_map(|r| {
        let state = r.read();
        let track = state.audio.as_ref()?;
        let CodecConfig::Aac(aac) = &track.config else {
            return None;
        };
        Some((
            AudioRendition {
                uri: format!("{}/audio.m3u8", r.label),
                channels: aac.channels,
            },
            track.config.codec_string(),
            track.window.bitrates(),
        ))
    });
    let variants: Vec<Variant> = renditions
        .iter()
        .filter_map(|r| {
            variant(
                r,
                &r.read(),
                audio.as_ref().map(|(_, c, b)| (c.as_str(), *b)),
            )
        })
        .collect();
    let text = hls::master_playlist(&variants, audio.as_ref().map(|(a, _, _)| a));
    ok(text, M3U8, Caching::Live)
}

fn variant(
    r: &Rendition,
    state: &RenditionState,
    audio: Option<(&str, (u64, u64))>,
) -> Option<Variant> {
    let Some(video) = state.video.as_ref() else {
        // An audio-only rendition is a variant on its own.
        let a = state.audio.as_ref()?;
        let (peak, avg) = a.window.bitrates();
        return Some(Variant {
            uri: format!("{}/audio.m3u8", r.label),
            bandwidth: peak,
            average_bandwidth: avg,
            codecs: a.config.codec_string(),
            resolution: None,
            frame_rate: None,
        });
    };
    let CodecConfig::H264(avc) = &video.config else {
        return None;
    };
    let (mut peak, mut avg) = video.window.bitrates();
    let mut codecs = video.config.codec_string();
    if let Some((audio_codec, (apeak, aavg))) = audio {
        peak += apeak;
        avg += aavg;
        codecs = format!("{codecs},{audio_codec}");
    }
    Some(Variant {
        uri: format!("{}/video.m3u8", r.label),
        bandwidth: peak,
        average_bandwidth: avg,
        codecs,
        resolution: Some((avc.width, avc.height)),
        frame_rate: avc.frame_rate,
    })
}

async fn media_playlist(
    hub: &Hub,
    app: &str,
    base: &str,
    label: &str,
    kind: TrackKind,
) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    let Some(rendition) = ladder.rendition(label) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("stream {app}/{base} has no rendition {label}"),
        );
    };
    let has_segment = || {
        let state = rendition.read();
        state.track(kind).is_some_and(|t| !t.window.is_empty())
    };
    if !wait_until(hub, &ladder, has_segment).await {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "stream {app}/{base}/{label} has no {} segment",
                kind.as_str()
            ),
        );
    }
    let state = rendition.read();
    let Some(track) = state.track(kind) else {
        return error(StatusCode::NOT_FOUND, "track vanished");
    };
    let target = hls::target_duration(hub.config().segment.target_duration, &track.window);
    // Audio and video playlists of a rendition share one target duration, as players
    // expect when switching between them.
    let target = [state.video.as_ref(), state.audio.as_ref()]
        .into_iter()
        .flatten()
        .map(|t| hls::target_duration(hub.config().segment.target_duration, &t.window))
        .fold(target, u64::max);
    let text = hls::media_playlist(&track.window, kind.as_str(), target, state.ended);
    ok(text, M3U8, Caching::Live)
}

fn object(
    hub: &Hub,
    app: &str,
    base: &str,
    label: &str,
    track: &str,
    file: &str,
) -> warp::reply::Response {
    let Some(kind) = track_of(track, "") else {
        return error(StatusCode::NOT_FOUND, format!("no such track: {track}"));
    };
    let Some(rendition) = hub.ladder(app, base).and_then(|l| l.rendition(label)) else {
        return not_found(app, base);
    };
    let state = rendition.read();
    let Some(window) = state.track(kind).map(|t| &t.window) else {
        return error(StatusCode::NOT_FOUND, format!("no {track} track"));
    };
    let content_type = match kind {
        TrackKind::Video => "video/mp4",
        TrackKind::Audio => "audio/mp4",
    };
    let number = |prefix: &str, suffix: &str| -> Option<u64> {
        file.strip_prefix(prefix)?
            .strip_suffix(suffix)?
            .parse()
            .ok()
    };
    if let Some(version) = number("init-", ".mp4") {
        return match window.init(version) {
            Some(b) => ok(b.clone(), content_type, Caching::Immutable),
            None => error(StatusCode::NOT_FOUND, format!("no init segment {version}")),
        };
    }
    if let Some(seq) = number("", ".m4s") {
        return match window.get(seq) {
            Some(s) => ok(s.data.clone(), content_type, Caching::Immutable),
            None => error(
                StatusCode::NOT_FOUND,
                format!("segment {seq} is not (or no longer) available"),
            ),
        };
    }
    error(StatusCode::NOT_FOUND, format!("no such object: {file}"))
}

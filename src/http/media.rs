//! Media routes under `/{app}/{base}/`: master playlists, media playlists, init segments
//! and segments, all read straight from the hub's in-memory windows.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use warp::http::StatusCode;

use super::response::{error, ok, Caching, M3U8};
use crate::hub::renderings::RenderKey;
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::media::{CodecConfig, TrackKind};
use crate::playlist::hls::{self, AudioRendition, Variant};
use crate::playlist::media::Container;
use crate::store::TrackWindow;

/// One sequence of segments a rendition publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// A demuxed CMAF track.
    Cmaf(TrackKind),
    /// Muxed MPEG-TS.
    Ts,
}

impl Feed {
    /// The feed named by a URL path segment (`video`, `audio`, `ts`).
    pub fn parse(name: &str) -> Option<Feed> {
        match name {
            "video" => Some(Feed::Cmaf(TrackKind::Video)),
            "audio" => Some(Feed::Cmaf(TrackKind::Audio)),
            "ts" => Some(Feed::Ts),
            _ => None,
        }
    }

    /// The URL path segment naming the feed.
    pub fn name(self) -> &'static str {
        match self {
            Feed::Cmaf(k) => k.as_str(),
            Feed::Ts => "ts",
        }
    }

    /// The feed's window in a rendition, if it has segments there.
    pub fn window(self, state: &RenditionState) -> Option<&TrackWindow> {
        match self {
            Feed::Cmaf(kind) => state.track(kind).map(|t| &t.window),
            Feed::Ts => state.ts.as_ref(),
        }
    }

    /// Whether the feed's output is configured on.
    pub fn enabled(self, hub: &Hub) -> bool {
        let o = &hub.config().outputs;
        match self {
            Feed::Cmaf(_) => o.cmaf(),
            Feed::Ts => o.hls_ts,
        }
    }
}

/// Answers one media path (already split into segments), or `None` if the path is not a
/// media path at all.
pub async fn handle(
    hub: Arc<Hub>,
    parts: Vec<String>,
    query: &str,
) -> Option<warp::reply::Response> {
    let [app, base, rest @ ..] = parts.as_slice() else {
        return None;
    };
    let outputs = &hub.config().outputs;
    let reply = match rest {
        [file] if file == "index.m3u8" && outputs.hls_cmaf => {
            master(&hub, app, base, Container::Cmaf).await
        }
        [file] if file == "ts.m3u8" && outputs.hls_ts => {
            master(&hub, app, base, Container::Ts).await
        }
        [file] if file == "index.mpd" && outputs.dash => {
            super::dash::manifest(&hub, app, base).await
        }
        [file] if file == "audio.m3u8" && outputs.hls_cmaf => {
            super::playlist::ladder_audio(&hub, app, base, query).await
        }
        [file] if matches!(file.as_str(), "index.m3u8" | "ts.m3u8" | "index.mpd") => error(
            StatusCode::NOT_FOUND,
            format!("{file}: that output is disabled in [outputs]"),
        ),
        [audio, file] if audio == "audio" && outputs.hls_cmaf && !file.ends_with(".m3u8") => {
            super::objects::ladder_audio(&hub, app, base, file).await
        }
        [label, file] => match file.strip_suffix(".m3u8").and_then(Feed::parse) {
            Some(feed) if feed.enabled(&hub) => {
                super::playlist::media_playlist(&hub, app, base, label, feed, query).await
            }
            _ => error(StatusCode::NOT_FOUND, format!("no such playlist: {file}")),
        },
        [label, feed, file] => super::objects::object(&hub, app, base, label, feed, file).await,
        _ => return None,
    };
    Some(reply)
}

/// A 404 that says the stream is not live.
pub fn not_found(app: &str, base: &str) -> warp::reply::Response {
    error(
        StatusCode::NOT_FOUND,
        format!("stream {app}/{base} is not live"),
    )
}

/// Waits (bounded by `http.startup_wait`) until `ready` holds for the ladder: a player
/// that asks right after publish starts gets the first playlist as soon as it exists,
/// instead of a 404 it would have to retry.
pub async fn wait_until(hub: &Hub, ladder: &Ladder, ready: impl Fn() -> bool) -> bool {
    let wait = Duration::from_secs_f64(hub.config().http.startup_wait);
    super::blocking::wait_for(hub.drain(), ladder.subscribe(), wait, ready).await
}

/// A rendition with the snapshot of its state a response is made from.
pub type Snapshot = (Arc<Rendition>, Arc<RenditionState>);

/// The renditions a manifest lists, each with one snapshot of its state (taken one at a
/// time): the ready ones being published; when none is, all the ready ones (so a show
/// waiting for its encoder, or its tail, still plays).
pub fn listed(ladder: &Ladder, feed_ready: impl Fn(&RenditionState) -> bool) -> Vec<Snapshot> {
    let ready: Vec<Snapshot> = ladder
        .renditions()
        .into_iter()
        .map(|r| {
            let state = r.read();
            (r, state)
        })
        .filter(|(_, s)| feed_ready(s))
        .collect();
    if !ready.iter().any(|(_, s)| s.publishing()) {
        return ready;
    }
    ready.into_iter().filter(|(_, s)| s.publishing()).collect()
}

/// What a ladder-level rendering (master playlist, MPD) depends on: the resource and,
/// per listed rendition, its label and the state of its tracks.
#[derive(Debug, PartialEq)]
pub struct LadderKey {
    resource: &'static str,
    renditions: Vec<RenditionKey>,
}

#[derive(Debug, PartialEq)]
struct RenditionKey {
    label: String,
    /// Window revisions of video, audio and TS: they change with every stored part,
    /// segment or init segment (so with codec and bitrate changes too).
    revisions: [Option<u64>; 3],
    ended: bool,
    publishing: bool,
    misalignment_ms: u64,
    origin: Option<SystemTime>,
}

impl LadderKey {
    /// The key of `resource` rendered from `listed`.
    pub fn new(resource: &'static str, listed: &[Snapshot]) -> Self {
        let renditions = listed
            .iter()
            .map(|(r, s)| RenditionKey {
                label: r.label.clone(),
                revisions: [
                    s.video.as_ref().map(|t| t.window.revision()),
                    s.audio.as_ref().map(|t| t.window.revision()),
                    s.ts.as_ref().map(|w| w.revision()),
                ],
                ended: s.ended,
                publishing: s.publishing(),
                misalignment_ms: s.misalignment_ms.to_bits(),
                origin: s.timeline_origin,
            })
            .collect();
        LadderKey {
            resource,
            renditions,
        }
    }
}

impl RenderKey for LadderKey {
    fn same_slot(&self, other: &Self) -> bool {
        self.resource == other.resource
    }
}

/// True once a player can start on the CMAF tracks: every known track has a segment.
pub fn cmaf_ready(state: &RenditionState) -> bool {
    state.ready()
}

fn ts_ready(state: &RenditionState) -> bool {
    state.ts.as_ref().is_some_and(|w| !w.is_empty())
}

async fn master(hub: &Hub, app: &str, base: &str, container: Container) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    let ready = match container {
        Container::Cmaf => cmaf_ready,
        Container::Ts => ts_ready,
    };
    if !wait_until(hub, &ladder, || !listed(&ladder, ready).is_empty()).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stream {app}/{base} has no segment yet"),
        );
    }
    let renditions = listed(&ladder, ready);
    let resource = match container {
        Container::Cmaf => "index.m3u8",
        Container::Ts => "ts.m3u8",
    };
    let key = LadderKey::new(resource, &renditions);
    let body = ladder
        .renderings
        .get_or_render(key, |_| master_text(&renditions, container));
    ok(body, M3U8, Caching::Live)
}

fn master_text(renditions: &[Snapshot], container: Container) -> Bytes {
    // One audio rendition serves the whole CMAF ladder: the first listed one with audio.
    // TS variants carry their own audio, muxed.
    let audio = match container {
        Container::Cmaf => renditions.iter().find_map(|(_, s)| shared_audio(s)),
        Container::Ts => None,
    };
    let variants: Vec<Variant> = renditions
        .iter()
        .filter_map(|(r, s)| {
            variant(
                r,
                s,
                container,
                audio.as_ref().map(|(_, c, b)| (c.as_str(), *b)),
            )
        })
        .collect();
    Bytes::from(hls::master_playlist(
        &variants,
        audio.as_ref().map(|(a, _, _)| a),
    ))
}

fn shared_audio(state: &RenditionState) -> Option<(AudioRendition, String, (u64, u64))> {
    let track = state.audio.as_ref()?;
    let (_, channels) = track.config.audio_format()?;
    // The ladder-level playlist, so audio survives the leaving of the rendition it came from.
    let rendition = AudioRendition {
        uri: "audio.m3u8".to_string(),
        channels,
    };
    Some((
        rendition,
        track.config.codec_string(),
        track.window.bitrates(),
    ))
}

fn variant(
    r: &Rendition,
    state: &RenditionState,
    container: Container,
    audio: Option<(&str, (u64, u64))>,
) -> Option<Variant> {
    let video_codec = state.video.as_ref().map(|v| v.config.codec_string());
    let own_audio = state.audio.as_ref().map(|a| a.config.codec_string());
    let video_config = state.video.as_ref().map(|t| &t.config);
    let (uri, (mut peak, mut avg), codecs) = match container {
        Container::Ts => {
            let codecs = [video_codec, own_audio]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(",");
            (
                format!("{}/ts.m3u8", r.label),
                state.ts.as_ref()?.bitrates(),
                codecs,
            )
        }
        Container::Cmaf => match (state.video.as_ref(), state.audio.as_ref()) {
            (Some(v), _) => {
                let codecs = [video_codec, audio.map(|(c, _)| c.to_string())]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    format!("{}/video.m3u8", r.label),
                    v.window.bitrates(),
                    codecs,
                )
            }
            // An audio-only rendition is a variant on its own.
            (None, Some(a)) => (
                format!("{}/audio.m3u8", r.label),
                a.window.bitrates(),
                own_audio.unwrap_or_default(),
            ),
            (None, None) => return None,
        },
    };
    if let (Container::Cmaf, Some(_), Some((_, (apeak, aavg)))) =
        (container, state.video.as_ref(), audio)
    {
        peak += apeak;
        avg += aavg;
    }
    Some(Variant {
        uri,
        bandwidth: peak,
        average_bandwidth: avg,
        codecs,
        resolution: video_config.and_then(CodecConfig::resolution),
        frame_rate: video_config.and_then(CodecConfig::frame_rate),
    })
}

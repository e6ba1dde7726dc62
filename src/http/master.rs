//! `/{app}/{base}/index.m3u8` and `ts.m3u8`: the HLS master playlists of a ladder, made
//! from one snapshot per listed rendition and shared by every request for the same state.

use bytes::Bytes;
use warp::http::StatusCode;

use super::encoding::text;
use super::lifetimes;
use super::request::Headers;
use super::response::{error, M3U8};
use super::snapshot::{
    alternate_audio, cmaf_ready, listed, not_found, ts_ready, wait_until, LadderKey, Snapshot,
};
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Rendition};
use crate::media::{CodecConfig, TrackKind};
use crate::playlist::hls::{self, AudioRendition, Variant};
use crate::urls::{Container, Feed, FeedDir, LadderFile};

/// Answers the master playlist of ladder `app/base` listing its `container` feeds.
pub async fn master(
    hub: &Hub,
    app: &str,
    base: &str,
    container: Container,
    req: &Headers,
) -> warp::reply::Response {
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
    // TS variants carry their own audio, muxed.
    let alternates = match container {
        Container::Cmaf => alternate_audio(&ladder),
        Container::Ts => Vec::new(),
    };
    let all: Vec<Snapshot> = renditions.iter().chain(&alternates).cloned().collect();
    let key = LadderKey::new(LadderFile::Master(container), &all);
    let body = ladder
        .renderings
        .get_or_render(key, |_| master_text(&renditions, &alternates, container));
    text(&body, M3U8, lifetimes::manifest(hub.config()), req)
}

/// The master playlist listing `renditions` (and, for CMAF, the alternative audio
/// `alternates`) with their `container` feeds, from those snapshots alone.
pub fn master_text(
    renditions: &[Snapshot],
    alternates: &[Snapshot],
    container: Container,
) -> Bytes {
    // One audio rendition serves the whole CMAF ladder: the first listed one with audio,
    // through the ladder-level playlist (so audio survives the leaving of the rendition it
    // came from); multitrack audio tracks 1.. are alternatives to it.
    let shared = match container {
        Container::Cmaf => renditions
            .iter()
            .find_map(|(_, s)| audio_rendition(s, playlist(FeedDir::LadderAudio), "audio".into())),
        Container::Ts => None,
    };
    let alternates = alternates.iter().filter_map(|(r, s)| {
        let track = r.audio_track.unwrap_or_default();
        let dir = rendition_dir(r, Feed::Cmaf(TrackKind::Audio));
        audio_rendition(s, playlist(dir), format!("audio {track}"))
    });
    let audio: Vec<_> = shared.into_iter().chain(alternates).collect();
    let group = audio_group(&audio);
    let variants: Vec<Variant> = renditions
        .iter()
        .filter_map(|(r, s)| variant(r, s, container, group.as_ref()))
        .collect();
    let audio: Vec<AudioRendition> = audio.into_iter().map(|(a, _, _)| a).collect();
    Bytes::from(hls::master_playlist(&variants, &audio))
}

/// An audio rendition of the group, with its codec string and bitrates.
type GroupAudio = (AudioRendition, String, (u64, u64));

fn audio_rendition(state: &RenditionState, uri: String, name: String) -> Option<GroupAudio> {
    let track = state.audio.as_ref()?;
    let (_, channels) = track.config.audio_format()?;
    let rendition = AudioRendition {
        uri,
        channels,
        name,
        language: None,
    };
    Some((
        rendition,
        track.config.codec_string(),
        track.window.bitrates(),
    ))
}

/// What a variant adds for the audio group: every codec a player may have to decode in it,
/// and the bitrates of its most demanding rendition (RFC 8216bis: BANDWIDTH covers any
/// rendition the variant may be played with).
fn audio_group(audio: &[GroupAudio]) -> Option<(String, (u64, u64))> {
    let mut codecs: Vec<&str> = Vec::new();
    for (_, c, _) in audio {
        if !codecs.contains(&c.as_str()) {
            codecs.push(c);
        }
    }
    let peak = audio.iter().map(|(_, _, b)| b.0).max()?;
    let avg = audio.iter().map(|(_, _, b)| b.1).max()?;
    Some((codecs.join(","), (peak, avg)))
}

fn variant(
    r: &Rendition,
    state: &RenditionState,
    container: Container,
    audio: Option<&(String, (u64, u64))>,
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
                playlist(rendition_dir(r, Feed::Ts)),
                state.ts.as_ref()?.bitrates(),
                codecs,
            )
        }
        Container::Cmaf => match (state.video.as_ref(), state.audio.as_ref()) {
            (Some(v), _) => {
                let codecs = [video_codec, audio.map(|(c, _)| c.clone())]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    playlist(rendition_dir(r, Feed::Cmaf(TrackKind::Video))),
                    v.window.bitrates(),
                    codecs,
                )
            }
            // An audio-only rendition is a variant on its own.
            (None, Some(a)) => (
                playlist(rendition_dir(r, Feed::Cmaf(TrackKind::Audio))),
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

/// The directory of rendition `r`'s `feed`.
fn rendition_dir(r: &Rendition, feed: Feed) -> FeedDir {
    FeedDir::Rendition {
        label: r.label.clone(),
        feed,
    }
}

/// The URI of `dir`'s media playlist, relative to the master playlist.
fn playlist(dir: FeedDir) -> String {
    LadderFile::Playlist(dir).to_string()
}

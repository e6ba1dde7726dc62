//! Media playlists: per rendition and feed (`{label}/video.m3u8`, `audio`, `ts`) and the
//! ladder's shared audio playlist, with LL-HLS blocking reload and delta updates on the
//! CMAF feeds.

use std::sync::Arc;
use std::time::Duration;

use warp::http::StatusCode;

use super::blocking::{satisfied, too_far, wait_for, Directives};
use super::media::{cmaf_ready, listed, not_found, wait_until, Feed};
use super::response::{error, ok, Caching, M3U8};
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::media::TrackKind;
use crate::playlist::hls;
use crate::playlist::media::{
    last_position, Container, LowLatency, MediaPlaylist, RenditionReport,
};

/// `/{app}/{base}/audio.m3u8`: the ladder's one audio track, taken from the first listed
/// rendition that has audio. Renditions share numbers and timeline, so when that
/// publisher leaves, the next one's audio continues the same playlist.
pub async fn ladder_audio(hub: &Hub, app: &str, base: &str, query: &str) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    let has_audio = |s: &RenditionState| cmaf_ready(s) && s.audio.is_some();
    if !wait_until(hub, &ladder, || !listed(&ladder, has_audio).is_empty()).await {
        return error(
            StatusCode::NOT_FOUND,
            format!("stream {app}/{base} has no audio"),
        );
    }
    let Some(source) = listed(&ladder, has_audio).into_iter().next() else {
        return error(StatusCode::NOT_FOUND, "audio vanished");
    };
    // Ladder-level URIs (`audio/{seq}.m4s`): when the source rendition changes, segment N
    // keeps its URI, as players require of a live playlist.
    answer(
        hub,
        &ladder,
        &source,
        Feed::Cmaf(TrackKind::Audio),
        "audio",
        false,
        query,
    )
    .await
}

/// `/{app}/{base}/{label}/{feed}.m3u8`.
pub async fn media_playlist(
    hub: &Hub,
    app: &str,
    base: &str,
    label: &str,
    feed: Feed,
    query: &str,
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
        feed.window(&rendition.read())
            .is_some_and(|w| !w.is_empty())
    };
    if !wait_until(hub, &ladder, has_segment).await {
        return error(
            StatusCode::NOT_FOUND,
            format!("stream {app}/{base}/{label} has no {} segment", feed.name()),
        );
    }
    answer(hub, &ladder, &rendition, feed, feed.name(), true, query).await
}

/// The target duration all playlists of a rendition share, as players expect when
/// switching between them.
fn shared_target(hub: &Hub, state: &RenditionState) -> u64 {
    let configured = hub.config().segment.target_duration;
    [
        Feed::Cmaf(TrackKind::Video),
        Feed::Cmaf(TrackKind::Audio),
        Feed::Ts,
    ]
    .into_iter()
    .filter_map(|f| f.window(state))
    .map(|w| hls::target_duration(configured, w))
    .fold(1, u64::max)
}

/// Blocks as the directives ask (LL-HLS only), then writes the playlist.
async fn answer(
    hub: &Hub,
    ladder: &Ladder,
    rendition: &Rendition,
    feed: Feed,
    prefix: &str,
    with_reports: bool,
    query: &str,
) -> warp::reply::Response {
    let directives = match Directives::parse(query) {
        Ok(d) => d,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let ll = &hub.config().low_latency;
    let low_latency = ll.enabled && matches!(feed, Feed::Cmaf(_));
    if let (true, Some(msn)) = (low_latency, directives.msn) {
        let (far, target) = {
            let state = rendition.read();
            let far = feed.window(&state).is_some_and(|w| too_far(w, msn));
            (far, shared_target(hub, &state))
        };
        if far {
            return error(
                StatusCode::BAD_REQUEST,
                format!("_HLS_msn={msn} is more than two segments ahead of the playlist"),
            );
        }
        let ready = || {
            let state = rendition.read();
            state.ended
                || feed
                    .window(&state)
                    .is_some_and(|w| satisfied(w, msn, directives.part))
        };
        // RFC 8216bis 6.2.5.2: give up after three target durations.
        let limit = Duration::from_secs(3 * target);
        if !wait_for(ladder, limit, ready).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "segment {msn} part {:?} did not appear within {} s",
                    directives.part,
                    limit.as_secs()
                ),
            );
        }
    }
    let state = rendition.read();
    let Some(window) = feed.window(&state) else {
        return error(StatusCode::NOT_FOUND, "track vanished");
    };
    let reports = if low_latency && with_reports {
        reports(ladder, rendition, feed)
    } else {
        Vec::new()
    };
    let playlist = MediaPlaylist {
        window,
        prefix,
        container: match feed {
            Feed::Ts => Container::Ts,
            Feed::Cmaf(_) => Container::Cmaf,
        },
        target: shared_target(hub, &state),
        ended: state.ended,
        low_latency: low_latency.then_some(LowLatency {
            part_target: ll.part_target,
            skip: directives.skip,
            reports,
        }),
    };
    ok(playlist.render(), M3U8, Caching::Live)
}

/// EXT-X-RENDITION-REPORT for every other live rendition of the ladder with this feed.
fn reports(ladder: &Ladder, this: &Rendition, feed: Feed) -> Vec<RenditionReport> {
    ladder
        .renditions()
        .iter()
        .filter(|r| !std::ptr::eq(Arc::as_ptr(r), this))
        .filter_map(|r| {
            let state = r.read();
            if !state.publishing() {
                return None;
            }
            let (last_msn, last_part) = last_position(feed.window(&state)?)?;
            Some(RenditionReport {
                uri: format!("../{}/{}.m3u8", r.label, feed.name()),
                last_msn,
                last_part,
            })
        })
        .collect()
}

//! Media playlists: per rendition and feed (`{label}/video.m3u8`, `audio`, `ts`) and the
//! ladder's shared audio playlist, with LL-HLS blocking reload and delta updates on the
//! CMAF feeds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warp::http::StatusCode;

use super::blocking::{satisfied, too_far, wait_for, Directives};
use super::encoding::text;
use super::lifetimes;
use super::request::Headers;
use super::response::{error, Caching, M3U8};
use super::snapshot::{cmaf_ready, listed, not_found, wait_until, Snapshot};
use crate::hub::renderings::RenderKey;
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::media::TrackKind;
use crate::playlist::hls;
use crate::playlist::media::{last_position, LowLatency, MediaPlaylist, RenditionReport};
use crate::urls::{Feed, FeedDir, LadderFile};

/// `/{app}/{base}/audio.m3u8`: the ladder's one audio track, taken from the first listed
/// rendition that has audio. Renditions share numbers and timeline, so when that
/// publisher leaves, the next one's audio continues the same playlist.
pub async fn ladder_audio(
    hub: &Hub,
    app: &str,
    base: &str,
    query: &str,
    req: &Headers,
) -> warp::reply::Response {
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
    let Some(source) = audio_source(&ladder, listed(&ladder, has_audio)) else {
        return error(StatusCode::NOT_FOUND, "audio vanished");
    };
    // Ladder-level URIs (`audio/{seq}.m4s`): when the source rendition changes, segment N
    // keeps its URI, as players require of a live playlist.
    let audio = Feed::Cmaf(TrackKind::Audio);
    answer(hub, &ladder, &source, audio, false, (query, req)).await
}

/// The rendition of `candidates` that supplies the ladder's audio ([`Ladder::audio_source`]).
fn audio_source(ladder: &Ladder, candidates: Vec<Snapshot>) -> Option<Arc<Rendition>> {
    let labels: Vec<&str> = candidates.iter().map(|(r, _)| r.label.as_str()).collect();
    let label = ladder.audio_source(&labels)?;
    candidates
        .iter()
        .find(|(r, _)| r.label == label)
        .map(|(r, _)| r.clone())
}

/// `/{app}/{base}/{label}/{feed}.m3u8`.
pub async fn media_playlist(
    hub: &Hub,
    app: &str,
    base: &str,
    label: &str,
    feed: Feed,
    query: &str,
    req: &Headers,
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
    answer(hub, &ladder, &rendition, feed, true, (query, req)).await
}

/// The target duration all playlists of a rendition share, as players expect when
/// switching between them: fixed by the configuration for the life of a publish.
fn shared_target(hub: &Hub) -> u64 {
    hls::fixed_target_duration(hub.config().segment.target_duration)
}

/// Everything a media playlist's text depends on; requests with equal keys share one
/// rendering.
#[derive(Debug, PartialEq)]
struct PlaylistKey {
    feed: Feed,
    /// The window's revision: changes with every part, segment and init segment.
    revision: u64,
    target: u64,
    ended: bool,
    /// `Some(skip)` for the LL-HLS form.
    low_latency: Option<bool>,
    /// A rendition's own playlist (with rendition reports) rather than the ladder's audio
    /// playlist: the two share a feed but are different resources.
    with_reports: bool,
    reports: Vec<RenditionReport>,
}

impl RenderKey for PlaylistKey {
    fn same_slot(&self, other: &Self) -> bool {
        let slot = |k: &Self| (k.feed, k.low_latency, k.with_reports);
        slot(self) == slot(other)
    }
}

/// Blocks as the directives ask (LL-HLS only), then answers the playlist: from one
/// snapshot of the rendition, rendered once per position and shared. `request` is the
/// query string and the headers.
async fn answer(
    hub: &Hub,
    ladder: &Ladder,
    rendition: &Rendition,
    feed: Feed,
    with_reports: bool,
    request: (&str, &Headers),
) -> warp::reply::Response {
    let (query, req) = request;
    let directives = match Directives::parse(query) {
        Ok(d) => d,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let ll = &hub.config().low_latency;
    let low_latency = ll.enabled && matches!(feed, Feed::Cmaf(_));
    if let (true, Some(msn), Feed::Cmaf(kind)) = (low_latency, directives.msn, feed) {
        // Subscribed before the first look, so a part stored in between still wakes us.
        let moves = rendition.subscribe(kind);
        let (far, target) = {
            let state = rendition.read();
            let far = feed.window(&state).is_some_and(|w| too_far(w, msn));
            (far, shared_target(hub))
        };
        if far {
            return error(
                StatusCode::BAD_REQUEST,
                format!("_HLS_msn={msn} is more than two segments ahead of the playlist"),
            );
        }
        // A draining server answers held requests with the playlist as it is.
        let ready = || {
            let state = rendition.read();
            state.ended
                || hub.drain().is_draining()
                || feed
                    .window(&state)
                    .is_some_and(|w| satisfied(w, msn, directives.part))
        };
        // RFC 8216bis 6.2.5.2: give up after three target durations.
        let limit = Duration::from_secs(3 * target);
        if !wait_for(hub.drain(), moves, limit, ready).await {
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
    let part_target = state.part_target;
    // A blocking answer is cached under its URL only when it holds what the URL asks
    // for: one given early (draining, the stream ended) must not stand in for it.
    let caching = match directives.msn {
        Some(msn) if low_latency && !satisfied(window, msn, directives.part) => Caching::NoStore,
        msn => lifetimes::media_playlist(hub.config(), low_latency, msn.is_some()),
    };
    let key = PlaylistKey {
        feed,
        revision: window.revision(),
        target: shared_target(hub),
        ended: state.ended,
        low_latency: low_latency.then_some(directives.skip),
        with_reports,
        reports,
    };
    let body = rendition.renderings.get_or_render(key, |key| {
        let playlist = MediaPlaylist {
            window,
            prefix: feed.name(),
            container: feed.container(),
            target: key.target,
            ended: key.ended,
            low_latency: key.low_latency.map(|skip| LowLatency {
                part_target: part_target.unwrap_or(ll.part_target),
                hold_back_parts: ll.part_hold_back,
                skip,
                reports: key.reports.clone(),
            }),
        };
        Bytes::from(playlist.render())
    });
    text(&body, M3U8, caching, req)
}

/// EXT-X-RENDITION-REPORT for every other live rendition of the ladder with this feed,
/// each from its own snapshot, taken one at a time.
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
            let dir = FeedDir::Rendition {
                label: r.label.clone(),
                feed,
            };
            Some(RenditionReport {
                // From this playlist's directory (`{label}/`) up to the ladder's.
                uri: format!("../{}", LadderFile::Playlist(dir)),
                last_msn,
                last_part,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::StoredSegment;
    use http_body_util::BodyExt;
    use std::time::SystemTime;

    fn add_part(rendition: &Rendition, seq: u64) {
        crate::hub::rendition::tests::add_part(&mut rendition.write(), TrackKind::Video, seq);
    }

    async fn body(resp: warp::reply::Response) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    /// A rendition `live/show_720p` with segment 1 finished (one part); the grant keeps
    /// the publish alive.
    fn one_segment(hub: &Arc<Hub>) -> (crate::hub::Granted, Arc<Rendition>) {
        let granted = hub
            .publish("live", "show_720p", crate::hub::Holder::open(1))
            .unwrap();
        let rendition = granted.publisher.rendition().clone();
        add_part(&rendition, 1);
        rendition
            .write()
            .video
            .as_mut()
            .unwrap()
            .window
            .push(StoredSegment {
                seq: 1,
                start: 0,
                duration: 200,
                timescale: 1000,
                wall_clock: SystemTime::UNIX_EPOCH,
                init_version: 0,
                discontinuity: false,
                parts: Vec::new(),
            });
        (granted, rendition)
    }

    #[tokio::test]
    async fn blocking_answers_are_cached_only_when_they_hold_what_they_name() {
        let hub = Hub::new(Arc::new(Config::default()));
        let (_granted, rendition) = one_segment(&hub);
        let video = Feed::Cmaf(TrackKind::Video);
        let req = Headers::default();
        let get = |q: &'static str| {
            let hub = hub.clone();
            let req = req.clone();
            async move {
                let r = media_playlist(&hub, "live", "show", "720p", video, q, &req).await;
                assert_eq!(r.status(), StatusCode::OK, "{q}");
                r.headers()[warp::http::header::CACHE_CONTROL]
                    .to_str()
                    .unwrap()
                    .to_string()
            }
        };
        assert_eq!(
            get("").await,
            "public, max-age=1",
            "plain: half a part, 1 s"
        );
        assert_eq!(get("_HLS_msn=1").await, "public, max-age=2", "a target");
        // Ended: a request for a position that will never come is answered at once with
        // the last playlist, which must not be cached under the URL of that position.
        rendition.write().ended = true;
        assert_eq!(get("_HLS_msn=2&_HLS_part=0").await, "no-store");
        assert_eq!(get("_HLS_msn=1&_HLS_part=0").await, "public, max-age=2");
    }

    #[tokio::test]
    async fn waiters_for_one_position_share_one_rendering() {
        let hub = Hub::new(Arc::new(Config::default()));
        let (_granted, rendition) = one_segment(&hub);
        let video = Feed::Cmaf(TrackKind::Video);
        let held = |hub: Arc<Hub>| {
            tokio::spawn(async move {
                let q = "_HLS_msn=2&_HLS_part=0";
                let req = Headers::default();
                body(media_playlist(&hub, "live", "show", "720p", video, q, &req).await).await
            })
        };
        let (a, b) = (held(hub.clone()), held(hub.clone()));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !a.is_finished() && !b.is_finished(),
            "both wait for the part"
        );
        add_part(&rendition, 2);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(
            String::from_utf8_lossy(&a).contains("video/part-1.m4s"),
            "the new part is listed"
        );
        assert_eq!(a.as_ptr(), b.as_ptr(), "one rendering, the very same bytes");
        // A plain reload at the same position shares it too; a new position does not.
        let req = Headers::default();
        let c = body(media_playlist(&hub, "live", "show", "720p", video, "", &req).await).await;
        assert_eq!(c.as_ptr(), a.as_ptr());
        add_part(&rendition, 2);
        let d = body(media_playlist(&hub, "live", "show", "720p", video, "", &req).await).await;
        assert_ne!(d, a);
        assert!(String::from_utf8_lossy(&d).contains("video/part-2.m4s"));
    }
}

//! Around every request: its path is parsed once into an [`ObjectPath`] and handed to
//! [`super::router`]; afterwards the request is counted by route and status with its
//! latency, and a live media response is credited to its rendition (bytes out; a playlist
//! fetch marks its client as a viewer).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body::Body as _;
use warp::http::{Method, StatusCode};
use warp::path::FullPath;

use super::router;
use crate::hub::Hub;
use crate::urls::{FeedDir, LadderFile, ObjectPath};

/// The client's IP address, put into each request's extensions by [`super::conn`].
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub IpAddr);

/// Answers one request; see the module docs.
pub async fn handle(
    method: Method,
    path: FullPath,
    query: String,
    headers: super::request::Headers,
    peer: Option<PeerIp>,
    hub: Arc<Hub>,
) -> warp::reply::Response {
    let start = Instant::now();
    let parsed: Option<ObjectPath> = path.as_str().parse().ok();
    let route = route_of(parsed.as_ref());
    let credited = parsed.as_ref().and_then(Credit::of);
    let resp = router::route(
        &method,
        parsed,
        path.as_str(),
        &query,
        &headers,
        hub.clone(),
    )
    .await;
    let status = resp.status();
    metrics::counter!("packgate_http_responses_total", "route" => route, "status" => status.as_str().to_string())
        .increment(1);
    metrics::histogram!("packgate_http_request_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        metrics::counter!("packgate_errors_total", "kind" => error_kind(route, status))
            .increment(1);
    }
    let bytes = resp.body().size_hint().exact().unwrap_or(0);
    metrics::counter!("packgate_http_bytes_sent_total", "route" => route).increment(bytes);
    if let (true, Some(credited)) = (status.is_success(), credited) {
        credit(&hub, credited, route, peer, &resp);
    }
    resp
}

/// A bounded label for the route `path` took.
fn route_of(path: Option<&ObjectPath>) -> &'static str {
    let Some(path) = path else {
        return "other";
    };
    match path {
        ObjectPath::Index => "index",
        ObjectPath::Vendor(_) => "vendor",
        ObjectPath::Time => "time",
        ObjectPath::Metrics => "metrics",
        ObjectPath::Api(_) => "api",
        ObjectPath::Vod { .. } => "vod",
        ObjectPath::Live { file, .. } => match file {
            LadderFile::Mpd => "manifest",
            LadderFile::Master(_) | LadderFile::Playlist(FeedDir::LadderAudio) => "master_playlist",
            LadderFile::Playlist(FeedDir::Rendition { .. }) => "media_playlist",
            LadderFile::Object(..) => "media",
        },
    }
}

/// The live ladder (and rendition, if the file is not ladder-wide) a response is
/// credited to.
struct Credit {
    app: String,
    base: String,
    label: Option<String>,
}

impl Credit {
    fn of(path: &ObjectPath) -> Option<Credit> {
        let ObjectPath::Live { app, base, file } = path else {
            return None;
        };
        Some(Credit {
            app: app.clone(),
            base: base.clone(),
            label: file.label().map(str::to_string),
        })
    }
}

/// The error kind for `packgate_errors_total`.
fn error_kind(route: &'static str, status: StatusCode) -> &'static str {
    match (route, status.as_u16()) {
        (_, 404) => "http_not_found",
        (_, 403) => "http_forbidden",
        (_, 503) => "http_unavailable",
        (_, 400..=499) => "http_client_error",
        _ => "http_server_error",
    }
}

/// Credits a served media response to its rendition (or, for a ladder-wide file, to
/// the ladder's renditions' viewer counts).
fn credit(
    hub: &Hub,
    to: Credit,
    route: &'static str,
    peer: Option<PeerIp>,
    resp: &warp::reply::Response,
) {
    let Some(ladder) = hub.ladder(&to.app, &to.base) else {
        return;
    };
    let bytes = resp.body().size_hint().exact().unwrap_or(0) as usize;
    let playlist = matches!(route, "master_playlist" | "media_playlist" | "manifest");
    let now = Instant::now();
    match to.label.and_then(|l| ladder.rendition(&l)) {
        Some(r) => {
            r.traffic.sent(bytes);
            if let (true, Some(PeerIp(ip))) = (playlist, peer) {
                r.traffic.playlist_fetched(ip, now);
            }
        }
        // Master playlists, manifests and ladder audio: count the viewer on the first
        // rendition only, so a ladder's viewers are not multiplied by its rungs.
        None => {
            if let Some(r) = ladder.renditions().first() {
                r.traffic.sent(bytes);
                if let (true, Some(PeerIp(ip))) = (playlist, peer) {
                    r.traffic.playlist_fetched(ip, now);
                }
            }
        }
    }
}

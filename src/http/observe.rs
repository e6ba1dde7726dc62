//! Around every request: the detailed stream API and its `DELETE` (see
//! [`super::api_streams`]), then the plain router; afterwards the request is counted by
//! route and status with its latency, and a media response is credited to its rendition
//! (bytes out; a playlist fetch marks its client as a viewer).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body::Body as _;
use warp::http::{Method, StatusCode};
use warp::path::FullPath;

use super::api_streams;
use super::response::error;
use super::routes;
use crate::hub::Hub;

/// The client's IP address, put into each request's extensions by [`super::conn`].
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub IpAddr);

/// Answers one request; see the module docs.
pub async fn handle(
    method: Method,
    path: FullPath,
    query: String,
    authorization: Option<String>,
    peer: Option<PeerIp>,
    hub: Arc<Hub>,
) -> warp::reply::Response {
    let start = Instant::now();
    let owned: Vec<String> = path
        .as_str()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let parts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let route = route_of(&parts);
    let is_get = method == Method::GET || method == Method::HEAD;
    let resp = match (parts.as_slice(), is_get) {
        ([routes::API, "streams"], true) => super::json(&api_streams::streams(&hub)),
        ([routes::API, "streams", app, base], true) => match hub.ladder(app, base) {
            Some(l) => super::json(&api_streams::stream_detail(&l)),
            None => error(
                StatusCode::NOT_FOUND,
                format!("stream {app}/{base} is not live"),
            ),
        },
        ([routes::API, "streams", app, name], false) if method == Method::DELETE => {
            api_streams::delete(&hub, app, name, authorization.as_deref())
        }
        _ => super::dispatch(method, path, query, authorization, hub.clone()).await,
    };
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
    if status.is_success() {
        credit(&hub, &parts, route, peer, &resp);
    }
    resp
}

/// A bounded label for the route `parts` took.
fn route_of(parts: &[&str]) -> &'static str {
    match parts {
        [] => "index",
        [routes::VENDOR, ..] => "vendor",
        [routes::TIME] => "time",
        [routes::METRICS] => "metrics",
        [routes::API, ..] => "api",
        [_, _, f] if f.ends_with(".mpd") => "manifest",
        [_, _, f] if f.ends_with(".m3u8") => "master_playlist",
        [_, _, _, f] if f.ends_with(".m3u8") => "media_playlist",
        [_, _, _, _] | [_, _, _, _, _] => "media",
        _ => "other",
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
    parts: &[&str],
    route: &'static str,
    peer: Option<PeerIp>,
    resp: &warp::reply::Response,
) {
    let (app, base, label) = match parts {
        [app, base, label, ..] if parts.len() >= 4 => (*app, *base, Some(*label)),
        [app, base, _] => (*app, *base, None),
        _ => return,
    };
    let Some(ladder) = hub.ladder(app, base) else {
        return;
    };
    let bytes = resp.body().size_hint().exact().unwrap_or(0) as usize;
    let playlist = matches!(route, "master_playlist" | "media_playlist" | "manifest");
    let now = Instant::now();
    match label.and_then(|l| ladder.rendition(l)) {
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

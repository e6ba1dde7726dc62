//! The one place a request is routed: a dispatch on its method and its parsed
//! [`ObjectPath`] (parsed once, by [`super::observe`]), to the handler that answers it.

use std::sync::Arc;

use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Reply;

use super::request::Headers;
use super::response::{error, json, ok, Caching};
use super::{api_streams, dash, master, metrics, objects, playlist, vod, web};
use crate::hub::Hub;
use crate::urls::{ApiPath, Container, FeedDir, LadderFile, ObjectPath};

/// Answers `method` on `path` (`None`: a path that names nothing; `raw` is what was
/// asked, for the error message).
pub async fn route(
    method: &Method,
    path: Option<ObjectPath>,
    raw: &str,
    query: &str,
    headers: &Headers,
    hub: Arc<Hub>,
) -> warp::reply::Response {
    let authorization = headers.authorization.as_deref();
    if method == Method::OPTIONS {
        return preflight();
    }
    let get = method == Method::GET || method == Method::HEAD;
    let path = match (path, method) {
        (Some(ObjectPath::Api(ApiPath::Stream { app, name })), &Method::DELETE) => {
            return api_streams::delete(&hub, &app, &name, authorization);
        }
        (Some(ObjectPath::Api(ApiPath::Recording { app, name, action })), &Method::POST) => {
            return vod::control(&hub, authorization, &app, &name, action);
        }
        _ if !get => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not supported"),
            );
        }
        (None, _) => {
            return error(StatusCode::NOT_FOUND, format!("no such path: {raw}"));
        }
        (Some(path), _) => path,
    };
    metrics::handle();
    ::metrics::counter!("packgate_http_requests_total").increment(1);
    match path {
        ObjectPath::Index => web::index(),
        ObjectPath::Vendor(file) => web::vendor(&file),
        // DASH UTCTiming (urn:mpeg:dash:utc:http-iso:2014): players sync to our clock.
        ObjectPath::Time => ok(
            crate::wallclock::iso8601(std::time::SystemTime::now()),
            "text/plain",
            Caching::NoStore,
        ),
        ObjectPath::Metrics => ok(
            {
                metrics::retained_media(&hub);
                metrics::render()
            },
            "text/plain; version=0.0.4",
            Caching::NoStore,
        ),
        ObjectPath::Api(api) => match api {
            ApiPath::Streams => json(&api_streams::streams(&hub)),
            ApiPath::Stream { app, name } => match hub.ladder(&app, &name) {
                Some(l) => json(&api_streams::stream_detail(&l)),
                None => error(
                    StatusCode::NOT_FOUND,
                    format!("stream {app}/{name} is not live"),
                ),
            },
            ApiPath::Recordings => vod::list(&hub).await,
            ApiPath::Recording { .. } => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "recordings are started and stopped with POST",
            ),
        },
        ObjectPath::Vod {
            app,
            name,
            start,
            file,
        } => vod::handle(&hub, &app, &name, &start, file, headers.range.as_deref()).await,
        ObjectPath::Live { app, base, file } => {
            let here = crate::cluster::LiveRequest {
                method,
                app: &app,
                base: &base,
                path: raw,
                query,
                hop: headers.hop.as_deref(),
                forward: headers.forwarded(),
            };
            match crate::cluster::route(&hub, here).await {
                Some(elsewhere) => elsewhere,
                None => live(&hub, &app, &base, file, query, headers).await,
            }
        }
    }
}

/// A file of live ladder `app/base`, when its output is on.
async fn live(
    hub: &Hub,
    app: &str,
    base: &str,
    file: LadderFile,
    query: &str,
    req: &Headers,
) -> warp::reply::Response {
    let outputs = &hub.config().outputs;
    match file {
        LadderFile::Master(Container::Cmaf) if outputs.hls_cmaf => {
            master::master(hub, app, base, Container::Cmaf, req).await
        }
        LadderFile::Master(Container::Ts) if outputs.hls_ts => {
            master::master(hub, app, base, Container::Ts, req).await
        }
        LadderFile::Mpd if outputs.dash => dash::manifest(hub, app, base, req).await,
        LadderFile::Master(_) | LadderFile::Mpd => error(
            StatusCode::NOT_FOUND,
            format!("{file}: that output is disabled in [outputs]"),
        ),
        LadderFile::Playlist(FeedDir::LadderAudio) if outputs.hls_cmaf => {
            playlist::ladder_audio(hub, app, base, query, req).await
        }
        // Shared by the HLS audio playlist and the MPD's audio Representation.
        LadderFile::Object(FeedDir::LadderAudio, name) if outputs.cmaf() => {
            objects::ladder_audio(hub, app, base, name, req).await
        }
        LadderFile::Playlist(FeedDir::Rendition { label, feed }) if feed.enabled(hub) => {
            playlist::media_playlist(hub, app, base, &label, feed, query, req).await
        }
        LadderFile::Object(FeedDir::Rendition { label, feed }, name) if feed.enabled(hub) => {
            objects::object(hub, app, base, &label, feed, name, req).await
        }
        other => error(
            StatusCode::NOT_FOUND,
            format!("{other}: that output is disabled in [outputs]"),
        ),
    }
}

/// The CORS preflight answer, for any path.
fn preflight() -> warp::reply::Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, DELETE, OPTIONS, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    resp
}

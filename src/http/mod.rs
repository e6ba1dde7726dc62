//! HTTP output (warp): playlists, segments, the JSON API, metrics and the web page.

pub mod api;
pub mod blocking;
pub mod conn;
pub mod dash;
pub mod media;
pub mod metrics;
pub mod objects;
pub mod playlist;
pub mod response;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::path::FullPath;
use warp::reply::Reply;
use warp::Filter;

use crate::hub::Hub;
use response::{error, ok, Caching};

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    metrics::handle();
    let cors = hub.config().http.cors_origin.clone();
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let routes = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::any().map(move || hub.clone()))
        .then(dispatch)
        .map(move |mut resp: warp::reply::Response| {
            if !cors.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&cors) {
                    let h = resp.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                    h.insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        HeaderValue::from_static("*"),
                    );
                }
            }
            resp
        });
    let service = warp::service(routes);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(conn::serve(stream, service.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn dispatch(
    method: Method,
    path: FullPath,
    query: String,
    hub: Arc<Hub>,
) -> warp::reply::Response {
    if method == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return resp;
    }
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported"),
        );
    }
    let parts: Vec<String> = path
        .as_str()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    metrics::handle();
    ::metrics::counter!("packgate_http_requests_total").increment(1);
    match refs.as_slice() {
        [] => web::index(),
        ["vendor", file] => web::vendor(file),
        // DASH UTCTiming (urn:mpeg:dash:utc:http-iso:2014): players sync to our clock.
        ["time"] => ok(
            crate::wallclock::iso8601(std::time::SystemTime::now()),
            "text/plain",
            Caching::NoStore,
        ),
        ["metrics"] => ok(
            metrics::render(),
            "text/plain; version=0.0.4",
            Caching::NoStore,
        ),
        ["api", "streams"] => json(&api::streams(&hub)),
        ["api", "streams", app, base] => match hub.ladder(app, base) {
            Some(l) => json(&api::stream_info(&l)),
            None => error(
                StatusCode::NOT_FOUND,
                format!("stream {app}/{base} is not live"),
            ),
        },
        ["api", ..] => error(StatusCode::NOT_FOUND, "no such API endpoint"),
        _ => match media::handle(hub, parts, &query).await {
            Some(resp) => resp,
            None => error(
                StatusCode::NOT_FOUND,
                format!("no such path: {}", path.as_str()),
            ),
        },
    }
}

fn json(value: &impl serde::Serialize) -> warp::reply::Response {
    match serde_json::to_vec(value) {
        Ok(body) => ok(body, "application/json", Caching::NoStore),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

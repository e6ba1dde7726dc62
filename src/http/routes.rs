//! The warp filter every listener serves (plain HTTP/1.1, HTTPS over HTTP/1.1 or HTTP/2):
//! the request's parts that handlers read, [`super::observe::handle`], and the CORS headers.

use std::sync::Arc;

use warp::http::{header, HeaderValue};
use warp::Filter;

use super::observe;
use crate::hub::Hub;

/// The routes of `hub`, ready for `warp::service`.
pub fn routes(
    hub: Arc<Hub>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
       + Clone
       + Send
       + Sync
       + 'static {
    let cors = hub.config().http.cors_origin.clone();
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let headers = super::request::headers();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(headers)
        .and(warp::ext::optional::<observe::PeerIp>())
        .and(warp::any().map(move || hub.clone()))
        .then(observe::handle)
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
        })
}

//! The web page at `/`: live streams and a player, embedded so the binary is self-contained.

use warp::http::StatusCode;

use super::response::{error, ok, Caching};

const INDEX: &str = include_str!("../../web/index.html");
const HLS_JS: &[u8] = include_bytes!("../../web/vendor/hls.min.js");
const DASH_JS: &[u8] = include_bytes!("../../web/vendor/dash.all.min.js");

/// The page.
pub fn index() -> warp::reply::Response {
    ok(INDEX, "text/html; charset=utf-8", Caching::NoStore)
}

/// Player scripts the page loads (they change only with the binary: five minutes).
pub fn vendor(file: &str) -> warp::reply::Response {
    match file {
        "hls.min.js" => ok(
            HLS_JS,
            "text/javascript; charset=utf-8",
            Caching::Fresh(300),
        ),
        "dash.all.min.js" => ok(
            DASH_JS,
            "text/javascript; charset=utf-8",
            Caching::Fresh(300),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no such file: {file}")),
    }
}

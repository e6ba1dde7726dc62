//! First path segments the router answers itself. An app with one of these names would be
//! unreachable (or shadow the route), so publishing to one is refused; the router matches
//! on these same constants, so the list cannot drift from it.

/// `/api/...`: the JSON API.
pub const API: &str = "api";
/// `/time`: the DASH UTCTiming clock.
pub const TIME: &str = "time";
/// `/metrics`: Prometheus metrics.
pub const METRICS: &str = "metrics";
/// `/vendor/{file}`: the web page's player scripts.
pub const VENDOR: &str = "vendor";

/// App names refused at publish: every first path segment above.
pub const RESERVED_APPS: &[&str] = &[API, TIME, METRICS, VENDOR];

/// True when `app` names a route rather than a possible app. Case-insensitive, so that
/// `API` cannot be published either and confuse people reading URLs.
pub fn is_reserved_app(app: &str) -> bool {
    RESERVED_APPS.iter().any(|r| r.eq_ignore_ascii_case(app))
}

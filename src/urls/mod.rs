//! Every URL path packgate serves and writes, as one typed value: [`ObjectPath`]. Writers
//! (playlists, MPDs, the API, recordings) build their URIs from these types and the HTTP
//! router parses requests into them, so the two sides cannot drift apart; the property
//! test in `tests.rs` checks that every path written parses back to itself.
//!
//! Parsing is by position, in this order: `/`, `/vendor/{file}`, `/time`, `/metrics`,
//! `/api/…`, then `/{app}/{name}/vod/{start}/…` (a recording), then `/{app}/{base}/…` (a
//! live ladder). Empty segments (`//`) are skipped. Two shapes are therefore taken by an
//! earlier rule and cannot name a live object: an app named like a route (the hub refuses
//! to publish those, see [`is_reserved_app`]) and a rendition labelled `vod` (its objects
//! would parse as a recording's).

pub mod live;
pub mod vod;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use live::{Container, Feed, FeedDir, LadderFile, ObjectName};
pub use vod::{TrackObject, VodFile, VodObject};

/// `/api/...`: the JSON API.
pub const API: &str = "api";
/// `/time`: the DASH UTCTiming clock.
pub const TIME: &str = "time";
/// `/metrics`: Prometheus metrics.
pub const METRICS: &str = "metrics";
/// `/vendor/{file}`: the web page's player scripts.
pub const VENDOR: &str = "vendor";
/// The segment after `/{app}/{name}/` that starts a recording's path.
pub const VOD: &str = "vod";

/// App names refused at publish: every first path segment the router answers itself.
pub const RESERVED_APPS: &[&str] = &[API, TIME, METRICS, VENDOR];

/// True when `app` names a route rather than a possible app. Case-insensitive, so that
/// `API` cannot be published either and confuse people reading URLs.
pub fn is_reserved_app(app: &str) -> bool {
    RESERVED_APPS.iter().any(|r| r.eq_ignore_ascii_case(app))
}

/// A path packgate serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectPath {
    /// `/`: the web page.
    Index,
    /// `/vendor/{file}`: a player script of the web page.
    Vendor(String),
    /// `/time`: the server's clock (DASH UTCTiming).
    Time,
    /// `/metrics`: Prometheus metrics.
    Metrics,
    /// `/api/…`.
    Api(ApiPath),
    /// `/{app}/{base}/{file}`: a live ladder's playlists and objects.
    Live {
        /// RTMP application.
        app: String,
        /// Ladder base name.
        base: String,
        /// Which file of the ladder.
        file: LadderFile,
    },
    /// `/{app}/{name}/vod/{start}/{file}`: a recording.
    Vod {
        /// RTMP application.
        app: String,
        /// Ladder base name.
        name: String,
        /// The recording's start (its directory name).
        start: String,
        /// Which file of the recording.
        file: VodFile,
    },
}

/// A path of the JSON API, after `/api/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiPath {
    /// `streams`: every ladder.
    Streams,
    /// `streams/{app}/{name}`: one ladder (GET), or the publisher of stream `name` (DELETE).
    Stream {
        /// RTMP application.
        app: String,
        /// Ladder base name, or for DELETE a published stream name.
        name: String,
    },
    /// `recordings`: every recording on disk.
    Recordings,
    /// `recordings/{app}/{name}/{start|stop}` (POST).
    Recording {
        /// RTMP application.
        app: String,
        /// Ladder base name.
        name: String,
        /// Start or stop.
        action: RecordingAction,
    },
}

/// What `POST /api/recordings/{app}/{name}/{action}` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingAction {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
}

impl ApiPath {
    fn parse(rest: &[&str]) -> Option<ApiPath> {
        let s = |x: &&str| x.to_string();
        Some(match rest {
            ["streams"] => ApiPath::Streams,
            ["streams", app, name] => ApiPath::Stream {
                app: s(app),
                name: s(name),
            },
            ["recordings"] => ApiPath::Recordings,
            ["recordings", app, name, action] => ApiPath::Recording {
                app: s(app),
                name: s(name),
                action: match *action {
                    "start" => RecordingAction::Start,
                    "stop" => RecordingAction::Stop,
                    _ => return None,
                },
            },
            _ => return None,
        })
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiPath::Streams => f.write_str("streams"),
            ApiPath::Stream { app, name } => write!(f, "streams/{app}/{name}"),
            ApiPath::Recordings => f.write_str("recordings"),
            ApiPath::Recording { app, name, action } => {
                let action = match action {
                    RecordingAction::Start => "start",
                    RecordingAction::Stop => "stop",
                };
                write!(f, "recordings/{app}/{name}/{action}")
            }
        }
    }
}

/// A request path that names nothing packgate serves.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no such path")]
pub struct NoSuchPath;

impl ObjectPath {
    /// The path of a live ladder's `file`.
    pub fn live(app: &str, base: &str, file: LadderFile) -> ObjectPath {
        ObjectPath::Live {
            app: app.to_string(),
            base: base.to_string(),
            file,
        }
    }

    /// Parses path segments (empty ones already dropped).
    pub fn parse_segments(parts: &[&str]) -> Option<ObjectPath> {
        let s = |x: &&str| x.to_string();
        Some(match parts {
            [] => ObjectPath::Index,
            [VENDOR, file] => ObjectPath::Vendor(s(file)),
            [TIME] => ObjectPath::Time,
            [METRICS] => ObjectPath::Metrics,
            [API, rest @ ..] => ObjectPath::Api(ApiPath::parse(rest)?),
            [app, name, VOD, start, rest @ ..] => ObjectPath::Vod {
                app: s(app),
                name: s(name),
                start: s(start),
                file: VodFile::parse(rest)?,
            },
            [app, base, rest @ ..] => ObjectPath::Live {
                app: s(app),
                base: s(base),
                file: LadderFile::parse(rest)?,
            },
            _ => return None,
        })
    }
}

impl FromStr for ObjectPath {
    type Err = NoSuchPath;

    /// Parses an absolute request path (no query string).
    fn from_str(path: &str) -> Result<ObjectPath, NoSuchPath> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        ObjectPath::parse_segments(&parts).ok_or(NoSuchPath)
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectPath::Index => f.write_str("/"),
            ObjectPath::Vendor(file) => write!(f, "/{VENDOR}/{file}"),
            ObjectPath::Time => write!(f, "/{TIME}"),
            ObjectPath::Metrics => write!(f, "/{METRICS}"),
            ObjectPath::Api(api) => write!(f, "/{API}/{api}"),
            ObjectPath::Live { app, base, file } => write!(f, "/{app}/{base}/{file}"),
            ObjectPath::Vod {
                app,
                name,
                start,
                file,
            } => write!(f, "/{app}/{name}/{VOD}/{start}/{file}"),
        }
    }
}

//! Recordings over HTTP: `GET /api/recordings`, `POST /api/recordings/{app}/{name}/start`
//! and `…/stop` (bearer token from `[api] token`), and the VOD routes
//! `/{app}/{name}/vod/{start}/…` read from disk on the blocking pool.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use warp::http::StatusCode;

use super::response::{error, ok, Caching, M3U8};
use crate::hub::naming::valid_name;
use crate::hub::Hub;
use crate::record::index::{self, Recording};
use crate::record::vod::{self, VodObject};
use crate::record::RecordError;

/// Largest object served from a recording (a segment or init), a guard against a corrupt
/// index asking for a huge read.
const MAX_OBJECT: u64 = 256 * 1024 * 1024;

/// `GET /api/recordings`: every recording on disk.
pub async fn list(hub: &Hub) -> warp::reply::Response {
    let root = hub.recorder().root().to_path_buf();
    let listed = tokio::task::spawn_blocking(move || {
        index::list(&root).iter().map(vod::info).collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    super::json(&serde_json::json!({ "recordings": listed }))
}

/// `POST /api/recordings/{app}/{name}/{start|stop}`.
pub fn control(
    hub: &Hub,
    authorization: Option<&str>,
    app: &str,
    name: &str,
    action: &str,
) -> warp::reply::Response {
    if let Err(refused) = super::api_streams::authorize(hub, authorization) {
        return refused;
    }
    if !valid_name(app) || !valid_name(name) {
        return error(StatusCode::BAD_REQUEST, "invalid app or name");
    }
    let recorder = hub.recorder();
    let result = match action {
        "start" => {
            let started = recorder.start(app, name);
            Ok(serde_json::json!({ "recording": true, "changed": started }))
        }
        "stop" => recorder
            .stop(app, name)
            .map(|()| serde_json::json!({ "recording": false, "changed": true })),
        _ => return error(StatusCode::NOT_FOUND, "no such API endpoint"),
    };
    match result {
        Ok(v) => super::json(&v),
        Err(e @ RecordError::ByConfig(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ RecordError::NotRecording(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// `/{app}/{name}/vod/{start}/{rest…}`.
pub async fn handle(
    hub: &Hub,
    app: &str,
    name: &str,
    start: &str,
    rest: &[&str],
) -> warp::reply::Response {
    if ![app, name, start].iter().all(|s| valid_name(s)) {
        return error(StatusCode::NOT_FOUND, "no such recording");
    }
    let dir: PathBuf = hub.recorder().root().join(app).join(name).join(start);
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let served = tokio::task::spawn_blocking(move || {
        let rec = index::read_recording(&dir)?;
        Some(serve(&rec, &rest))
    })
    .await
    .ok()
    .flatten();
    served.unwrap_or_else(|| error(StatusCode::NOT_FOUND, "no such recording"))
}

fn serve(rec: &Recording, rest: &[String]) -> warp::reply::Response {
    let refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let missing = || error(StatusCode::NOT_FOUND, "no such object in the recording");
    match refs.as_slice() {
        ["index.m3u8"] => ok(vod::master(rec), M3U8, Caching::NoStore),
        ["index.mpd"] => ok(vod::mpd(rec), "application/dash+xml", Caching::NoStore),
        [label, playlist] => {
            let Some(kind) = playlist.strip_suffix(".m3u8") else {
                return missing();
            };
            match rec.rendition(label).and_then(|r| r.track(kind)) {
                Some(t) => ok(vod::media(rec, t), M3U8, Caching::NoStore),
                None => missing(),
            }
        }
        [label, kind, file] => {
            let Some(track) = rec.rendition(label).and_then(|r| r.track(kind)) else {
                return missing();
            };
            let Some((path, offset, len)) = VodObject::parse(file).and_then(|o| o.locate(track))
            else {
                return missing();
            };
            if len > MAX_OBJECT {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "object too large");
            }
            match read_range(path, offset, len) {
                Ok(bytes) => ok(bytes, &format!("{kind}/mp4"), Caching::Immutable),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the recording: {e}"),
                ),
            }
        }
        _ => missing(),
    }
}

fn read_range(path: &std::path::Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

//! Recordings over HTTP: `GET /api/recordings`, `POST /api/recordings/{app}/{name}/start`
//! and `…/stop` (bearer token from `[api] token`), and the VOD routes
//! `/{app}/{name}/vod/{start}/…` read from disk on the blocking pool (a rendition's
//! combined file, `{label}/av-{n}.mp4`, streamed with ranges by [`super::file_range`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use warp::http::StatusCode;

use super::response::{error, json, ok, Caching, M3U8};
use crate::hub::naming::valid_name;
use crate::hub::Hub;
use crate::record::index::{self, Recording};
use crate::record::vod;
use crate::record::RecordError;
use crate::urls::{RecordingAction, VodFile};

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
    json(&serde_json::json!({ "recordings": listed }))
}

/// `POST /api/recordings/{app}/{name}/{start|stop}`.
pub fn control(
    hub: &Hub,
    authorization: Option<&str>,
    app: &str,
    name: &str,
    action: RecordingAction,
) -> warp::reply::Response {
    if let Err(refused) = super::api_streams::authorize(hub, authorization) {
        return refused;
    }
    if !valid_name(app) || !valid_name(name) {
        return error(StatusCode::BAD_REQUEST, "invalid app or name");
    }
    let recorder = hub.recorder();
    let result = match action {
        RecordingAction::Start => {
            let started = recorder.start(app, name);
            Ok(serde_json::json!({ "recording": true, "changed": started }))
        }
        RecordingAction::Stop => recorder
            .stop(app, name)
            .map(|()| serde_json::json!({ "recording": false, "changed": true })),
    };
    match result {
        Ok(v) => json(&v),
        Err(e @ RecordError::ByConfig(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ RecordError::NotRecording(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// `/{app}/{name}/vod/{start}/{file}`.
pub async fn handle(
    hub: &Hub,
    app: &str,
    name: &str,
    start: &str,
    file: VodFile,
    range: Option<&str>,
) -> warp::reply::Response {
    if ![app, name, start].iter().all(|s| valid_name(s)) {
        return error(StatusCode::NOT_FOUND, "no such recording");
    }
    let dir: PathBuf = hub.recorder().root().join(app).join(name).join(start);
    if let VodFile::Combined { label, n } = &file {
        if !valid_name(label) {
            return error(StatusCode::NOT_FOUND, "no such rendition");
        }
        let path = dir.join(label).join(format!("av-{n}.mp4"));
        return super::file_range::serve(path, range, "video/mp4").await;
    }
    let served = tokio::task::spawn_blocking(move || {
        let rec = index::read_recording(&dir)?;
        Some(serve(&rec, &file))
    })
    .await
    .ok()
    .flatten();
    served.unwrap_or_else(|| error(StatusCode::NOT_FOUND, "no such recording"))
}

fn serve(rec: &Recording, file: &VodFile) -> warp::reply::Response {
    let missing = || error(StatusCode::NOT_FOUND, "no such object in the recording");
    match file {
        VodFile::Master => ok(vod::master(rec), M3U8, Caching::NoStore),
        // Streamed by `handle` before the recording's index is read.
        VodFile::Combined { .. } => missing(),
        VodFile::Mpd => ok(vod::mpd(rec), "application/dash+xml", Caching::NoStore),
        VodFile::Playlist { label, kind } => {
            match rec.rendition(label).and_then(|r| r.track(*kind)) {
                Some(t) => ok(vod::media(rec, t), M3U8, Caching::NoStore),
                None => missing(),
            }
        }
        VodFile::Object {
            label,
            kind,
            object,
        } => {
            let Some(track) = rec.rendition(label).and_then(|r| r.track(*kind)) else {
                return missing();
            };
            let Some((path, offset, len)) = vod::locate(*object, track) else {
                return missing();
            };
            if len > MAX_OBJECT {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "object too large");
            }
            match read_range(path, offset, len) {
                Ok(bytes) => ok(bytes, &format!("{}/mp4", kind.as_str()), Caching::Immutable),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the recording: {e}"),
                ),
            }
        }
    }
}

fn read_range(path: &std::path::Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

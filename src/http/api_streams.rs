//! The detailed stream API: `/api/streams` and `/api/streams/{app}/{base}` extend
//! [`super::api`]'s description of each rendition with what the encoder sends (GOP,
//! B-frames, input bitrate, audio format), who publishes and since when, what is served
//! (segments, bytes, viewers) and the ingest warnings; `DELETE /api/streams/{app}/{name}`
//! disconnects a publisher, for the holder of `[api] token` only.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use warp::http::StatusCode;

use super::api;
use super::response::{error, json};
use crate::hub::diagnostics::Warning;
use crate::hub::{Hub, Ladder, Rendition};

/// One ingest warning as the API shows it.
#[derive(Debug, Serialize)]
pub struct WarningInfo {
    /// Stable machine name, e.g. `gop_too_long`.
    pub code: &'static str,
    /// What it means and what to change.
    pub message: &'static str,
}

/// What this module adds to each rendition of [`api::RenditionInfo`].
#[derive(Debug, Serialize)]
pub struct RenditionDetail {
    /// The publisher's IP address, when known.
    pub publisher: Option<String>,
    /// Seconds since the current publish started.
    pub uptime_s: Option<f64>,
    /// Frames in the last complete GOP.
    pub gop_frames: Option<u32>,
    /// Duration of the last complete GOP, ms.
    pub gop_ms: Option<f64>,
    /// Video arrives out of presentation order (B-frames).
    pub b_frames: bool,
    /// Measured bits per second in, all tracks.
    pub bitrate_in: u64,
    /// Measured video bits per second in.
    pub video_bitrate_in: u64,
    /// Measured audio bits per second in.
    pub audio_bitrate_in: u64,
    /// Media payload bytes received in this publish.
    pub bytes_in: u64,
    /// Audio sample rate, Hz.
    pub audio_sample_rate: Option<u32>,
    /// Audio channel count.
    pub audio_channels: Option<u8>,
    /// Video time minus audio time at the latest arrival, ms.
    pub av_drift_ms: Option<f64>,
    /// Timestamp jumps re-anchored in this publish.
    pub timestamp_jumps: u64,
    /// Segments cut since the rendition was created (one per segment number, however
    /// many feeds carry it).
    pub segments_produced: u64,
    /// Response body bytes served for this rendition.
    pub bytes_out: u64,
    /// Distinct client addresses that fetched one of its playlists in the last 10 s.
    pub viewers: usize,
    /// Current ingest warnings.
    pub warnings: Vec<WarningInfo>,
}

/// The detail of one rendition.
pub fn rendition_detail(r: &Rendition, now: Instant) -> RenditionDetail {
    let stats = r.ingest.get();
    let state = r.read();
    let audio = state.audio.as_ref().and_then(|t| t.config.audio_format());
    let warnings: Vec<WarningInfo> = stats
        .warnings
        .with(Warning::LadderMisaligned, state.misalignment_ms > 0.0)
        .with(Warning::KeyframeOverdue, state.keyframe_overdue)
        .iter()
        .map(|w| WarningInfo {
            code: w.code(),
            message: w.message(),
        })
        .collect();
    let live = state.publishing();
    RenditionDetail {
        publisher: stats.publisher_ip.map(|ip| ip.to_string()),
        uptime_s: stats
            .started
            .filter(|_| live)
            .map(|t| now.saturating_duration_since(t).as_secs_f64()),
        gop_frames: stats.gop_frames,
        gop_ms: stats.gop_ms,
        b_frames: stats.b_frames,
        bitrate_in: stats.bitrate_in.iter().sum(),
        video_bitrate_in: stats.bitrate_in[0],
        audio_bitrate_in: stats.bitrate_in[1],
        bytes_in: stats.bytes_in,
        audio_sample_rate: audio.map(|a| a.0),
        audio_channels: audio.map(|a| a.1),
        av_drift_ms: stats.av_drift_ms,
        timestamp_jumps: stats.timestamp_jumps,
        segments_produced: r.traffic.segments(),
        bytes_out: r.traffic.bytes_out(),
        viewers: r.traffic.viewers(now),
        warnings,
    }
}

/// One ladder: [`api::stream_info`] with each rendition's [`RenditionDetail`] merged in,
/// and the ladder's viewers, bytes out and warning codes summed up.
pub fn stream_detail(ladder: &Ladder) -> Value {
    let now = Instant::now();
    let info = api::stream_info(ladder);
    let mut value = serde_json::to_value(&info).unwrap_or(Value::Null);
    let details: Vec<(String, RenditionDetail)> = ladder
        .renditions()
        .iter()
        .map(|r| (r.label.clone(), rendition_detail(r, now)))
        .collect();
    let mut codes: Vec<&'static str> = Vec::new();
    let (mut viewers, mut bytes_out) = (0, 0);
    for (_, d) in &details {
        viewers += d.viewers;
        bytes_out += d.bytes_out;
        for w in &d.warnings {
            if !codes.contains(&w.code) {
                codes.push(w.code);
            }
        }
    }
    if let Some(list) = value.get_mut("renditions").and_then(Value::as_array_mut) {
        for entry in list.iter_mut() {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string);
            let detail = details.iter().find(|(l, _)| Some(l) == name.as_ref());
            if let (Some(obj), Some((_, d))) = (entry.as_object_mut(), detail) {
                if let Ok(Value::Object(extra)) = serde_json::to_value(d) {
                    obj.extend(extra);
                }
            }
        }
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert("viewers".into(), viewers.into());
        obj.insert("bytes_out".into(), bytes_out.into());
        obj.insert("warnings".into(), codes.into());
    }
    value
}

/// Every ladder, for `GET /api/streams`.
pub fn streams(hub: &Hub) -> Value {
    let list: Vec<Value> = hub.ladders().iter().map(|l| stream_detail(l)).collect();
    serde_json::json!({ "streams": list })
}

/// Checks a mutating call's `Authorization` header against `[api] token` (one token
/// for every mutating call: disconnects and recording start/stop). On refusal, the answer
/// to send: 403 when no token is configured, 401 (with `WWW-Authenticate`) for a missing
/// or wrong one.
#[allow(clippy::result_large_err)]
pub fn authorize(hub: &Hub, authorization: Option<&str>) -> Result<(), warp::reply::Response> {
    let token = &hub.config().api.token;
    if token.is_empty() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "mutating API calls are disabled: set [api] token in the config",
        ));
    }
    let given = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), token.as_bytes()) {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <[api] token>)",
        );
        resp.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static("Bearer"),
        );
        return Err(resp);
    }
    Ok(())
}

/// Compares without stopping at the first difference, so timing does not reveal how
/// much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `DELETE /api/streams/{app}/{name}`.
pub fn delete(
    hub: &Hub,
    app: &str,
    name: &str,
    authorization: Option<&str>,
) -> warp::reply::Response {
    if let Err(refused) = authorize(hub, authorization) {
        return refused;
    }
    match hub.disconnect(app, name) {
        0 => error(
            StatusCode::NOT_FOUND,
            format!("nobody is publishing {app}/{name}"),
        ),
        n => {
            tracing::info!(%app, stream = %name, publishers = n, "publisher disconnected through the API");
            metrics::counter!("packgate_api_disconnects_total").increment(n as u64);
            json(&serde_json::json!({ "disconnected": n }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn hub(token: &str) -> Arc<Hub> {
        let toml = format!("[api]\ntoken = \"{token}\"\n");
        Hub::new(Arc::new(crate::config::Config::from_toml(&toml).unwrap()))
    }

    #[test]
    fn mutating_calls_need_the_configured_token() {
        assert_eq!(
            authorize(&hub(""), Some("Bearer x")).unwrap_err().status(),
            403
        );
        assert_eq!(delete(&hub(""), "live", "x", None).status(), 403);
        let h = hub("s3cret");
        assert!(authorize(&h, Some("Bearer s3cret")).is_ok());
        assert_eq!(
            authorize(&h, Some("Bearer s3cre")).unwrap_err().status(),
            401
        );
        assert!(authorize(&h, Some("s3cret")).is_err());
        assert!(authorize(&h, None).is_err());
        assert_eq!(
            delete(&h, "live", "nope", Some("Bearer s3cret")).status(),
            404
        );
    }
}

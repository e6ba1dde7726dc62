//! Media objects: init segments, segments and LL-HLS parts, straight from the windows.
//!
//! Two requests are held instead of refused: an LL-HLS part named by the preload hint,
//! answered the moment it is stored; and (low-latency DASH) the segment being cut, whose
//! response starts at once and streams each CMAF chunk (part) as it is produced.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use warp::http::StatusCode;
use warp::reply::Reply;

use super::blocking::wait_for;
use super::media::{immutable, init_validators, part_validators, segment_validators};
use super::request::Headers;
use super::response::{error, set_type, Caching};
use super::snapshot::{listed, not_found};
use crate::drain::Drain;
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Rendition};
use crate::media::TrackKind;
use crate::store::TrackWindow;
use crate::urls::{Feed, ObjectName};

/// Parts ahead of the newest that a request may wait for (the hinted one and the next).
const PART_LOOKAHEAD: u64 = 2;

/// `/{app}/{base}/{label}/{feed}/{file}`.
pub async fn object(
    hub: &Hub,
    app: &str,
    base: &str,
    label: &str,
    feed: Feed,
    name: ObjectName,
    req: &Headers,
) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    let Some(rendition) = ladder.rendition(label) else {
        return not_found(app, base);
    };
    let content_type = match feed {
        Feed::Cmaf(TrackKind::Video) => "video/mp4",
        Feed::Cmaf(TrackKind::Audio) => "audio/mp4",
        Feed::Ts => "video/mp2t",
    };
    let cmaf = feed != Feed::Ts;
    let low_latency = hub.config().low_latency.enabled && cmaf;
    let limit = Duration::from_secs_f64(3.0 * hub.config().segment.target_duration);
    let seq = match name {
        ObjectName::Init(version) if cmaf => {
            let state = rendition.read();
            return match feed.window(&state).and_then(|w| w.init(version)) {
                Some(b) => {
                    let validators = init_validators(version, b);
                    immutable(vec![b.clone()], content_type, &validators, req)
                }
                None => error(StatusCode::NOT_FOUND, format!("no init segment {version}")),
            };
        }
        ObjectName::Part(id) if low_latency => {
            let wait = PartWait { feed, id, limit };
            return part(hub.drain(), &rendition, wait, content_type, req).await;
        }
        ObjectName::Segment(seq) => seq,
        _ => {
            let file = name.file(feed.container());
            return error(StatusCode::NOT_FOUND, format!("no such object: {file}"));
        }
    };
    let state = rendition.read();
    let Some(window) = feed.window(&state) else {
        return error(StatusCode::NOT_FOUND, format!("no {} track", feed.name()));
    };
    if let Some(spill) = window.spilled(seq).cloned() {
        let validators = window.get(seq).map(segment_validators);
        drop(state);
        return spilled(spill, seq, content_type, validators, req).await;
    }
    if let Some(segment) = window.get(seq) {
        let chunks = segment.chunks().cloned().collect();
        return immutable(chunks, content_type, &segment_validators(segment), req);
    }
    if low_latency && !state.ended && upcoming(window, seq) {
        drop(state);
        let Feed::Cmaf(kind) = feed else {
            return error(StatusCode::NOT_FOUND, "no such segment");
        };
        return growing(rendition, kind, seq, limit, content_type);
    }
    error(
        StatusCode::NOT_FOUND,
        format!("segment {seq} is not (or no longer) available"),
    )
}

/// `/{app}/{base}/audio/{file}`: an object of the ladder's audio, from the rendition that
/// supplies it now or, for older objects, from whichever rendition still holds it.
pub async fn ladder_audio(
    hub: &Hub,
    app: &str,
    base: &str,
    name: ObjectName,
    req: &Headers,
) -> warp::reply::Response {
    let Some(ladder) = hub.ladder(app, base) else {
        return not_found(app, base);
    };
    let has_audio = |s: &RenditionState| s.audio.is_some();
    let mut candidates: Vec<Arc<Rendition>> = listed(&ladder, has_audio)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    // Alternative audio renditions never supply the ladder's audio.
    candidates.extend(
        ladder
            .renditions()
            .into_iter()
            .filter(|r| r.audio_track.is_none()),
    );
    // The current source first: it answers for what is not stored anywhere yet.
    let current = ladder.current_audio_source();
    candidates.sort_by_key(|r| current.as_deref() != Some(r.label.as_str()));
    let holds = |r: &Rendition| {
        let state = r.read();
        let Some(w) = state.audio.as_ref().map(|t| &t.window) else {
            return false;
        };
        match name {
            ObjectName::Init(v) => w.init(v).is_some(),
            ObjectName::Part(id) => w.part(id).is_some(),
            ObjectName::Segment(seq) => w.get(seq).is_some(),
        }
    };
    // Not stored anywhere yet (a hinted part, the growing segment): ask the current source.
    let Some(holder) = candidates
        .iter()
        .find(|r| holds(r))
        .or(candidates.first())
        .cloned()
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("stream {app}/{base} has no audio"),
        );
    };
    let audio = Feed::Cmaf(TrackKind::Audio);
    object(hub, app, base, &holder.label, audio, name, req).await
}

/// A DVR segment from the disk tier, read on the blocking pool (not read at all when the
/// request's copy is current).
async fn spilled(
    spill: crate::store::spill::Spill,
    seq: u64,
    content_type: &str,
    validators: Option<super::validators::Validators>,
    req: &Headers,
) -> warp::reply::Response {
    let Some(validators) = validators else {
        return error(StatusCode::NOT_FOUND, "no such segment");
    };
    if validators.not_modified(req) {
        return validators.not_modified_response(Caching::Immutable, false);
    }
    match tokio::task::spawn_blocking(move || spill.read(seq)).await {
        Ok(Ok(bytes)) => immutable(vec![bytes], content_type, &validators, req),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("segment {seq} is no longer on disk (DVR budget)"),
        ),
    }
}

/// True when `seq` is the segment being cut or the next one.
fn upcoming(window: &TrackWindow, seq: u64) -> bool {
    match (window.open(), window.last()) {
        (Some(open), _) => seq == open.seq || seq == open.seq + 1,
        (None, Some(last)) => seq == last.seq + 1,
        (None, None) => false,
    }
}

/// Which part a request waits for, and for how long at most.
struct PartWait {
    feed: Feed,
    id: u64,
    limit: Duration,
}

/// An LL-HLS part; a part not produced yet but about to be (the preload hint) is waited
/// for, woken only by its own track.
async fn part(
    drain: &Drain,
    rendition: &Rendition,
    wait: PartWait,
    content_type: &str,
    req: &Headers,
) -> warp::reply::Response {
    let PartWait { feed, id, limit } = wait;
    let lookup = |state: &RenditionState| -> Result<Option<(Bytes, SystemTime)>, ()> {
        let window = feed.window(state).ok_or(())?;
        if let Some((segment, p)) = window.part_in(id) {
            return Ok(Some((p.data.clone(), segment.wall_clock)));
        }
        let soon = id >= window.next_part_id() && id < window.next_part_id() + PART_LOOKAHEAD;
        if soon && !state.ended {
            Ok(None)
        } else {
            Err(())
        }
    };
    let Feed::Cmaf(kind) = feed else {
        return error(StatusCode::NOT_FOUND, "parts are CMAF only");
    };
    let ready = || !matches!(lookup(&rendition.read()), Ok(None));
    wait_for(drain, rendition.subscribe(kind), limit, ready).await;
    match lookup(&rendition.read()) {
        Ok(Some((data, wall_clock))) => {
            let validators = part_validators(id, data.len(), wall_clock);
            immutable(vec![data], content_type, &validators, req)
        }
        Ok(None) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("part {id} was not produced in time"),
        ),
        Err(()) => error(
            StatusCode::NOT_FOUND,
            format!("part {id} is not (or no longer) available"),
        ),
    }
}

/// What the next step of a growing segment's response is.
enum Step {
    Send(Bytes),
    Wait,
    End,
}

/// The segment being cut (or about to be): the response starts now and each part is sent
/// as it is stored, so a low-latency DASH player receives CMAF chunks as they are made.
/// Each step reads a fresh snapshot; the stream wakes only when its own track moves.
fn growing(
    rendition: Arc<Rendition>,
    kind: TrackKind,
    seq: u64,
    limit: Duration,
    content_type: &str,
) -> warp::reply::Response {
    // Subscribed before the first look, so no part is missed between a look and the wait.
    let updates = rendition.subscribe(kind);
    let next = move |sent: usize| -> Step {
        let state = rendition.read();
        let Some(window) = state.track(kind).map(|t| &t.window) else {
            return Step::End;
        };
        let parts = match (window.get(seq), window.open()) {
            (Some(done), _) => &done.parts,
            (None, Some(open)) if open.seq == seq => &open.parts,
            _ if state.ended || window.last().is_some_and(|l| l.seq > seq) => return Step::End,
            _ => return Step::Wait,
        };
        match parts.get(sent) {
            Some(p) => Step::Send(p.data.clone()),
            None if window.get(seq).is_some() => Step::End,
            None => Step::Wait,
        }
    };
    let next = Arc::new(next);
    let stream = futures_util::stream::unfold((0usize, updates), move |(sent, mut updates)| {
        let next = next.clone();
        async move {
            loop {
                match next(sent) {
                    Step::Send(b) => return Some((Ok::<_, Infallible>(b), (sent + 1, updates))),
                    Step::End => return None,
                    Step::Wait => {
                        let woke = tokio::time::timeout(limit, updates.changed()).await;
                        if !matches!(woke, Ok(Ok(()))) {
                            return None;
                        }
                    }
                }
            }
        }
    });
    let mut resp = warp::reply::stream(stream).into_response();
    // The bytes of a growing segment are final once sent, but a cache must not keep a
    // response that may have been cut short by the publisher leaving.
    set_type(resp.headers_mut(), content_type, Caching::Fresh(1));
    resp
}

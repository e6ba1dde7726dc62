//! What a connection does with its session's events: publish requests go to the hub,
//! media goes through the FLV demuxer into the publisher. Sans-IO like the session, so
//! benchmarks and tests drive it with bytes; `server.rs` only adds the socket.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;
use tracing::{debug, info, warn, Span};

use super::session::{ServerSession, SessionConfig, SessionError, SessionEvent};
use crate::flv::budget::ConfigBudget;
use crate::flv::{DemuxEvent, FlvError, TagDemuxer, TrackEvent};
use crate::hub::auth::{self, Check, Credential, HookEvent, Refusal};
use crate::hub::naming::valid_name;
use crate::hub::publisher::FrameError;
use crate::hub::{Departure, Granted, Holder, Hub, PublishError, Released};
use crate::limit::{Limit, LimitExceeded};
use crate::lograte::clip;
use crate::media::{CodecConfig, TrackKind};
use crate::webhook::WebhookCall;

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(SessionError),
    /// The peer asked for more than a budget allows.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

impl From<SessionError> for IngestError {
    fn from(e: SessionError) -> Self {
        match e.limit() {
            Some(l) => IngestError::Limit(l),
            None => IngestError::Protocol(e),
        }
    }
}

struct Publishing {
    stream_id: u32,
    /// Publisher first: it finishes before the claim lets go of the name.
    granted: Granted,
    demux: TagDemuxer,
    dropped: u64,
    /// What to tell the webhook on unpublish, when the app has one.
    hook: Option<WebhookCall>,
    /// Enhanced RTMP multitrack: the renditions of video and audio tracks 1.. (None:
    /// refused).
    tracks: Vec<(TrackKind, u8, Option<Granted>)>,
    /// Who publishes, for the claims of those renditions.
    holder: Holder,
}

/// A publish waiting for the driver: the webhook's answer, or a taken-over publisher
/// letting go. Media that arrives meanwhile is held (up to `limits.held_bytes`).
struct Pending {
    stream_id: u32,
    app: String,
    name: String,
    credential: Credential,
    event: HookEvent,
    held: Vec<(TrackKind, u32, Bytes)>,
    held_bytes: usize,
    took_over: bool,
    /// The webhook call, asked once the cluster check has passed.
    webhook: Option<WebhookCall>,
}

/// Something only the async driver can do for a publish; it answers with
/// [`Ingest::answer`].
#[derive(Debug)]
pub enum AuthRequest {
    /// Call the webhook and answer [`AuthAnswer::Webhook`].
    Webhook(WebhookCall),
    /// Wait (bounded) for the old publisher to let go, then answer [`AuthAnswer::Released`].
    Takeover(Released),
    /// Ask the cluster registry whether another node publishes the name; answer
    /// [`AuthAnswer::Cluster`].
    Cluster(crate::cluster::PublishCheck),
}

/// The driver's answer to an [`AuthRequest`].
#[derive(Debug)]
pub enum AuthAnswer {
    /// The webhook's status code, or why it could not be asked.
    Webhook(Result<u16, String>),
    /// The old publisher let go (or the wait timed out: the claim is simply tried again).
    Released,
    /// No other node publishes the name, or why the publish is refused.
    Cluster(Result<(), String>),
}

/// One RTMP connection's protocol state and what it publishes.
pub struct Ingest {
    hub: Arc<Hub>,
    id: u64,
    peer: Option<IpAddr>,
    session: ServerSession,
    publishing: Option<Publishing>,
    /// Media frames delivered by this connection's publishes so far.
    frames: u64,
    pending: Option<Pending>,
    request: Option<AuthRequest>,
    notices: Vec<WebhookCall>,
    /// Bytes the driver must write to the peer, in order.
    pub out: Vec<Bytes>,
}

impl Ingest {
    /// A connection with id `id` (used in logs and as the publisher id).
    pub fn new(hub: Arc<Hub>, id: u64) -> Self {
        let session = ServerSession::new(SessionConfig {
            chunk_size: hub.config().rtmp.chunk_size,
            limits: hub.config().limits.clone(),
            ..SessionConfig::default()
        });
        Ingest {
            hub,
            id,
            peer: None,
            session,
            publishing: None,
            frames: 0,
            pending: None,
            request: None,
            notices: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Media frames delivered so far: what keeps a publishing connection alive.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Sets the client's address (for the webhook and same-IP takeovers in open apps).
    pub fn with_peer(mut self, ip: IpAddr) -> Self {
        self.peer = Some(ip);
        self
    }

    /// True while a stream is being published on this connection.
    pub fn is_publishing(&self) -> bool {
        self.publishing.is_some()
    }

    /// The signal a takeover sends this connection's publish, while it publishes.
    pub fn takeover_signal(&self) -> Option<watch::Receiver<bool>> {
        self.publishing
            .as_ref()
            .map(|p| p.granted.claim.stop_signal())
    }

    /// What the driver must do before feeding more input, if anything.
    pub fn take_request(&mut self) -> Option<AuthRequest> {
        self.request.take()
    }

    /// Webhook notifications to send (fire and forget).
    pub fn take_notices(&mut self) -> Vec<WebhookCall> {
        std::mem::take(&mut self.notices)
    }

    /// Feeds bytes to the session and handles what comes out; an error closes the connection.
    pub fn input(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        let events = self.session.handle_input(bytes)?;
        for event in events {
            self.event(event)?;
        }
        Ok(())
    }

    fn event(&mut self, event: SessionEvent) -> Result<(), LimitExceeded> {
        match event {
            SessionEvent::Send(bytes) => self.out.push(bytes),
            SessionEvent::PublishRequested {
                app,
                stream_key,
                stream_id,
                query,
            } => return self.publish(app, stream_key, stream_id, query.as_deref()),
            SessionEvent::Audio {
                stream_id,
                timestamp,
                payload,
            } => return self.media(TrackKind::Audio, stream_id, timestamp, payload),
            SessionEvent::Video {
                stream_id,
                timestamp,
                payload,
            } => return self.media(TrackKind::Video, stream_id, timestamp, payload),
            SessionEvent::Metadata { data, .. } => {
                debug!(data = %clip(&format!("{data:?}")), "stream metadata")
            }
            SessionEvent::PublishFinished { stream_id } => {
                if self
                    .publishing
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    // The encoder said it stops: the playlists end now, no reconnect wait.
                    self.end_publish(Departure::Clean);
                }
            }
            SessionEvent::Unhandled { description } => {
                debug!(description = %clip(&description), "ignored RTMP message")
            }
        }
        Ok(())
    }

    /// Authorises a publish: refused, granted, or handed to the driver (webhook).
    fn publish(
        &mut self,
        app: String,
        name: String,
        stream_id: u32,
        query: Option<&str>,
    ) -> Result<(), LimitExceeded> {
        let span = Span::current();
        span.record("app", clip(&app).as_ref());
        span.record("stream", clip(&name).as_ref());
        if self.publishing.is_some() || self.pending.is_some() {
            return self.refuse(stream_id, "this connection already publishes a stream");
        }
        if let Some(bad) = [&app, &name].into_iter().find(|n| !valid_name(n)) {
            return self.refuse(
                stream_id,
                &PublishError::InvalidName(bad.clone()).to_string(),
            );
        }
        let ln = self.hub.ladder_name(&app, &name);
        let params = query.map(auth::parse_query).unwrap_or_default();
        let config = self.hub.config().auth.app(&app);
        let now = self
            .hub
            .time()
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let check = auth::check(config, &app, &ln.base, &params, now);
        let cluster = crate::cluster::publish_check(&self.hub, &app, &ln.base);
        let event = HookEvent {
            action: "publish",
            app: app.clone(),
            stream: name.clone(),
            ladder: ln.base,
            rendition: ln.label,
            params,
            client_ip: self.peer,
            conn_id: self.id,
        };
        let (credential, call) = match check {
            Check::Denied(r) => return self.refuse_auth(stream_id, &r),
            Check::Allowed(c) => (c, None),
            Check::AskWebhook(c) => match config.and_then(|a| event.call(a)) {
                Some(call) => (c, Some(call)),
                // Validated at start, so not expected; never let it bypass the webhook.
                None => {
                    let why = Refusal::WebhookUnavailable("bad webhook URL".into());
                    return self.refuse_auth(stream_id, &why);
                }
            },
        };
        self.pending = Some(Pending {
            stream_id,
            app,
            name,
            credential,
            event,
            held: Vec::new(),
            held_bytes: 0,
            took_over: false,
            webhook: call,
        });
        match cluster {
            Some(c) => {
                self.request = Some(AuthRequest::Cluster(c));
                Ok(())
            }
            None => self.after_cluster(),
        }
    }

    /// The publish passed the cluster check (or there is no cluster): the webhook next,
    /// if the app has one, else the claim.
    fn after_cluster(&mut self) -> Result<(), LimitExceeded> {
        match self.pending.as_mut().and_then(|p| p.webhook.take()) {
            Some(call) => {
                self.request = Some(AuthRequest::Webhook(call));
                Ok(())
            }
            None => self.claim(),
        }
    }

    /// Feeds the driver's answer to the last [`AuthRequest`]; media held meanwhile is
    /// replayed, and may hit a budget (the connection must then close).
    pub fn answer(&mut self, answer: AuthAnswer) -> Result<(), LimitExceeded> {
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        match answer {
            AuthAnswer::Released => self.claim(),
            AuthAnswer::Cluster(Ok(())) => self.after_cluster(),
            AuthAnswer::Cluster(Err(why)) => {
                let id = pending.stream_id;
                self.pending = None;
                self.refuse(id, &why)
            }
            AuthAnswer::Webhook(outcome) => {
                let Some(config) = self.hub.config().auth.app(&pending.app) else {
                    return Ok(());
                };
                match auth::webhook_verdict(config, pending.credential.clone(), outcome) {
                    Ok(credential) => {
                        pending.credential = credential;
                        self.claim()
                    }
                    Err(refusal) => {
                        let id = pending.stream_id;
                        self.pending = None;
                        self.refuse_auth(id, &refusal)
                    }
                }
            }
        }
    }

    /// Claims the authorised name in the hub and starts publishing.
    fn claim(&mut self) -> Result<(), LimitExceeded> {
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let holder = Holder {
            conn_id: self.id,
            ip: self.peer,
            credential: p.credential.clone(),
        };
        match self.hub.publish(&p.app, &p.name, holder.clone()) {
            Ok(granted) => {
                let Some(p) = self.pending.take() else {
                    return Ok(());
                };
                info!(took_over = p.took_over, "publish started");
                if p.took_over {
                    metrics::counter!("packgate_publish_takeovers_total").increment(1);
                }
                let hook = self.hub.config().auth.app(&p.app).and_then(|c| {
                    HookEvent {
                        action: "unpublish",
                        ..p.event
                    }
                    .call(c)
                });
                self.publishing = Some(Publishing {
                    stream_id: p.stream_id,
                    granted,
                    demux: TagDemuxer::with_budget(ConfigBudget::from_config(self.hub.config())),
                    dropped: 0,
                    hook,
                    tracks: Vec::new(),
                    holder,
                });
                let ev = self.session.accept_publish(p.stream_id);
                self.extend(ev)?;
                for (kind, timestamp, payload) in p.held {
                    self.media(kind, p.stream_id, timestamp, payload)?;
                }
                Ok(())
            }
            Err(PublishError::TakingOver(released)) if !p.took_over => {
                info!("taking the stream over from its current publisher");
                p.took_over = true;
                self.request = Some(AuthRequest::Takeover(released));
                Ok(())
            }
            Err(e) => {
                let id = p.stream_id;
                self.pending = None;
                self.refuse(id, &e.to_string())
            }
        }
    }

    fn refuse_auth(&mut self, stream_id: u32, refusal: &Refusal) -> Result<(), LimitExceeded> {
        self.refuse(stream_id, &format!("not authorised: {refusal}"))
    }

    /// Answers NetStream.Publish.BadName and logs why (never a secret: reasons are ours).
    /// Client-supplied names in `reason` are clipped, in the log and in the answer alike.
    fn refuse(&mut self, stream_id: u32, reason: &str) -> Result<(), LimitExceeded> {
        let reason = clip(reason);
        let reason = reason.as_ref();
        warn!(reason, "publish refused");
        metrics::counter!("packgate_publish_refused_total").increment(1);
        let ev = self
            .session
            .reject_publish(stream_id, "NetStream.Publish.BadName", reason);
        self.extend(ev)
    }

    fn extend(&mut self, events: Vec<SessionEvent>) -> Result<(), LimitExceeded> {
        for e in events {
            self.event(e)?;
        }
        Ok(())
    }

    fn media(
        &mut self,
        kind: TrackKind,
        stream_id: u32,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), LimitExceeded> {
        if let Some(p) = self.pending.as_mut().filter(|p| p.stream_id == stream_id) {
            // Encoders may send headers right behind `publish`; keep them for the answer.
            let max = self.hub.config().limits.held_bytes;
            let asked = p.held_bytes + payload.len();
            if asked > max {
                return Err(LimitExceeded::new(Limit::HeldBytes, asked, max));
            }
            p.held_bytes = asked;
            p.held.push((kind, timestamp, payload));
            return Ok(());
        }
        let Some(p) = self
            .publishing
            .as_mut()
            .filter(|p| p.stream_id == stream_id)
        else {
            return Ok(());
        };
        metrics::counter!("packgate_rtmp_media_messages_total", "track" => kind.as_str())
            .increment(1);
        let events = match kind {
            TrackKind::Audio => p.demux.audio_tracks(timestamp, payload),
            TrackKind::Video => p.demux.video_tracks(timestamp, payload),
        };
        for TrackEvent { track, event } in events {
            if track == 0 {
                self.frames += deliver(&mut p.granted, &mut p.dropped, kind, 0, event)?;
                continue;
            }
            if !p.tracks.iter().any(|(k, t, _)| (*k, *t) == (kind, track)) {
                let Ok(Some(DemuxEvent::Config(config))) = &event else {
                    p.dropped += 1;
                    continue; // a track's rendition starts at its sequence start
                };
                let granted =
                    track_rendition(&self.hub, &p.granted, &p.holder, (kind, track), config);
                p.tracks.push((kind, track, granted));
            }
            let extra = p
                .tracks
                .iter_mut()
                .find(|(k, t, _)| (*k, *t) == (kind, track));
            if let Some((_, _, Some(granted))) = extra {
                self.frames += deliver(granted, &mut p.dropped, kind, track, event)?;
            }
        }
        Ok(())
    }

    /// Ends the publish, if any, as a dropped connection (closing without an unpublish):
    /// the publisher finishes, then the name is released and the webhook, if any, is told.
    pub fn unpublish(&mut self) {
        self.end_publish(Departure::Dropped);
    }

    fn end_publish(&mut self, how: Departure) {
        if let Some(Publishing {
            mut granted,
            hook,
            tracks,
            ..
        }) = self.publishing.take()
        {
            for (_, _, extra) in tracks {
                if let Some(mut extra) = extra {
                    extra.publisher.finish_as(how);
                }
            }
            granted.publisher.finish_as(how);
            drop(granted);
            self.notices.extend(hook);
        }
    }
}

/// Hands one track's demuxed event to its publisher; returns the frames delivered (0 or
/// 1). Errors other than a budget are logged (the first few, then every thousandth, so a
/// broken encoder cannot flood the log) and the message dropped.
fn deliver(
    granted: &mut Granted,
    dropped: &mut u64,
    kind: TrackKind,
    track: u8,
    event: Result<Option<DemuxEvent>, FlvError>,
) -> Result<u64, LimitExceeded> {
    match event {
        Ok(Some(DemuxEvent::Config(c))) => granted.publisher.config(c),
        Ok(Some(DemuxEvent::Frame(f))) => {
            granted
                .publisher
                .frame(f)
                .map_err(|FrameError::HeldBytes { held, limit }| {
                    LimitExceeded::new(Limit::HeldBytes, held, limit)
                })?;
            return Ok(1);
        }
        Ok(Some(DemuxEvent::EndOfSequence(_))) | Ok(None) => {}
        Err(FlvError::Limit(l)) => return Err(l),
        Err(e) => {
            *dropped += 1;
            if *dropped <= 5 || *dropped % 1000 == 0 {
                let stream = &granted.publisher.rendition().stream_name;
                warn!(%stream, track = kind.as_str(), track_id = track, error = %e, dropped = *dropped, "dropping media message");
            }
        }
    }
    Ok(0)
}

/// Claims the rendition of multitrack track `track` in the publisher's ladder. A video
/// track is a rung labelled `{height}p` when that label is free (or already this track's),
/// else `track{N}`; an audio track is the alternative audio rendition `audio{N}`. `None`
/// (logged) when the ladder cannot take it.
fn track_rendition(
    hub: &Arc<Hub>,
    main: &Granted,
    holder: &Holder,
    (kind, track): (TrackKind, u8),
    config: &CodecConfig,
) -> Option<Granted> {
    let ladder = main.publisher.ladder();
    let name = &main.publisher.rendition().stream_name;
    let (label, claimed) = match kind {
        TrackKind::Video => {
            let stream = format!("{name}.track{track}");
            let by_height = config.resolution().map(|(_, h)| format!("{h}p"));
            // Free, or this very track's rendition from before a reconnect (which continues).
            let label = by_height
                .filter(|l| ladder.rendition(l).is_none_or(|r| r.stream_name == stream))
                .unwrap_or_else(|| format!("track{track}"));
            let claimed =
                hub.publish_track(&ladder.app, &ladder.base, &label, &stream, holder.clone());
            (label, claimed)
        }
        TrackKind::Audio => {
            let stream = format!("{name}.audio{track}");
            let claimed =
                hub.publish_audio_track(&ladder.app, &ladder.base, track, &stream, holder.clone());
            (format!("audio{track}"), claimed)
        }
    };
    let kind = kind.as_str();
    match claimed {
        Ok(granted) => {
            info!(track, %label, kind, codec = %config.codec_string(), "multitrack track published as a ladder rendition");
            Some(granted)
        }
        Err(e) => {
            warn!(track, %label, kind, error = %e, "multitrack track refused");
            None
        }
    }
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;

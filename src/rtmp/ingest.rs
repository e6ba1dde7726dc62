//! What a connection does with its session's events: publish requests go to the hub,
//! media goes through the FLV demuxer into the publisher. Sans-IO like the session, so
//! benchmarks and tests drive it with bytes; `server.rs` only adds the socket.

use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, info, warn, Span};

use super::session::{ServerSession, SessionConfig, SessionError, SessionEvent};
use crate::flv::budget::ConfigBudget;
use crate::flv::{DemuxEvent, FlvError, TagDemuxer};
use crate::hub::{Hub, Publisher};
use crate::limit::LimitExceeded;
use crate::lograte::clip;
use crate::media::TrackKind;

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
    publisher: Publisher,
    demux: TagDemuxer,
    dropped: u64,
}

/// One RTMP connection's protocol state and what it publishes.
pub struct Ingest {
    hub: Arc<Hub>,
    id: u64,
    session: ServerSession,
    publishing: Option<Publishing>,
    /// Media frames delivered by this connection's publishes so far.
    frames: u64,
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
            session,
            publishing: None,
            frames: 0,
            out: Vec::new(),
        }
    }

    /// Media frames delivered so far: what keeps a publishing connection alive.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// True while a stream is being published on this connection.
    pub fn is_publishing(&self) -> bool {
        self.publishing.is_some()
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
                ..
            } => return self.publish(&app, &stream_key, stream_id),
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
                    self.unpublish();
                }
            }
            SessionEvent::Unhandled { description } => {
                debug!(description = %clip(&description), "ignored RTMP message")
            }
        }
        Ok(())
    }

    fn publish(&mut self, app: &str, name: &str, stream_id: u32) -> Result<(), LimitExceeded> {
        let span = Span::current();
        span.record("app", clip(app).as_ref());
        span.record("stream", clip(name).as_ref());
        if self.publishing.is_some() {
            warn!("second publish on one connection refused");
            let ev = self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection already publishes a stream",
            );
            return self.extend(ev);
        }
        match self.hub.publish(app, name, self.id) {
            Ok(publisher) => {
                info!("publish started");
                self.publishing = Some(Publishing {
                    stream_id,
                    publisher,
                    demux: TagDemuxer::with_budget(ConfigBudget::from_config(self.hub.config())),
                    dropped: 0,
                });
                let ev = self.session.accept_publish(stream_id);
                self.extend(ev)
            }
            Err(e) => {
                let reason = e.to_string();
                let reason = clip(&reason);
                warn!(error = %reason, "publish refused");
                let ev =
                    self.session
                        .reject_publish(stream_id, "NetStream.Publish.BadName", &reason);
                self.extend(ev)
            }
        }
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
        let Some(p) = self
            .publishing
            .as_mut()
            .filter(|p| p.stream_id == stream_id)
        else {
            return Ok(());
        };
        metrics::counter!("packgate_rtmp_media_messages_total", "track" => kind.as_str())
            .increment(1);
        let parsed = match kind {
            TrackKind::Audio => p.demux.audio(timestamp, payload),
            TrackKind::Video => p.demux.video(timestamp, payload),
        };
        match parsed {
            Ok(Some(DemuxEvent::Config(c))) => p.publisher.config(c),
            Ok(Some(DemuxEvent::Frame(f))) => {
                self.frames += 1;
                p.publisher.frame(f);
            }
            Ok(Some(DemuxEvent::EndOfSequence(_))) | Ok(None) => {}
            Err(FlvError::Limit(l)) => return Err(l),
            Err(e) => {
                // Log the first few and then every thousandth, so a broken encoder cannot
                // flood the log.
                p.dropped += 1;
                if p.dropped <= 5 || p.dropped % 1000 == 0 {
                    warn!(track = kind.as_str(), error = %e, dropped = p.dropped, "dropping media message");
                }
            }
        }
        Ok(())
    }

    /// Ends the publish, if any (connection closing).
    pub fn unpublish(&mut self) {
        if let Some(mut p) = self.publishing.take() {
            p.publisher.finish();
        }
    }
}

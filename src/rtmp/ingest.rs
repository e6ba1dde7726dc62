//! What a connection does with its session's events: publish requests go to the hub,
//! media goes through the FLV demuxer into the publisher. Sans-IO like the session, so
//! benchmarks and tests drive it with bytes; `server.rs` only adds the socket.

use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, info, warn, Span};

use super::session::{ServerSession, SessionConfig, SessionEvent};
use crate::flv::{DemuxEvent, TagDemuxer};
use crate::hub::{Departure, Hub, Publisher};
use crate::media::TrackKind;

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
    /// Why the publisher asked to close the connection (a budget ran out).
    closing: Option<String>,
    /// Bytes the driver must write to the peer, in order.
    pub out: Vec<Bytes>,
}

impl Ingest {
    /// A connection with id `id` (used in logs and as the publisher id).
    pub fn new(hub: Arc<Hub>, id: u64) -> Self {
        let session = ServerSession::new(SessionConfig {
            chunk_size: hub.config().rtmp.chunk_size,
            ..SessionConfig::default()
        });
        Ingest {
            hub,
            id,
            session,
            publishing: None,
            closing: None,
            out: Vec::new(),
        }
    }

    /// True while a stream is being published on this connection.
    pub fn is_publishing(&self) -> bool {
        self.publishing.is_some()
    }

    /// Feeds bytes to the session and handles what comes out; an error closes the connection.
    pub fn input(&mut self, bytes: &[u8]) -> Result<(), String> {
        let events = self
            .session
            .handle_input(bytes)
            .map_err(|e| format!("protocol error: {e}"))?;
        for event in events {
            self.event(event);
        }
        self.closing.take().map_or(Ok(()), Err)
    }

    fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Send(bytes) => self.out.push(bytes),
            SessionEvent::PublishRequested {
                app,
                stream_key,
                stream_id,
                ..
            } => self.publish(&app, &stream_key, stream_id),
            SessionEvent::Audio {
                stream_id,
                timestamp,
                payload,
            } => self.media(TrackKind::Audio, stream_id, timestamp, payload),
            SessionEvent::Video {
                stream_id,
                timestamp,
                payload,
            } => self.media(TrackKind::Video, stream_id, timestamp, payload),
            SessionEvent::Metadata { data, .. } => debug!(?data, "stream metadata"),
            SessionEvent::PublishFinished { stream_id } => {
                if self
                    .publishing
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    // The encoder said it stops: the playlists end now, no reconnect wait.
                    if let Some(mut p) = self.publishing.take() {
                        p.publisher.finish_as(Departure::Clean);
                    }
                }
            }
            SessionEvent::Unhandled { description } => debug!(description, "ignored RTMP message"),
        }
    }

    fn publish(&mut self, app: &str, name: &str, stream_id: u32) {
        let span = Span::current();
        span.record("app", app);
        span.record("stream", name);
        if self.publishing.is_some() {
            warn!("second publish on one connection refused");
            let ev = self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection already publishes a stream",
            );
            self.extend(ev);
            return;
        }
        match self.hub.publish(app, name, self.id) {
            Ok(publisher) => {
                info!("publish started");
                self.publishing = Some(Publishing {
                    stream_id,
                    publisher,
                    demux: TagDemuxer::new(),
                    dropped: 0,
                });
                let ev = self.session.accept_publish(stream_id);
                self.extend(ev);
            }
            Err(e) => {
                warn!(error = %e, "publish refused");
                let ev = self.session.reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    &e.to_string(),
                );
                self.extend(ev);
            }
        }
    }

    fn extend(&mut self, events: Vec<SessionEvent>) {
        for e in events {
            self.event(e);
        }
    }

    fn media(&mut self, kind: TrackKind, stream_id: u32, timestamp: u32, payload: Bytes) {
        let Some(p) = self
            .publishing
            .as_mut()
            .filter(|p| p.stream_id == stream_id)
        else {
            return;
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
                if let Err(e) = p.publisher.frame(f) {
                    self.closing.get_or_insert(e.to_string());
                }
            }
            Ok(Some(DemuxEvent::EndOfSequence(_))) | Ok(None) => {}
            Err(e) => {
                // Log the first few and then every thousandth, so a broken encoder cannot
                // flood the log.
                p.dropped += 1;
                if p.dropped <= 5 || p.dropped % 1000 == 0 {
                    warn!(track = kind.as_str(), error = %e, dropped = p.dropped, "dropping media message");
                }
            }
        }
    }

    /// Ends the publish, if any, as a dropped connection (closing without an unpublish).
    pub fn unpublish(&mut self) {
        if let Some(mut p) = self.publishing.take() {
            p.publisher.finish();
        }
    }
}

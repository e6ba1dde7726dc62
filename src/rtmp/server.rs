//! The tokio driver around the sans-IO RTMP session: it only moves bytes between the
//! socket and the session, and hands media to the hub. No protocol logic lives here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, info_span, warn, Instrument, Span};

use super::session::{ServerSession, SessionConfig, SessionEvent};
use crate::flv::{DemuxEvent, TagDemuxer};
use crate::hub::{Hub, Publisher};
use crate::media::TrackKind;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Accepts RTMP connections until `shutdown` resolves, then closes them all.
pub async fn run(hub: Arc<Hub>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(hub.config().rtmp.max_connections));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        warn!(%peer, "refusing RTMP connection: rtmp.max_connections reached");
                        continue;
                    };
                    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
                    let span = info_span!("rtmp", conn = id, %peer, app = tracing::field::Empty, stream = tracing::field::Empty);
                    let (hub, stopped) = (hub.clone(), stopped.clone());
                    tokio::spawn(async move {
                        connection(hub, socket, peer, id, stopped).await;
                        drop(permit);
                    }.instrument(span));
                }
                Err(e) => {
                    // Usually fd exhaustion: back off instead of spinning.
                    warn!(error = %e, "RTMP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let _ = stop.send(true);
    // Let connections flush their last segments (bounded).
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        limit.acquire_many(hub.config().rtmp.max_connections as u32),
    )
    .await;
}

/// One client: read, feed the session, act on its events, write its replies.
async fn connection(
    hub: Arc<Hub>,
    mut socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    metrics::gauge!("packgate_rtmp_connections").increment(1.0);
    let idle = Duration::from_secs_f64(hub.config().rtmp.idle_timeout);
    let mut conn = Connection {
        hub: hub.clone(),
        id,
        session: ServerSession::new(SessionConfig {
            chunk_size: hub.config().rtmp.chunk_size,
            ..SessionConfig::default()
        }),
        publishing: None,
        out: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let reason = loop {
        let n = tokio::select! {
            _ = stopped.changed() => break "server shutting down".to_string(),
            r = tokio::time::timeout(idle, socket.read(&mut buf)) => match r {
                Err(_) => break format!("no data for {} s", idle.as_secs()),
                Ok(Err(e)) => break format!("read error: {e}"),
                Ok(Ok(0)) => break "peer closed the connection".to_string(),
                Ok(Ok(n)) => n,
            },
        };
        metrics::counter!("packgate_rtmp_bytes_received_total").increment(n as u64);
        if let Err(e) = conn.input(&buf[..n]) {
            break e;
        }
        let pending = std::mem::take(&mut conn.out);
        for chunk in pending {
            if let Err(e) = socket.write_all(&chunk).await {
                return finish(conn, peer, &format!("write error: {e}"));
            }
        }
    };
    finish(conn, peer, &reason);
}

fn finish(mut conn: Connection, peer: SocketAddr, reason: &str) {
    let was_publishing = conn.publishing.is_some();
    conn.unpublish();
    metrics::gauge!("packgate_rtmp_connections").decrement(1.0);
    if was_publishing {
        warn!(%peer, reason, "RTMP connection closed while publishing");
    } else {
        info!(%peer, reason, "RTMP connection closed");
    }
}

struct Publishing {
    stream_id: u32,
    publisher: Publisher,
    demux: TagDemuxer,
    dropped: u64,
}

struct Connection {
    hub: Arc<Hub>,
    id: u64,
    session: ServerSession,
    publishing: Option<Publishing>,
    out: Vec<Bytes>,
}

impl Connection {
    /// Feeds bytes to the session and handles what comes out; an error closes the connection.
    fn input(&mut self, bytes: &[u8]) -> Result<(), String> {
        let events = self
            .session
            .handle_input(bytes)
            .map_err(|e| format!("protocol error: {e}"))?;
        for event in events {
            self.event(event);
        }
        Ok(())
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
                    self.unpublish();
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
            Ok(Some(DemuxEvent::Frame(f))) => p.publisher.frame(f),
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

    fn unpublish(&mut self) {
        if let Some(mut p) = self.publishing.take() {
            p.publisher.finish();
        }
    }
}

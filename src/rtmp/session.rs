//! The server session: bytes in, events and bytes-to-send out. It owns the handshake,
//! the chunk stream and the command dialogue, and never touches a socket.

use bytes::Bytes;

use super::amf0::{Amf0Error, Amf0Value};
use super::chunk::{ChunkDecoder, ChunkError, RawMessage};
use super::handshake::{Handshake, HandshakeError};
use super::message::{user_control, Message, MessageError};
use super::outbox::Outbox;
use crate::config::LimitsConfig;
use crate::limit::LimitExceeded;
use crate::lograte::clip;

/// Settings of a server session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our outgoing chunk size, announced right after connect.
    pub chunk_size: u32,
    /// The acknowledgement window we ask the client to use, and our peer bandwidth.
    pub window_ack_size: u32,
    /// Byte budgets of the chunk stream (message and unfinished bytes).
    pub limits: LimitsConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            limits: LimitsConfig::default(),
        }
    }
}

/// What the session asks its driver to do or tells it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// Bytes to write to the peer, in order.
    Send(Bytes),
    /// The client wants to publish; answer with `accept_publish` or `reject_publish`.
    PublishRequested {
        /// Application from connect (query string removed).
        app: String,
        /// Stream name from publish (query string removed).
        stream_key: String,
        /// The message stream it publishes on.
        stream_id: u32,
        /// The `?query` of the app in connect (`rtmp://host/live?key=k`, as some encoders
        /// are set up) and of the stream name, joined with `&` in that order; for
        /// publish authorisation.
        query: Option<String>,
    },
    /// Stream metadata (onMetaData).
    Metadata {
        /// The stream it arrived on.
        stream_id: u32,
        /// The metadata object.
        data: Amf0Value,
    },
    /// An audio message on a publishing stream.
    Audio {
        /// The stream.
        stream_id: u32,
        /// RTMP timestamp (ms).
        timestamp: u32,
        /// FLV audio tag body.
        payload: Bytes,
    },
    /// A video message on a publishing stream.
    Video {
        /// The stream.
        stream_id: u32,
        /// RTMP timestamp (ms).
        timestamp: u32,
        /// FLV video tag body.
        payload: Bytes,
    },
    /// The client stopped publishing on `stream_id`.
    PublishFinished {
        /// The stream.
        stream_id: u32,
    },
    /// Something we ignored, for a debug log.
    Unhandled {
        /// What it was.
        description: String,
    },
}

/// A protocol error; the driver closes the connection and logs it.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream is broken.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A message could not be decoded.
    #[error("message: {0}")]
    Message(#[from] MessageError),
}

impl SessionError {
    /// The budget hit behind this error, if it is one.
    pub fn limit(&self) -> Option<LimitExceeded> {
        match self {
            SessionError::Chunk(ChunkError::Limit(l))
            | SessionError::Message(MessageError::Amf(_, Amf0Error::Limit(l))) => Some(*l),
            _ => None,
        }
    }
}

/// Server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    handshake: Option<Handshake>,
    decoder: ChunkDecoder,
    outbox: Outbox,
    app: Option<String>,
    app_query: Option<String>,
    next_stream_id: u32,
    /// Streams whose publish was requested or accepted: (id, accepted).
    publishing: Vec<(u32, bool)>,
    received: u64,
    acked: u64,
    peer_window: u32,
}

impl ServerSession {
    /// A session waiting for the client's handshake.
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            handshake: Some(Handshake::new()),
            decoder: ChunkDecoder::with_limits(&config.limits),
            outbox: Outbox::default(),
            app: None,
            app_query: None,
            next_stream_id: 1,
            publishing: Vec::new(),
            received: 0,
            acked: 0,
            peer_window: 2_500_000,
            config,
        }
    }

    /// The app name from connect, once known.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// Feeds received bytes.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Vec<SessionEvent>, SessionError> {
        let mut events = Vec::new();
        self.received += input.len() as u64;
        if let Some(h) = self.handshake.as_mut() {
            let out = h.process(input)?;
            if let Some(s) = out.send {
                events.push(SessionEvent::Send(s));
            }
            match out.done {
                None => return Ok(events),
                Some(rest) => {
                    self.handshake = None;
                    self.decoder.push_bytes(rest);
                }
            }
        } else {
            self.decoder.push(input);
        }
        while let Some(raw) = self.decoder.next_message()? {
            self.message(raw, &mut events)?;
        }
        if self.received - self.acked >= u64::from(self.peer_window) {
            self.acked = self.received;
            self.send(Message::Acknowledgement(self.received as u32), 0);
        }
        self.flush(&mut events);
        Ok(events)
    }

    /// Accepts a requested publish: Stream Begin + NetStream.Publish.Start.
    pub fn accept_publish(&mut self, stream_id: u32) -> Vec<SessionEvent> {
        if let Some(p) = self.publishing.iter_mut().find(|p| p.0 == stream_id) {
            p.1 = true;
        }
        self.send(
            Message::UserControl {
                event: user_control::STREAM_BEGIN,
                data: Bytes::copy_from_slice(&stream_id.to_be_bytes()),
            },
            0,
        );
        self.status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            "Publishing started.",
        );
        self.flushed()
    }

    /// Refuses a requested publish with an error status such as NetStream.Publish.BadName.
    pub fn reject_publish(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Vec<SessionEvent> {
        self.publishing.retain(|p| p.0 != stream_id);
        self.status(stream_id, "error", code, description);
        self.flushed()
    }

    fn flushed(&mut self) -> Vec<SessionEvent> {
        let mut events = Vec::new();
        self.flush(&mut events);
        events
    }

    fn flush(&mut self, events: &mut Vec<SessionEvent>) {
        events.extend(self.outbox.take().map(SessionEvent::Send));
    }

    fn send(&mut self, msg: Message, stream_id: u32) {
        self.outbox.send(msg, stream_id, 0);
    }

    fn status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = Amf0Value::object([
            ("level", Amf0Value::String(level.into())),
            ("code", Amf0Value::String(code.into())),
            ("description", Amf0Value::String(description.into())),
        ]);
        self.send(
            Message::Command {
                name: "onStatus".into(),
                transaction: 0.0,
                object: Amf0Value::Null,
                args: vec![info],
            },
            stream_id,
        );
    }

    fn reply(
        &mut self,
        name: &str,
        tx: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) {
        self.outbox.command(name, tx, object, args, stream_id);
    }

    /// Media is delivered for a stream once its publish was requested, not only once it
    /// was accepted: encoders may send sequence headers right behind `publish`, before the
    /// driver has answered. The driver answers in event order, before those media events,
    /// and drops media of a refused stream.
    fn is_publishing(&self, stream_id: u32) -> bool {
        self.publishing.iter().any(|p| p.0 == stream_id)
    }

    fn message(
        &mut self,
        raw: RawMessage,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), SessionError> {
        let stream_id = raw.stream_id;
        let timestamp = raw.timestamp;
        match Message::decode(&raw)? {
            Message::Audio(payload) if self.is_publishing(stream_id) => {
                events.push(SessionEvent::Audio {
                    stream_id,
                    timestamp,
                    payload,
                })
            }
            Message::Video(payload) if self.is_publishing(stream_id) => {
                events.push(SessionEvent::Video {
                    stream_id,
                    timestamp,
                    payload,
                })
            }
            Message::Audio(_) | Message::Video(_) => events.push(SessionEvent::Unhandled {
                description: format!("media on stream {stream_id} that is not publishing"),
            }),
            Message::WindowAckSize(size) => self.peer_window = size.max(1),
            // The answer echoes the 4-byte timestamp only: echoing whatever follows would
            // let a client make us write as much as it sends.
            Message::UserControl {
                event: user_control::PING_REQUEST,
                data,
            } => self.send(
                Message::UserControl {
                    event: user_control::PING_RESPONSE,
                    data: data.slice(..data.len().min(4)),
                },
                0,
            ),
            Message::SetChunkSize(_)
            | Message::Abort(_)
            | Message::Acknowledgement(_)
            | Message::UserControl { .. }
            | Message::SetPeerBandwidth { .. } => {}
            Message::Data(values) => {
                let mut it = values.into_iter().peekable();
                if it.peek().and_then(|v| v.as_str()) == Some("@setDataFrame") {
                    it.next();
                }
                match (it.next(), it.next()) {
                    (Some(Amf0Value::String(name)), Some(data)) if name == "onMetaData" => {
                        events.push(SessionEvent::Metadata { stream_id, data })
                    }
                    (first, _) => {
                        let what = match &first {
                            Some(Amf0Value::String(s)) => clip(s).into_owned(),
                            Some(_) => "without a name".to_string(),
                            None => "empty".to_string(),
                        };
                        events.push(SessionEvent::Unhandled {
                            description: format!("data message {what}"),
                        })
                    }
                }
            }
            Message::Command {
                name,
                transaction,
                object,
                args,
            } => self.command(&name, transaction, object, args, stream_id, events),
            Message::Unknown(t) => events.push(SessionEvent::Unhandled {
                description: format!("message type {t}"),
            }),
        }
        Ok(())
    }

    fn command(
        &mut self,
        name: &str,
        tx: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
        events: &mut Vec<SessionEvent>,
    ) {
        let first_arg = args
            .first()
            .and_then(|a| a.as_str())
            .unwrap_or_default()
            .to_string();
        match name {
            "connect" => {
                let app = object
                    .get("app")
                    .and_then(Amf0Value::as_str)
                    .unwrap_or_default();
                let (app, query) = app.split_once('?').unwrap_or((app, ""));
                self.app = Some(app.trim_end_matches('/').to_string());
                self.app_query =
                    Some(query.trim_end_matches('/').to_string()).filter(|q| !q.is_empty());
                let encoding = object
                    .get("objectEncoding")
                    .and_then(Amf0Value::as_f64)
                    .unwrap_or(0.0);
                self.send(Message::WindowAckSize(self.config.window_ack_size), 0);
                self.send(
                    Message::SetPeerBandwidth {
                        size: self.config.window_ack_size,
                        limit: 2,
                    },
                    0,
                );
                self.send(Message::SetChunkSize(self.config.chunk_size), 0);
                self.outbox.set_chunk_size(self.config.chunk_size as usize);
                let mut props = Amf0Value::object([
                    ("fmsVer", Amf0Value::String("FMS/3,0,1,123".into())),
                    ("capabilities", Amf0Value::Number(31.0)),
                ]);
                if let Amf0Value::Object(p) = &mut props {
                    p.extend(super::caps::reply_properties(&object));
                }
                let info = Amf0Value::object([
                    ("level", Amf0Value::String("status".into())),
                    (
                        "code",
                        Amf0Value::String("NetConnection.Connect.Success".into()),
                    ),
                    (
                        "description",
                        Amf0Value::String("Connection succeeded.".into()),
                    ),
                    ("objectEncoding", Amf0Value::Number(encoding)),
                ]);
                self.reply("_result", tx, props, vec![info], 0);
            }
            "releaseStream" | "FCPublish" => {
                self.reply(
                    "_result",
                    tx,
                    Amf0Value::Null,
                    vec![Amf0Value::Undefined],
                    0,
                );
                if name == "FCPublish" {
                    let info = Amf0Value::object([
                        ("code", Amf0Value::String("NetStream.Publish.Start".into())),
                        ("description", Amf0Value::String(first_arg)),
                    ]);
                    self.reply("onFCPublish", 0.0, Amf0Value::Null, vec![info], 0);
                }
            }
            "createStream" => {
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.reply(
                    "_result",
                    tx,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(f64::from(id))],
                    0,
                );
            }
            "publish" => {
                let (key, query) = match first_arg.split_once('?') {
                    Some((k, q)) => (k.to_string(), Some(q.to_string())),
                    None => (first_arg, None),
                };
                let query = match (self.app_query.clone(), query) {
                    (Some(a), Some(q)) => Some(format!("{a}&{q}")),
                    (a, q) => a.or(q),
                };
                let Some(app) = self.app.clone() else {
                    self.status(
                        stream_id,
                        "error",
                        "NetStream.Publish.BadName",
                        "publish before connect",
                    );
                    return;
                };
                self.publishing.retain(|p| p.0 != stream_id);
                self.publishing.push((stream_id, false));
                events.push(SessionEvent::PublishRequested {
                    app,
                    stream_key: key,
                    stream_id,
                    query,
                });
            }
            "FCUnpublish" => {
                let info = Amf0Value::object([
                    (
                        "code",
                        Amf0Value::String("NetStream.Unpublish.Success".into()),
                    ),
                    ("description", Amf0Value::String(first_arg)),
                ]);
                self.reply("onFCUnpublish", 0.0, Amf0Value::Null, vec![info], 0);
                self.finish_all(events);
            }
            "deleteStream" | "closeStream" => {
                let id = if name == "deleteStream" {
                    args.first()
                        .and_then(Amf0Value::as_f64)
                        .map_or(stream_id, |v| v as u32)
                } else {
                    stream_id
                };
                if let Some(pos) = self.publishing.iter().position(|p| p.0 == id) {
                    let (id, accepted) = self.publishing.remove(pos);
                    if accepted {
                        events.push(SessionEvent::PublishFinished { stream_id: id });
                    }
                }
            }
            "play" => self.status(
                stream_id,
                "error",
                "NetStream.Play.Failed",
                "packgate accepts publishers only; watch over HTTP",
            ),
            _ => {
                if tx != 0.0 {
                    self.reply(
                        "_error",
                        tx,
                        Amf0Value::Null,
                        vec![Amf0Value::object([(
                            "code",
                            Amf0Value::String("NetConnection.Call.Failed".into()),
                        )])],
                        0,
                    );
                }
                events.push(SessionEvent::Unhandled {
                    description: format!("command {}", clip(name)),
                });
            }
        }
    }

    fn finish_all(&mut self, events: &mut Vec<SessionEvent>) {
        for (id, accepted) in std::mem::take(&mut self.publishing) {
            if accepted {
                events.push(SessionEvent::PublishFinished { stream_id: id });
            }
        }
    }
}

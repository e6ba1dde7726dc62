//! A publishing client session, sans-IO like the server's: used to test the server
//! session in memory and to drive load tests.

use bytes::{Bytes, BytesMut};

use super::amf0::Amf0Value;
use super::chunk::{ChunkDecoder, ChunkEncoder};
use super::handshake::ClientHandshake;
use super::message::Message;
use super::outbox::Outbox;
use super::session::SessionError;

/// What the client session reports.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// Bytes to write to the server.
    Send(Bytes),
    /// connect succeeded.
    Connected,
    /// The server accepted the publish (NetStream.Publish.Start).
    PublishAccepted,
    /// The server refused the publish; the status code.
    PublishRejected(String),
}

/// Client side of a publishing connection.
#[derive(Debug)]
pub struct ClientSession {
    handshake: Option<ClientHandshake>,
    decoder: ChunkDecoder,
    outbox: Outbox,
    app: String,
    stream_key: String,
    stream_id: u32,
    /// FourCCs to announce as Enhanced RTMP (`fourCcList`, `capsEx`) in connect; none:
    /// a legacy connect.
    fourccs: Vec<String>,
    /// The properties object of the server's connect `_result`.
    server_properties: Option<Amf0Value>,
}

impl ClientSession {
    /// A client that will publish `stream_key` in `app`; returns it with C0+C1 to send.
    pub fn new(app: &str, stream_key: &str, digest: bool, chunk_size: usize) -> (Self, Bytes) {
        let (hs, c0c1) = ClientHandshake::start(digest);
        let mut outbox = Outbox::default();
        outbox.set_chunk_size(chunk_size);
        let s = ClientSession {
            handshake: Some(hs),
            decoder: ChunkDecoder::new(),
            outbox,
            app: app.to_string(),
            stream_key: stream_key.to_string(),
            stream_id: 0,
            fourccs: Vec::new(),
            server_properties: None,
        };
        (s, c0c1)
    }

    /// Announces Enhanced RTMP in connect: `fourCcList` with `fourccs` and `capsEx`
    /// (Multitrack | ModEx), as ffmpeg and OBS do.
    pub fn enhanced(mut self, fourccs: &[&str]) -> Self {
        self.fourccs = fourccs.iter().map(|f| f.to_string()).collect();
        self
    }

    /// The server's connect `_result` properties (its capabilities), once connected.
    pub fn server_properties(&self) -> Option<&Amf0Value> {
        self.server_properties.as_ref()
    }

    /// The stream id the server gave us.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Feeds server bytes.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Vec<ClientEvent>, SessionError> {
        let mut events = Vec::new();
        if let Some(hs) = self.handshake.as_mut() {
            let Some((c2, rest)) = hs.process(input) else {
                return Ok(events);
            };
            self.handshake = None;
            events.push(ClientEvent::Send(c2));
            // Our chunk size first, so large messages go out in few chunks.
            let size = self.outbox.chunk_size() as u32;
            // Set Chunk Size itself travels at the default chunk size.
            let mut announce = BytesMut::new();
            ChunkEncoder::default()
                .encode(&Message::SetChunkSize(size).encode(0, 0), &mut announce);
            events.push(ClientEvent::Send(announce.freeze()));
            let mut obj = Amf0Value::object([
                ("app", Amf0Value::String(self.app.clone())),
                ("type", Amf0Value::String("nonprivate".into())),
                (
                    "tcUrl",
                    Amf0Value::String(format!("rtmp://localhost/{}", self.app)),
                ),
            ]);
            if let (Amf0Value::Object(props), false) = (&mut obj, self.fourccs.is_empty()) {
                let list = self.fourccs.iter().cloned().map(Amf0Value::String);
                props.push(("fourCcList".into(), Amf0Value::StrictArray(list.collect())));
                props.push(("capsEx".into(), Amf0Value::Number(6.0)));
            }
            self.outbox.command("connect", 1.0, obj, vec![], 0);
            self.decoder.push_bytes(rest);
        } else {
            self.decoder.push(input);
        }
        while let Some(raw) = self.decoder.next_message()? {
            if let Message::Command {
                name,
                transaction,
                object,
                args,
            } = Message::decode(&raw)?
            {
                let code = args
                    .iter()
                    .find_map(|a| a.get("code"))
                    .and_then(Amf0Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match (name.as_str(), transaction as u32) {
                    ("_result", 1) => {
                        self.server_properties = Some(object);
                        events.push(ClientEvent::Connected);
                        let key = Amf0Value::String(self.stream_key.clone());
                        self.outbox.command(
                            "releaseStream",
                            2.0,
                            Amf0Value::Null,
                            vec![key.clone()],
                            0,
                        );
                        self.outbox
                            .command("FCPublish", 3.0, Amf0Value::Null, vec![key], 0);
                        self.outbox
                            .command("createStream", 4.0, Amf0Value::Null, vec![], 0);
                    }
                    ("_result", 4) => {
                        self.stream_id =
                            args.first().and_then(Amf0Value::as_f64).unwrap_or(1.0) as u32;
                        let args = vec![
                            Amf0Value::String(self.stream_key.clone()),
                            Amf0Value::String("live".into()),
                        ];
                        self.outbox
                            .command("publish", 5.0, Amf0Value::Null, args, self.stream_id);
                    }
                    ("onStatus", _) if code == "NetStream.Publish.Start" => {
                        events.push(ClientEvent::PublishAccepted)
                    }
                    ("onStatus", _) if code.starts_with("NetStream.Publish.") => {
                        events.push(ClientEvent::PublishRejected(code))
                    }
                    _ => {}
                }
            }
        }
        events.extend(self.outbox.take().map(ClientEvent::Send));
        Ok(events)
    }

    /// Bytes of one video message.
    pub fn video(&mut self, timestamp: u32, body: Bytes) -> Bytes {
        self.outbox
            .send(Message::Video(body), self.stream_id, timestamp);
        self.outbox.take().unwrap_or_default()
    }

    /// Bytes of one audio message.
    pub fn audio(&mut self, timestamp: u32, body: Bytes) -> Bytes {
        self.outbox
            .send(Message::Audio(body), self.stream_id, timestamp);
        self.outbox.take().unwrap_or_default()
    }

    /// Bytes of @setDataFrame onMetaData.
    pub fn metadata(&mut self, data: Amf0Value) -> Bytes {
        let values = vec![
            Amf0Value::String("@setDataFrame".into()),
            Amf0Value::String("onMetaData".into()),
            data,
        ];
        self.outbox.send(Message::Data(values), self.stream_id, 0);
        self.outbox.take().unwrap_or_default()
    }

    /// Bytes of FCUnpublish + deleteStream.
    pub fn unpublish(&mut self) -> Bytes {
        self.outbox.command(
            "FCUnpublish",
            6.0,
            Amf0Value::Null,
            vec![Amf0Value::String(self.stream_key.clone())],
            0,
        );
        self.outbox.command(
            "deleteStream",
            7.0,
            Amf0Value::Null,
            vec![Amf0Value::Number(f64::from(self.stream_id))],
            0,
        );
        self.outbox.take().unwrap_or_default()
    }
}

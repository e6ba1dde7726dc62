//! A publishing client session, sans-IO like the server's: used to test the server
//! session in memory and to drive load tests.

use bytes::{Bytes, BytesMut};

use super::amf0::Amf0Value;
use super::chunk::{ChunkDecoder, ChunkEncoder};
use super::handshake::ClientHandshake;
use super::message::Message;
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
    encoder: ChunkEncoder,
    app: String,
    stream_key: String,
    stream_id: u32,
    out: BytesMut,
}

impl ClientSession {
    /// A client that will publish `stream_key` in `app`; returns it with C0+C1 to send.
    pub fn new(app: &str, stream_key: &str, digest: bool, chunk_size: usize) -> (Self, Bytes) {
        let (hs, c0c1) = ClientHandshake::start(digest);
        let mut encoder = ChunkEncoder::default();
        encoder.set_chunk_size(chunk_size);
        let s = ClientSession {
            handshake: Some(hs),
            decoder: ChunkDecoder::new(),
            encoder,
            app: app.to_string(),
            stream_key: stream_key.to_string(),
            stream_id: 0,
            out: BytesMut::new(),
        };
        (s, c0c1)
    }

    /// The stream id the server gave us.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    fn send(&mut self, msg: Message, stream_id: u32, timestamp: u32) {
        let raw = msg.encode(stream_id, timestamp);
        self.encoder.encode(&raw, &mut self.out);
    }

    fn command(
        &mut self,
        name: &str,
        tx: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) {
        self.send(
            Message::Command {
                name: name.into(),
                transaction: tx,
                object,
                args,
            },
            stream_id,
            0,
        );
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
            let size = self.encoder.chunk_size() as u32;
            self.out.extend_from_slice(&{
                let mut b = BytesMut::new();
                ChunkEncoder::default().encode(&Message::SetChunkSize(size).encode(0, 0), &mut b);
                b
            });
            let obj = Amf0Value::object([
                ("app", Amf0Value::String(self.app.clone())),
                ("type", Amf0Value::String("nonprivate".into())),
                (
                    "tcUrl",
                    Amf0Value::String(format!("rtmp://localhost/{}", self.app)),
                ),
            ]);
            self.command("connect", 1.0, obj, vec![], 0);
            self.decoder.push_bytes(rest);
        } else {
            self.decoder.push(input);
        }
        while let Some(raw) = self.decoder.next_message()? {
            if let Message::Command {
                name,
                transaction,
                args,
                ..
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
                        events.push(ClientEvent::Connected);
                        let key = Amf0Value::String(self.stream_key.clone());
                        self.command("releaseStream", 2.0, Amf0Value::Null, vec![key.clone()], 0);
                        self.command("FCPublish", 3.0, Amf0Value::Null, vec![key], 0);
                        self.command("createStream", 4.0, Amf0Value::Null, vec![], 0);
                    }
                    ("_result", 4) => {
                        self.stream_id =
                            args.first().and_then(Amf0Value::as_f64).unwrap_or(1.0) as u32;
                        let args = vec![
                            Amf0Value::String(self.stream_key.clone()),
                            Amf0Value::String("live".into()),
                        ];
                        self.command("publish", 5.0, Amf0Value::Null, args, self.stream_id);
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
        if !self.out.is_empty() {
            events.push(ClientEvent::Send(self.out.split().freeze()));
        }
        Ok(events)
    }

    /// Bytes of one video message.
    pub fn video(&mut self, timestamp: u32, body: Bytes) -> Bytes {
        self.send(Message::Video(body), self.stream_id, timestamp);
        self.out.split().freeze()
    }

    /// Bytes of one audio message.
    pub fn audio(&mut self, timestamp: u32, body: Bytes) -> Bytes {
        self.send(Message::Audio(body), self.stream_id, timestamp);
        self.out.split().freeze()
    }

    /// Bytes of @setDataFrame onMetaData.
    pub fn metadata(&mut self, data: Amf0Value) -> Bytes {
        let values = vec![
            Amf0Value::String("@setDataFrame".into()),
            Amf0Value::String("onMetaData".into()),
            data,
        ];
        self.send(Message::Data(values), self.stream_id, 0);
        self.out.split().freeze()
    }

    /// Bytes of FCUnpublish + deleteStream.
    pub fn unpublish(&mut self) -> Bytes {
        self.command(
            "FCUnpublish",
            6.0,
            Amf0Value::Null,
            vec![Amf0Value::String(self.stream_key.clone())],
            0,
        );
        self.command(
            "deleteStream",
            7.0,
            Amf0Value::Null,
            vec![Amf0Value::Number(f64::from(self.stream_id))],
            0,
        );
        self.out.split().freeze()
    }
}

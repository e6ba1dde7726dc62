//! Typed RTMP messages (RTMP 1.0 §5.4, §6, §7) to and from [`RawMessage`]s.

use bytes::{BufMut, Bytes, BytesMut};

use super::amf0::{Amf0Error, Amf0Value};
use super::chunk::RawMessage;

/// User Control event types (§6.2).
pub mod user_control {
    /// The stream is ready for use.
    pub const STREAM_BEGIN: u16 = 0;
    /// Playback ended.
    pub const STREAM_EOF: u16 = 1;
    /// The client's buffer length.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// Ping from the server.
    pub const PING_REQUEST: u16 = 6;
    /// Answer to a ping.
    pub const PING_RESPONSE: u16 = 7;
}

/// One RTMP message, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// 1: Set Chunk Size.
    SetChunkSize(u32),
    /// 2: Abort Message on a chunk stream.
    Abort(u32),
    /// 3: Acknowledgement of bytes received.
    Acknowledgement(u32),
    /// 4: User Control event with its data.
    UserControl {
        /// Event type (see [`user_control`]).
        event: u16,
        /// Event data (stream id, timestamp...).
        data: Bytes,
    },
    /// 5: Window Acknowledgement Size.
    WindowAckSize(u32),
    /// 6: Set Peer Bandwidth.
    SetPeerBandwidth {
        /// Window size.
        size: u32,
        /// 0 hard, 1 soft, 2 dynamic.
        limit: u8,
    },
    /// 8: audio data (an FLV audio tag body).
    Audio(Bytes),
    /// 9: video data (an FLV video tag body).
    Video(Bytes),
    /// 18/15: data message (e.g. @setDataFrame).
    Data(Vec<Amf0Value>),
    /// 20/17: command (connect, publish...).
    Command {
        /// Command name.
        name: String,
        /// Transaction id.
        transaction: f64,
        /// Command object (often Null).
        object: Amf0Value,
        /// Further arguments.
        args: Vec<Amf0Value>,
    },
    /// Anything else (aggregate, shared object...), kept for logs.
    Unknown(u8),
}

/// Why a message body could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MessageError {
    /// A control message shorter than its fixed layout.
    #[error("message type {0} is too short")]
    Short(u8),
    /// A command or data message with bad AMF0.
    #[error("bad AMF0 in message type {0}: {1}")]
    Amf(u8, Amf0Error),
    /// A command without a name and transaction id.
    #[error("command message without name and transaction id")]
    BadCommand,
}

fn u32_at(p: &[u8], t: u8) -> Result<u32, MessageError> {
    p.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(MessageError::Short(t))
}

impl Message {
    /// Decodes a raw message.
    pub fn decode(raw: &RawMessage) -> Result<Message, MessageError> {
        let p = &raw.payload[..];
        let t = raw.type_id;
        Ok(match t {
            1 => Message::SetChunkSize(u32_at(p, t)? & 0x7FFF_FFFF),
            2 => Message::Abort(u32_at(p, t)?),
            3 => Message::Acknowledgement(u32_at(p, t)?),
            4 => {
                if p.len() < 2 {
                    return Err(MessageError::Short(t));
                }
                Message::UserControl {
                    event: u16::from_be_bytes([p[0], p[1]]),
                    data: raw.payload.slice(2..),
                }
            }
            5 => Message::WindowAckSize(u32_at(p, t)?),
            6 => Message::SetPeerBandwidth {
                size: u32_at(p, t)?,
                limit: p.get(4).copied().unwrap_or(2),
            },
            8 => Message::Audio(raw.payload.clone()),
            9 => Message::Video(raw.payload.clone()),
            15 | 18 => {
                // AMF3 data messages start with a format byte and then carry AMF0.
                let body = if t == 15 && p.first() == Some(&0) {
                    &p[1..]
                } else {
                    p
                };
                Message::Data(Amf0Value::decode_all(body).map_err(|e| MessageError::Amf(t, e))?)
            }
            17 | 20 => {
                let body = if t == 17 && p.first() == Some(&0) {
                    &p[1..]
                } else {
                    p
                };
                let mut values = Amf0Value::decode_all(body)
                    .map_err(|e| MessageError::Amf(t, e))?
                    .into_iter();
                let name = match values.next() {
                    Some(Amf0Value::String(s)) => s,
                    _ => return Err(MessageError::BadCommand),
                };
                let transaction = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
                let object = values.next().unwrap_or(Amf0Value::Null);
                Message::Command {
                    name,
                    transaction,
                    object,
                    args: values.collect(),
                }
            }
            other => Message::Unknown(other),
        })
    }

    /// Encodes into a raw message on the conventional chunk stream for its kind.
    pub fn encode(&self, stream_id: u32, timestamp: u32) -> RawMessage {
        let mut p = BytesMut::new();
        let (csid, type_id) = match self {
            Message::SetChunkSize(v) => (2, put_u32(&mut p, *v, 1)),
            Message::Abort(v) => (2, put_u32(&mut p, *v, 2)),
            Message::Acknowledgement(v) => (2, put_u32(&mut p, *v, 3)),
            Message::UserControl { event, data } => {
                p.put_u16(*event);
                p.put_slice(data);
                (2, 4)
            }
            Message::WindowAckSize(v) => (2, put_u32(&mut p, *v, 5)),
            Message::SetPeerBandwidth { size, limit } => {
                p.put_u32(*size);
                p.put_u8(*limit);
                (2, 6)
            }
            Message::Audio(b) => {
                p.put_slice(b);
                (4, 8)
            }
            Message::Video(b) => {
                p.put_slice(b);
                (6, 9)
            }
            Message::Data(values) => {
                for v in values {
                    v.encode(&mut p);
                }
                (5, 18)
            }
            Message::Command {
                name,
                transaction,
                object,
                args,
            } => {
                Amf0Value::String(name.clone()).encode(&mut p);
                Amf0Value::Number(*transaction).encode(&mut p);
                object.encode(&mut p);
                for a in args {
                    a.encode(&mut p);
                }
                (3, 20)
            }
            Message::Unknown(t) => (3, *t),
        };
        let stream_id = if csid == 2 { 0 } else { stream_id };
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: p.freeze(),
        }
    }
}

fn put_u32(p: &mut BytesMut, v: u32, type_id: u8) -> u8 {
    p.put_u32(v);
    type_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = vec![
            Message::SetChunkSize(4096),
            Message::Abort(5),
            Message::Acknowledgement(123),
            Message::UserControl {
                event: user_control::PING_REQUEST,
                data: Bytes::from_static(&[0, 0, 0, 9]),
            },
            Message::WindowAckSize(2_500_000),
            Message::SetPeerBandwidth {
                size: 2_500_000,
                limit: 2,
            },
            Message::Audio(Bytes::from_static(&[0xAF, 1])),
            Message::Video(Bytes::from_static(&[0x17, 1])),
            Message::Data(vec![
                Amf0Value::String("@setDataFrame".into()),
                Amf0Value::Null,
            ]),
            Message::Command {
                name: "connect".into(),
                transaction: 1.0,
                object: Amf0Value::object([("app", Amf0Value::String("live".into()))]),
                args: vec![],
            },
        ];
        for m in cases {
            let raw = m.encode(1, 0);
            assert_eq!(Message::decode(&raw).unwrap(), m);
        }
    }

    #[test]
    fn amf3_command_and_errors() {
        let mut raw = Message::Command {
            name: "publish".into(),
            transaction: 5.0,
            object: Amf0Value::Null,
            args: vec![],
        }
        .encode(1, 0);
        let mut p = vec![0u8];
        p.extend_from_slice(&raw.payload);
        raw.payload = Bytes::from(p);
        raw.type_id = 17;
        assert!(
            matches!(Message::decode(&raw).unwrap(), Message::Command { name, .. } if name == "publish")
        );
        let short = RawMessage {
            csid: 2,
            timestamp: 0,
            type_id: 1,
            stream_id: 0,
            payload: Bytes::from_static(&[0]),
        };
        assert_eq!(Message::decode(&short), Err(MessageError::Short(1)));
        let bad = RawMessage {
            csid: 3,
            timestamp: 0,
            type_id: 20,
            stream_id: 0,
            payload: Bytes::from_static(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
        };
        assert_eq!(Message::decode(&bad), Err(MessageError::BadCommand));
        let unknown = RawMessage {
            csid: 3,
            timestamp: 0,
            type_id: 22,
            stream_id: 0,
            payload: Bytes::new(),
        };
        assert_eq!(Message::decode(&unknown), Ok(Message::Unknown(22)));
    }
}

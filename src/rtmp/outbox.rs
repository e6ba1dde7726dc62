//! The outgoing half shared by the server and client sessions: typed messages are
//! chunked into one buffer that the driver drains after each round of input.

use bytes::{Bytes, BytesMut};

use super::amf0::Amf0Value;
use super::chunk::ChunkEncoder;
use super::message::Message;

/// Messages waiting to be written, already chunked.
#[derive(Debug, Default)]
pub struct Outbox {
    encoder: ChunkEncoder,
    buf: BytesMut,
}

impl Outbox {
    /// The outgoing chunk size in force.
    pub fn chunk_size(&self) -> usize {
        self.encoder.chunk_size()
    }

    /// Changes the outgoing chunk size; announce it with Set Chunk Size first.
    pub fn set_chunk_size(&mut self, size: usize) {
        self.encoder.set_chunk_size(size);
    }

    /// Queues `msg` on `stream_id` at `timestamp`.
    pub fn send(&mut self, msg: Message, stream_id: u32, timestamp: u32) {
        self.encoder
            .encode(&msg.encode(stream_id, timestamp), &mut self.buf);
    }

    /// Queues an AMF0 command.
    pub fn command(
        &mut self,
        name: &str,
        transaction: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) {
        let msg = Message::Command {
            name: name.into(),
            transaction,
            object,
            args,
        };
        self.send(msg, stream_id, 0);
    }

    /// Everything queued so far, if anything.
    pub fn take(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }
}

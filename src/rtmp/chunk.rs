//! The RTMP chunk stream (RTMP 1.0 §5.3): messages are cut into chunks with compressed
//! headers and interleaved across chunk stream ids.
//!
//! Timestamps follow the spec as ffmpeg reads and writes it: format 0 carries an absolute
//! timestamp, formats 1 and 2 a delta, and a format-3 chunk that starts a new message
//! repeats the previous timestamp field as a delta.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::config::LimitsConfig;
use crate::limit::{Limit, LimitExceeded};

/// Default chunk size before any Set Chunk Size.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Chunk streams one connection may use. Encoders use a handful; the cap stops a client
/// from spreading partial messages over thousands of ids to exhaust memory.
pub const MAX_CHUNK_STREAMS: usize = 64;
const EXTENDED: u32 = 0x00FF_FFFF;

/// A reassembled RTMP message.
#[derive(Clone, Debug, PartialEq)]
pub struct RawMessage {
    /// Chunk stream id it arrived on (or is to be sent on).
    pub csid: u32,
    /// Timestamp in milliseconds (32-bit, wraps).
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The payload.
    pub payload: Bytes,
}

/// Why the chunk stream could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChunkError {
    /// A format 1/2/3 chunk on a chunk stream that never had a format 0 header.
    #[error("chunk stream {0} continues a header it never sent")]
    NoPreviousHeader(u32),
    /// A declared message length or the connection's unfinished bytes over budget.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// Set Chunk Size with 0 or the high bit set.
    #[error("invalid chunk size {0}")]
    BadChunkSize(u32),
    /// More chunk streams than [`MAX_CHUNK_STREAMS`].
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams on one connection")]
    TooManyStreams,
    /// A message header changed length in the middle of a message.
    #[error("chunk stream {0} started a new message header in the middle of a message")]
    HeaderMidMessage(u32),
}

#[derive(Debug, Default)]
struct StreamState {
    timestamp: u32,
    /// The last timestamp field (absolute for format 0, delta otherwise).
    ts_field: u32,
    extended: bool,
    length: usize,
    type_id: u8,
    stream_id: u32,
    started: bool,
    partial: BytesMut,
}

/// Reassembles messages from chunk stream bytes; keeps state across calls.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: usize,
    streams: HashMap<u32, StreamState>,
    /// Largest message length a header may declare.
    message_bytes: usize,
    /// Budget for partial messages over all chunk streams (`unfinished`).
    unfinished_bytes: usize,
    /// Bytes of partial messages held now, over all chunk streams.
    unfinished: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    /// A decoder at the default chunk size with the default budgets.
    pub fn new() -> Self {
        Self::with_limits(&LimitsConfig::default())
    }

    /// A decoder enforcing `limits.message_bytes` and `limits.unfinished_bytes`.
    pub fn with_limits(limits: &LimitsConfig) -> Self {
        ChunkDecoder {
            buf: BytesMut::with_capacity(64 * 1024),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            message_bytes: limits.message_bytes,
            unfinished_bytes: limits.unfinished_bytes,
            unfinished: 0,
        }
    }

    /// Bytes of partial messages held now, over all chunk streams.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// The incoming chunk size in force.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Appends received bytes without copying when possible.
    pub fn push_bytes(&mut self, data: BytesMut) {
        if self.buf.is_empty() {
            self.buf = data;
        } else {
            self.buf.extend_from_slice(&data);
        }
    }

    /// The next complete message, or `None` until more bytes arrive. Set Chunk Size and
    /// Abort take effect here, before the next chunk is read, and are returned too.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            let Some(msg) = self.next_chunk()? else {
                return Ok(None);
            };
            let Some(msg) = msg else { continue };
            if msg.stream_id == 0 && msg.payload.len() >= 4 {
                let value = u32::from_be_bytes([
                    msg.payload[0],
                    msg.payload[1],
                    msg.payload[2],
                    msg.payload[3],
                ]);
                match msg.type_id {
                    1 => {
                        if value == 0 || value > 0x7FFF_FFFF {
                            return Err(ChunkError::BadChunkSize(value));
                        }
                        self.chunk_size = value as usize;
                    }
                    2 => {
                        if let Some(s) = self.streams.get_mut(&value) {
                            self.unfinished -= s.partial.len();
                            s.partial = BytesMut::new();
                            s.started = false;
                        }
                    }
                    _ => {}
                }
            }
            return Ok(Some(msg));
        }
    }

    /// Reads one chunk if it is complete: `None` = need more bytes, `Some(None)` = chunk
    /// consumed but its message is not complete yet.
    fn next_chunk(&mut self) -> Result<Option<Option<RawMessage>>, ChunkError> {
        let b = &self.buf[..];
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3F {
            0 if b.len() >= 2 => (64 + u32::from(b[1]), 2),
            1 if b.len() >= 3 => (64 + u32::from(b[1]) + 256 * u32::from(b[2]), 3),
            0 | 1 => return Ok(None),
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let h = &b[pos..pos + header_len];
        pos += header_len;
        let u24 = |x: &[u8]| (u32::from(x[0]) << 16) | (u32::from(x[1]) << 8) | u32::from(x[2]);
        if !self.streams.contains_key(&csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkError::TooManyStreams);
        }
        let state = self.streams.entry(csid).or_default();
        if fmt != 0 && state.length == 0 && !state.started && state.type_id == 0 {
            return Err(ChunkError::NoPreviousHeader(csid));
        }
        let mid_message = state.started;
        let field = if fmt < 3 { Some(u24(&h[0..3])) } else { None };
        let extended = match field {
            Some(f) => f == EXTENDED,
            None => state.extended,
        };
        let mut ext_value = None;
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            let v = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            // Continuation chunks repeat the extended timestamp (as ffmpeg and librtmp send
            // it); some encoders omit it, so only skip the 4 bytes when they match.
            if fmt < 3 || !mid_message || v == state.ts_field {
                ext_value = Some(v);
                pos += 4;
            }
        }
        let length = if fmt <= 1 {
            u24(&h[3..6]) as usize
        } else {
            state.length
        };
        LimitExceeded::check(Limit::MessageBytes, length, self.message_bytes)?;
        let have = if mid_message { state.partial.len() } else { 0 };
        if mid_message && fmt != 3 && length != state.length {
            return Err(ChunkError::HeaderMidMessage(csid));
        }
        let take = (length - have).min(self.chunk_size);
        // A chunk that leaves its message unfinished, or whose bytes must be waited for, is
        // charged first: bytes waited for sit in `buf`, and a large chunk size would
        // otherwise let them pile up there uncounted.
        if have + take < length || b.len() < pos + take {
            LimitExceeded::check(
                Limit::UnfinishedBytes,
                self.unfinished + take,
                self.unfinished_bytes,
            )?;
        }
        if b.len() < pos + take {
            return Ok(None);
        }
        // The whole chunk is here: commit the header.
        if !mid_message {
            let field = ext_value.or(field).unwrap_or(state.ts_field);
            match fmt {
                0 => state.timestamp = field,
                _ => state.timestamp = state.timestamp.wrapping_add(field),
            }
            state.ts_field = field;
            state.extended = extended;
            state.length = length;
            if fmt <= 1 {
                state.type_id = h[6];
            }
            if fmt == 0 {
                state.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
            }
        }
        self.buf.advance(pos);
        let data = self.buf.split_to(take);
        if !mid_message && take == length {
            // The common case (a message in one chunk): hand out the bytes without copying.
            return Ok(Some(Some(RawMessage {
                csid,
                timestamp: state.timestamp,
                type_id: state.type_id,
                stream_id: state.stream_id,
                payload: data.freeze(),
            })));
        }
        if !mid_message {
            // Grow with the bytes that actually arrive: the declared length is the peer's
            // claim, and reserving it up front would let a few headers reserve gigabytes.
            state.partial = BytesMut::with_capacity(length.min(64 * 1024));
            state.started = true;
        }
        state.partial.extend_from_slice(&data);
        self.unfinished += data.len();
        if state.partial.len() < length {
            return Ok(Some(None));
        }
        self.unfinished -= state.partial.len();
        state.started = false;
        Ok(Some(Some(RawMessage {
            csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload: std::mem::take(&mut state.partial).freeze(),
        })))
    }
}

/// Cuts messages into chunks: format 0 for the first chunk, format 3 after it.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: usize,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkEncoder {
    /// The outgoing chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Changes the outgoing chunk size (after sending Set Chunk Size).
    pub fn set_chunk_size(&mut self, size: usize) {
        self.chunk_size = size.max(1);
    }

    /// Appends the chunks of `msg` to `out`.
    pub fn encode(&self, msg: &RawMessage, out: &mut BytesMut) {
        let extended = msg.timestamp >= EXTENDED;
        let field = if extended { EXTENDED } else { msg.timestamp };
        out.reserve(msg.payload.len() + 18 + msg.payload.len() / self.chunk_size * 8);
        let basic = |out: &mut BytesMut, fmt: u8| match msg.csid {
            0..=1 => out.put_u8(fmt << 6 | 2),
            2..=63 => out.put_u8(fmt << 6 | msg.csid as u8),
            64..=319 => {
                out.put_u8(fmt << 6);
                out.put_u8((msg.csid - 64) as u8);
            }
            _ => {
                out.put_u8(fmt << 6 | 1);
                let v = (msg.csid - 64).min(0xFFFF);
                out.put_u8(v as u8);
                out.put_u8((v >> 8) as u8);
            }
        };
        basic(out, 0);
        out.put_uint(u64::from(field), 3);
        out.put_uint(msg.payload.len() as u64, 3);
        out.put_u8(msg.type_id);
        out.put_u32_le(msg.stream_id);
        if extended {
            out.put_u32(msg.timestamp);
        }
        let mut chunks = msg.payload.chunks(self.chunk_size);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for c in chunks {
            basic(out, 3);
            if extended {
                out.put_u32(msg.timestamp);
            }
            out.put_slice(c);
        }
    }
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;

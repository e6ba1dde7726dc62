//! The chunk stream decoder: the same bytes fed in one read and in reads of a size the
//! input picks must give the same messages and the same error; every decoded message
//! re-encoded must decode to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use packgate::config::LimitsConfig;
use packgate::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, RawMessage};

fn decode(data: &[u8], step: usize) -> (Vec<RawMessage>, Option<ChunkError>) {
    let mut decoder = ChunkDecoder::new();
    let mut messages = Vec::new();
    for piece in data.chunks(step) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= LimitsConfig::default().message_bytes);
                    messages.push(m);
                }
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((&step, data)) = input.split_first() else {
        return;
    };
    let whole = decode(data, data.len().max(1));
    let split = decode(data, usize::from(step).max(1));
    assert_eq!(whole, split, "the read size changed what was decoded");

    // Round trip on a fresh decoder: control messages on stream 0 change the decoder's
    // state (chunk size, abort), so only the others are comparable.
    let mut encoder = ChunkEncoder::default();
    encoder.set_chunk_size(usize::from(step) * 16 + 1);
    for m in whole.0.iter().take(8) {
        if m.stream_id == 0 && matches!(m.type_id, 1 | 2) || m.csid < 2 {
            continue;
        }
        let mut out = BytesMut::new();
        encoder.encode(m, &mut out);
        // The decoder starts at the default chunk size: announce the encoder's first.
        let mut fresh = ChunkDecoder::new();
        let mut announce = BytesMut::new();
        ChunkEncoder::default().encode(
            &RawMessage {
                csid: 2,
                timestamp: 0,
                type_id: 1,
                stream_id: 0,
                payload: (encoder.chunk_size() as u32).to_be_bytes().to_vec().into(),
            },
            &mut announce,
        );
        fresh.push(&announce[..]);
        fresh.push(&out[..]);
        assert_eq!(fresh.next_message().unwrap().unwrap().type_id, 1);
        let back = fresh.next_message().unwrap().expect("one whole message");
        assert_eq!(&back, m, "re-encoded message decodes to itself");
    }
});

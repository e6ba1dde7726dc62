//! Unit tests of the chunk stream.

use super::*;

fn msg(csid: u32, ts: u32, type_id: u8, len: usize) -> RawMessage {
    RawMessage {
        csid,
        timestamp: ts,
        type_id,
        stream_id: 1,
        payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
    }
}

fn decode_all(d: &mut ChunkDecoder) -> Vec<RawMessage> {
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn round_trip_all_csid_sizes_and_splits() {
    let msgs = vec![
        msg(3, 0, 20, 300),
        msg(63, 40, 9, 5000),
        msg(64, 41, 8, 10),
        msg(319, 42, 9, 129),
        msg(320, 43, 9, 1),
        msg(65_599, 44, 9, 256),
    ];
    let mut enc = ChunkEncoder::default();
    enc.set_chunk_size(128);
    let mut wire = BytesMut::new();
    for m in &msgs {
        enc.encode(m, &mut wire);
    }
    // Whole, byte by byte, and in odd splits: always the same messages.
    for split in [wire.len(), 1, 7, 130] {
        let mut d = ChunkDecoder::new();
        let mut got = Vec::new();
        for part in wire.chunks(split) {
            d.push(part);
            got.extend(decode_all(&mut d));
        }
        assert_eq!(got, msgs, "split {split}");
    }
}

#[test]
fn header_formats_1_2_3_accumulate_deltas() {
    let mut wire = vec![];
    // fmt 0: csid 4, ts 1000, len 2, type 8, stream 1
    wire.extend_from_slice(&[0x04, 0x00, 0x03, 0xE8, 0, 0, 2, 8, 1, 0, 0, 0, 0xAA, 0xBB]);
    // fmt 1: delta 23, len 1, type 9
    wire.extend_from_slice(&[0x44, 0, 0, 23, 0, 0, 1, 9, 0xCC]);
    // fmt 2: delta 10 (same length/type)
    wire.extend_from_slice(&[0x84, 0, 0, 10, 0xDD]);
    // fmt 3: new message, reuses delta 10
    wire.extend_from_slice(&[0xC4, 0xEE]);
    let mut d = ChunkDecoder::new();
    d.push(&wire);
    let got = decode_all(&mut d);
    let ts: Vec<_> = got
        .iter()
        .map(|m| (m.timestamp, m.type_id, m.stream_id, m.payload.len()))
        .collect();
    assert_eq!(
        ts,
        vec![
            (1000, 8, 1, 2),
            (1023, 9, 1, 1),
            (1033, 9, 1, 1),
            (1043, 9, 1, 1)
        ]
    );
}

#[test]
fn extended_timestamps_including_continuations() {
    let m = msg(6, 0x0100_0000, 9, 300);
    let mut wire = BytesMut::new();
    ChunkEncoder::default().encode(&m, &mut wire);
    // fmt 0 header + 4 ext + 128, then two fmt-3 chunks each with 4 ext bytes.
    assert_eq!(wire.len(), 12 + 4 + 300 + 2 * (1 + 4));
    let mut d = ChunkDecoder::new();
    d.push(&wire);
    assert_eq!(decode_all(&mut d), vec![m.clone()]);

    // A sender that omits the extended timestamp on continuation chunks.
    let mut omit = wire[..12 + 4 + 128].to_vec();
    omit.push(0xC6);
    omit.extend_from_slice(&m.payload[128..256]);
    omit.push(0xC6);
    omit.extend_from_slice(&m.payload[256..]);
    let mut d = ChunkDecoder::new();
    d.push(&omit);
    assert_eq!(decode_all(&mut d), vec![m]);
}

#[test]
fn set_chunk_size_applies_to_following_chunks_and_abort_drops_partial() {
    let mut enc = ChunkEncoder::default();
    let mut wire = BytesMut::new();
    enc.encode(
        &RawMessage {
            csid: 2,
            timestamp: 0,
            type_id: 1,
            stream_id: 0,
            payload: Bytes::from_static(&[0, 0, 0x10, 0]),
        },
        &mut wire,
    );
    enc.set_chunk_size(4096);
    let big = msg(5, 7, 9, 3000);
    enc.encode(&big, &mut wire);
    let mut d = ChunkDecoder::new();
    d.push(&wire);
    let got = decode_all(&mut d);
    assert_eq!(d.chunk_size(), 4096);
    assert_eq!(got[1], big);

    // Half a message on csid 5, then Abort(5), then a fresh message on csid 5.
    let mut d = ChunkDecoder::new();
    let mut wire = BytesMut::new();
    ChunkEncoder::default().encode(&msg(5, 1, 9, 200), &mut wire);
    wire.truncate(12 + 128);
    ChunkEncoder::default().encode(
        &RawMessage {
            csid: 2,
            timestamp: 0,
            type_id: 2,
            stream_id: 0,
            payload: Bytes::from_static(&[0, 0, 0, 5]),
        },
        &mut wire,
    );
    let fresh = msg(5, 9, 8, 20);
    ChunkEncoder::default().encode(&fresh, &mut wire);
    d.push(&wire);
    let got = decode_all(&mut d);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], fresh);
}

#[test]
fn declared_lengths_do_not_reserve_memory_and_streams_are_capped() {
    let mut d = ChunkDecoder::new();
    let mut wire = Vec::new();
    for csid in 3..(3 + MAX_CHUNK_STREAMS as u32 + 1) {
        // fmt 0 with a 2-byte basic header (csid ≥ 64 needs it), 8 MiB - 1 declared,
        // one chunk of 128 bytes sent.
        wire.extend_from_slice(&[0x00, (csid + 64 - 64) as u8]);
        wire.extend_from_slice(&[0, 0, 0, 0x7F, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(&[0u8; 128]);
    }
    d.push(&wire);
    let mut result = Ok(None);
    for _ in 0..(MAX_CHUNK_STREAMS + 1) {
        result = d.next_message();
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ChunkError::TooManyStreams));
    let reserved: usize = d.streams.values().map(|s| s.partial.capacity()).sum();
    assert!(
        reserved <= MAX_CHUNK_STREAMS * 64 * 1024,
        "reserved {reserved} bytes for 8 KiB of input"
    );
}

/// fmt 0 on `csid` (2..=63) declaring `len` bytes of video, then `body` bytes of it.
fn first_chunk(csid: u8, len: usize, body: usize) -> Vec<u8> {
    let l = (len as u32).to_be_bytes();
    let mut c = vec![csid, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0];
    c.extend(std::iter::repeat_n(7u8, body));
    c
}

#[test]
fn unfinished_bytes_are_budgeted_over_all_chunk_streams() {
    let limits = LimitsConfig {
        message_bytes: 100_000,
        unfinished_bytes: 300_000,
        ..LimitsConfig::default()
    };
    let mut d = ChunkDecoder::with_limits(&limits);
    // Set Chunk Size 65536, then 4 messages of 100 000 bytes each 65 536 in: the
    // fifth chunk would hold 327 680 unfinished bytes.
    d.push(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert!(d.next_message().unwrap().is_some());
    for csid in 3..8 {
        d.push(&first_chunk(csid, 100_000, 65_536));
    }
    let mut result = Ok(None);
    for _ in 0..10 {
        result = d.next_message();
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(ChunkError::Limit(LimitExceeded::new(
            Limit::UnfinishedBytes,
            5 * 65_536,
            300_000
        )))
    );
    assert_eq!(d.unfinished(), 4 * 65_536);

    // Finishing and aborting messages gives the budget back.
    let mut d = ChunkDecoder::with_limits(&limits);
    d.push(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 1, 0, 0]);
    d.next_message().unwrap();
    for round in 0..20 {
        d.push(&first_chunk(3, 100_000, 65_536));
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.unfinished(), 65_536);
        if round % 2 == 0 {
            d.push(&[0xC3]);
            d.push(&[7u8; 100_000 - 65_536]);
            assert_eq!(d.next_message().unwrap().unwrap().payload.len(), 100_000);
        } else {
            d.push(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
            assert_eq!(d.next_message().unwrap().unwrap().type_id, 2);
        }
        assert_eq!(d.unfinished(), 0);
    }

    // A declared length over message_bytes is refused at its header.
    let mut d = ChunkDecoder::with_limits(&limits);
    d.push(&first_chunk(3, 100_001, 0));
    assert!(matches!(
        d.next_message(),
        Err(ChunkError::Limit(LimitExceeded {
            limit: Limit::MessageBytes,
            ..
        }))
    ));
}

#[test]
fn errors_instead_of_panics() {
    let mut d = ChunkDecoder::new();
    d.push(&[0x43, 0, 0, 0, 0, 0, 1, 9]);
    assert_eq!(d.next_message(), Err(ChunkError::NoPreviousHeader(3)));
    let mut d = ChunkDecoder::new();
    d.push(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 0, 0, 0, 0]);
    assert_eq!(
        d.next_message(),
        Err(ChunkError::Limit(LimitExceeded::new(
            Limit::MessageBytes,
            0xFF_FFFF,
            8 << 20
        )))
    );
    let mut d = ChunkDecoder::new();
    d.push(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(d.next_message(), Err(ChunkError::BadChunkSize(0)));
    // Truncated input just waits.
    let mut d = ChunkDecoder::new();
    d.push(&[0x03, 0, 0, 0, 0, 0, 10, 9, 0, 0]);
    assert_eq!(d.next_message(), Ok(None));
    for seed in 0..200u32 {
        let garbage: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
            .collect();
        let mut d = ChunkDecoder::new();
        d.push(&garbage);
        while let Ok(Some(_)) = d.next_message() {}
    }
}

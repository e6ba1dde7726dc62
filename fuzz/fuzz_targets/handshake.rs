//! The server handshake (C0 C1 C2 in, S0 S1 S2 out) and the client side's reader, fed in
//! reads of a size the input picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packgate::rtmp::handshake::{find_digest, ClientHandshake, Handshake};

const PACKET: usize = 1536;
const PLAYER_KEY: &[u8] = b"Genuine Adobe Flash Player 001";

fuzz_target!(|input: &[u8]| {
    // The first byte is the read size (0 = everything in one read).
    let Some((&step, data)) = input.split_first() else {
        return;
    };
    let step = if step == 0 {
        data.len().max(1)
    } else {
        usize::from(step)
    };

    let mut server = Handshake::new();
    let mut fed = 0;
    let mut responses = 0;
    let mut done = false;
    for piece in data.chunks(step) {
        fed += piece.len();
        match server.process(piece) {
            Ok(out) => {
                if let Some(s) = out.send {
                    assert_eq!(s.len(), 1 + 2 * PACKET, "S0 S1 S2 in one piece");
                    assert_eq!(s[0], 3);
                    responses += 1;
                }
                if let Some(rest) = out.done {
                    assert!(!done, "the handshake finishes once");
                    done = true;
                    assert_eq!(
                        &rest[..],
                        &data[1 + 2 * PACKET..fed],
                        "leftover = what followed C2"
                    );
                }
            }
            Err(_) => {
                assert_ne!(data[0], 3, "only a wrong version is an error");
                return;
            }
        }
    }
    assert_eq!(
        responses,
        usize::from(data.len() > PACKET),
        "S0-S2 once C0 C1 are in"
    );
    assert_eq!(done, data.len() > 2 * PACKET);

    if data.len() >= PACKET {
        let _ = find_digest(&data[..PACKET], PLAYER_KEY);
    }
    let (mut client, c0c1) = ClientHandshake::start(step % 2 == 0);
    assert_eq!(c0c1.len(), 1 + PACKET);
    let mut got = None;
    for piece in data.chunks(step) {
        if let Some(out) = client.process(piece) {
            assert!(got.is_none(), "the client handshake finishes once");
            got = Some(out);
        }
    }
    if let Some((c2, _)) = got {
        assert_eq!(&c2[..], &data[1..1 + PACKET], "C2 echoes S1");
    }
});

//! The RTMP handshake: C0/C1/C2 ↔ S0/S1/S2, in the simple form and the digest ("complex")
//! form that Flash-era clients and some encoders use to check they talk to a real server.
//!
//! In the digest form C1 carries an HMAC-SHA256 digest, keyed with the well-known
//! "Genuine Adobe Flash Player 001" key, at a position derived from four offset bytes;
//! the server answers with an S1 digest keyed with the media-server key, and an S2 whose
//! last 32 bytes sign it with a key derived from the client's digest.

use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Size of C1/S1/C2/S2.
pub const PACKET: usize = 1536;
const DIGEST: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const PLAYER: &[u8] = b"Genuine Adobe Flash Player 001";
const SERVER: &[u8] = b"Genuine Adobe Flash Media Server 001";

fn full_key(prefix: &[u8]) -> Vec<u8> {
    [prefix, &KEY_TAIL].concat()
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    /// C0 asked for another protocol version (e.g. 6 = RTMPE, or not RTMP at all).
    #[error("unsupported RTMP version {0} in C0 (this is not a plain RTMP client)")]
    BadVersion(u8),
}

/// The two places a digest can sit in a 1536-byte packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// Key block first, digest block second (digest block starts at 772).
    Zero,
    /// Digest block first (starts at 8).
    One,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in `packet` for `schema`.
pub fn digest_offset(packet: &[u8], schema: Schema) -> usize {
    let block = match schema {
        Schema::Zero => 772,
        Schema::One => 8,
    };
    let sum: usize = packet[block..block + 4]
        .iter()
        .map(|b| usize::from(*b))
        .sum();
    block + 4 + sum % 728
}

fn digest_of(packet: &[u8], offset: usize, key: &[u8]) -> [u8; DIGEST] {
    hmac(key, &[&packet[..offset], &packet[offset + DIGEST..]])
}

/// Writes the digest for `key` into `packet` at the `schema` position.
pub fn sign(packet: &mut [u8], schema: Schema, key_prefix: &[u8]) -> [u8; DIGEST] {
    let offset = digest_offset(packet, schema);
    let d = digest_of(packet, offset, key_prefix);
    packet[offset..offset + DIGEST].copy_from_slice(&d);
    d
}

/// Finds a valid digest keyed with `key_prefix` in `packet`.
pub fn find_digest(packet: &[u8], key_prefix: &[u8]) -> Option<(Schema, [u8; DIGEST])> {
    [Schema::One, Schema::Zero].into_iter().find_map(|schema| {
        let offset = digest_offset(packet, schema);
        let expected = digest_of(packet, offset, key_prefix);
        (packet[offset..offset + DIGEST] == expected).then_some((schema, expected))
    })
}

/// The S2 signature for a client digest: HMAC over S2's first 1504 bytes.
pub fn response_signature(s2_body: &[u8], client_digest: &[u8], key: &[u8]) -> [u8; DIGEST] {
    let derived = hmac(key, &[client_digest]);
    hmac(&derived, &[s2_body])
}

fn random_packet() -> Vec<u8> {
    let mut p = vec![0u8; PACKET];
    rand::fill(&mut p[8..]);
    p
}

/// Progress of the server handshake.
#[derive(Debug, Default, PartialEq)]
pub struct HandshakeOutput {
    /// Bytes to send to the client.
    pub send: Option<Bytes>,
    /// Set once C2 arrived: the bytes that followed it (the start of the chunk stream).
    pub done: Option<BytesMut>,
}

#[derive(Debug, PartialEq)]
enum Stage {
    WaitC0C1,
    WaitC2,
    Done,
}

/// Server side of the handshake.
#[derive(Debug)]
pub struct Handshake {
    stage: Stage,
    buf: BytesMut,
    /// Whether the client used the digest form (for logs).
    pub digest: bool,
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshake {
    /// Waiting for C0 + C1.
    pub fn new() -> Self {
        Handshake {
            stage: Stage::WaitC0C1,
            buf: BytesMut::with_capacity(1 + PACKET),
            digest: false,
        }
    }

    /// Takes client bytes; returns what to send and, at the end, the leftover bytes.
    pub fn process(&mut self, input: &[u8]) -> Result<HandshakeOutput, HandshakeError> {
        self.buf.extend_from_slice(input);
        let mut out = HandshakeOutput::default();
        if self.stage == Stage::WaitC0C1 {
            if let Some(&version) = self.buf.first() {
                if version != 3 {
                    return Err(HandshakeError::BadVersion(version));
                }
            }
            if self.buf.len() < 1 + PACKET {
                return Ok(out);
            }
            let c0c1 = self.buf.split_to(1 + PACKET);
            out.send = Some(self.respond(&c0c1[1..]));
            self.stage = Stage::WaitC2;
        }
        if self.stage == Stage::WaitC2 && self.buf.len() >= PACKET {
            // C2 is not checked: many encoders send garbage there, and nothing depends on it.
            let _c2 = self.buf.split_to(PACKET);
            self.stage = Stage::Done;
            out.done = Some(std::mem::take(&mut self.buf));
        }
        Ok(out)
    }

    fn respond(&mut self, c1: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(1 + 2 * PACKET);
        out.extend_from_slice(&[3]);
        let client_version = &c1[4..8];
        let found = if client_version == [0, 0, 0, 0] {
            None
        } else {
            find_digest(c1, PLAYER)
        };
        match found {
            None => {
                // Simple form: S1 is random with a zero version, S2 echoes C1.
                let mut s1 = random_packet();
                s1[..8].fill(0);
                out.extend_from_slice(&s1);
                out.extend_from_slice(c1);
            }
            Some((schema, client_digest)) => {
                self.digest = true;
                let mut s1 = random_packet();
                s1[..4].fill(0);
                s1[4..8].copy_from_slice(&[0x04, 0x05, 0x00, 0x01]);
                sign(&mut s1, schema, SERVER);
                let mut s2 = random_packet();
                let sig =
                    response_signature(&s2[..PACKET - DIGEST], &client_digest, &full_key(SERVER));
                s2[PACKET - DIGEST..].copy_from_slice(&sig);
                out.extend_from_slice(&s1);
                out.extend_from_slice(&s2);
            }
        }
        out.freeze()
    }
}

/// Client side of the simple handshake, for tests and the load generator.
#[derive(Debug, Default)]
pub struct ClientHandshake {
    buf: BytesMut,
    done: bool,
}

impl ClientHandshake {
    /// C0 + C1 to send first. With `digest`, C1 carries a schema-1 player digest.
    pub fn start(digest: bool) -> (Self, Bytes) {
        let mut c1 = random_packet();
        c1[..8].fill(0);
        if digest {
            c1[4..8].copy_from_slice(&[0x80, 0x00, 0x07, 0x02]);
            sign(&mut c1, Schema::One, PLAYER);
        }
        let mut out = BytesMut::with_capacity(1 + PACKET);
        out.extend_from_slice(&[3]);
        out.extend_from_slice(&c1);
        (ClientHandshake::default(), out.freeze())
    }

    /// Takes server bytes; once S0+S1+S2 arrived returns (C2, leftover bytes).
    pub fn process(&mut self, input: &[u8]) -> Option<(Bytes, BytesMut)> {
        self.buf.extend_from_slice(input);
        if self.done || self.buf.len() < 1 + 2 * PACKET {
            return None;
        }
        self.done = true;
        let s = self.buf.split_to(1 + 2 * PACKET);
        let c2 = Bytes::copy_from_slice(&s[1..1 + PACKET]); // echo S1
        Some((c2, std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_handshake_echoes_c1() {
        let (_, c0c1) = ClientHandshake::start(false);
        let mut h = Handshake::new();
        let out = h.process(&c0c1).unwrap();
        let s = out.send.unwrap();
        assert_eq!(s.len(), 1 + 2 * PACKET);
        assert_eq!(s[0], 3);
        assert_eq!(&s[1 + PACKET..], &c0c1[1..], "S2 echoes C1");
        assert!(out.done.is_none());
        assert!(!h.digest);
        let mut c2_and_more = vec![0u8; PACKET];
        c2_and_more.extend_from_slice(b"chunk");
        let out = h.process(&c2_and_more).unwrap();
        assert_eq!(&out.done.unwrap()[..], b"chunk");
    }

    #[test]
    fn digest_handshake_signs_s1_and_s2() {
        let (_, c0c1) = ClientHandshake::start(true);
        let (_, client_digest) = find_digest(&c0c1[1..], PLAYER).expect("client C1 is signed");
        let mut h = Handshake::new();
        let s = h.process(&c0c1).unwrap().send.unwrap();
        assert!(h.digest);
        let s1 = &s[1..1 + PACKET];
        let s2 = &s[1 + PACKET..];
        assert!(
            find_digest(s1, SERVER).is_some(),
            "S1 carries a server digest"
        );
        let expected =
            response_signature(&s2[..PACKET - DIGEST], &client_digest, &full_key(SERVER));
        assert_eq!(&s2[PACKET - DIGEST..], &expected);
    }

    #[test]
    fn schema_zero_digest_is_found() {
        let mut c1 = random_packet();
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let d = sign(&mut c1, Schema::Zero, PLAYER);
        assert_eq!(find_digest(&c1, PLAYER), Some((Schema::Zero, d)));
    }

    #[test]
    fn unsigned_nonzero_version_falls_back_to_simple() {
        let mut c0c1 = vec![3u8; 1 + PACKET];
        c0c1[5..9].copy_from_slice(&[1, 2, 3, 4]);
        let mut h = Handshake::new();
        let s = h.process(&c0c1).unwrap().send.unwrap();
        assert!(!h.digest);
        assert_eq!(&s[1 + PACKET..], &c0c1[1..]);
    }

    #[test]
    fn byte_at_a_time_and_bad_version() {
        let (_, c0c1) = ClientHandshake::start(false);
        let mut h = Handshake::new();
        let mut sent = None;
        for b in c0c1.iter() {
            if let Some(s) = h.process(&[*b]).unwrap().send {
                sent = Some(s);
            }
        }
        assert!(sent.is_some());
        assert_eq!(
            Handshake::new().process(b"GET / HTTP/1.1"),
            Err(HandshakeError::BadVersion(b'G'))
        );
        assert_eq!(
            Handshake::new().process(&[6]),
            Err(HandshakeError::BadVersion(6))
        );
    }

    #[test]
    fn client_completes_against_server() {
        let (mut client, c0c1) = ClientHandshake::start(true);
        let mut server = Handshake::new();
        let s = server.process(&c0c1).unwrap().send.unwrap();
        let (c2, rest) = client.process(&s).unwrap();
        assert!(rest.is_empty());
        assert!(server.process(&c2).unwrap().done.is_some());
    }
}

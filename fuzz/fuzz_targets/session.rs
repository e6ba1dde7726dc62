//! The server session end to end: raw bytes, or bytes after a valid handshake, fed in reads
//! of a size the input picks. Publishes are accepted, and their audio and video go through
//! the FLV demuxer as the ingest does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packgate::flv::TagDemuxer;
use packgate::rtmp::{ServerSession, SessionConfig, SessionEvent};

const PACKET: usize = 1536;

fuzz_target!(|input: &[u8]| {
    // First byte: bit 0 = prepend a valid handshake; the rest = read size (0 = one read).
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let mut stream = Vec::with_capacity(data.len() + 1 + 2 * PACKET);
    if mode & 1 == 1 {
        stream.push(3);
        stream.resize(1 + 2 * PACKET, 0);
    }
    stream.extend_from_slice(data);
    let step = match usize::from(mode >> 1) {
        0 => stream.len().max(1),
        n => n * 13,
    };

    let mut session = ServerSession::new(SessionConfig::default());
    let mut demuxer = TagDemuxer::new();
    for piece in stream.chunks(step) {
        let events = match session.handle_input(piece) {
            Ok(events) => events,
            Err(_) => return,
        };
        for event in events {
            match event {
                SessionEvent::PublishRequested { stream_id, .. } => {
                    let _ = session.accept_publish(stream_id);
                }
                SessionEvent::Video {
                    timestamp, payload, ..
                } => {
                    let _ = demuxer.video_tracks(timestamp, payload);
                }
                SessionEvent::Audio {
                    timestamp, payload, ..
                } => {
                    let _ = demuxer.audio_tracks(timestamp, payload);
                }
                _ => {}
            }
        }
    }
});

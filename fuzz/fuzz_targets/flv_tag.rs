//! FLV tag bodies: legacy (H.264/AAC) and Enhanced RTMP headers, the per-stream demuxer fed a
//! sequence of tags, and the FLV file reader.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use packgate::flv::demux::DemuxEvent;
use packgate::flv::file::read_tags;
use packgate::flv::{enhanced, tag, TagDemuxer};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(data);
    match mode % 3 {
        // One body as video and as audio, legacy and enhanced parsers.
        0 => {
            let _ = tag::parse_video(body.clone());
            let _ = tag::parse_audio(body.clone());
            if let Ok(h) = enhanced::parse_video(data) {
                assert!(h.body_start <= data.len(), "header ends inside the body");
                let _ = h.unsupported("video");
            }
            if let Ok(h) = enhanced::parse_audio(data) {
                let _ = h.unsupported("audio");
            }
        }
        // A stream of tags as the FLV file layout frames them, through one demuxer.
        1 => {
            let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
            file.extend_from_slice(data);
            let Ok(tags) = read_tags(Bytes::from(file)) else {
                return;
            };
            let mut demuxer = TagDemuxer::new();
            for t in tags {
                // Through the multitrack entry point, which every ingest message takes.
                let events = match t.kind {
                    8 => demuxer.audio_tracks(t.timestamp, t.body),
                    9 => demuxer.video_tracks(t.timestamp, t.body),
                    _ => continue,
                };
                for e in events {
                    if let Ok(Some(DemuxEvent::Frame(f))) = e.event {
                        assert!(!f.data.is_empty(), "no empty samples reach the muxers");
                    }
                }
            }
        }
        // Arbitrary bytes as a whole FLV file.
        _ => {
            let _ = read_tags(body);
        }
    }
});

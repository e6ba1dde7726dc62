//! HLS master playlists (RFC 8216bis) through m3u8-rs, and the target duration every
//! playlist of a rendition shares. Media playlists are in [`super::media`].

use std::time::Duration;

use m3u8_rs::{AlternativeMedia, AlternativeMediaType, MasterPlaylist, Resolution, VariantStream};

/// Protocol version: EXT-X-MAP with fMP4 needs 6+, and 7 is what Apple's authoring spec
/// asks for with CMAF.
pub const VERSION: usize = 7;

/// The target duration for a configured `segment.target_duration`.
pub fn fixed_target_duration(configured: f64) -> u64 {
    (configured.ceil() as u64).max(1)
}

/// The longest segment whose EXTINF still rounds to at most the target duration
/// (RFC 8216 4.3.3.1: rounded to the nearest integer), with a millisecond to spare.
pub fn longest_segment(configured: f64) -> Duration {
    Duration::from_secs_f64(fixed_target_duration(configured) as f64 + 0.499)
}

/// One variant of a master playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Media playlist URI relative to the master.
    pub uri: String,
    /// Peak bits per second over recent segments, all tracks of the variant.
    pub bandwidth: u64,
    /// Average bits per second.
    pub average_bandwidth: u64,
    /// RFC 6381 codecs, comma separated (video and audio).
    pub codecs: String,
    /// Width and height of the video.
    pub resolution: Option<(u32, u32)>,
    /// Video frame rate.
    pub frame_rate: Option<f64>,
}

/// An audio rendition of the group the variants share.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioRendition {
    /// Media playlist URI relative to the master.
    pub uri: String,
    /// Channel count for the CHANNELS attribute.
    pub channels: u8,
    /// NAME, unique in the group.
    pub name: String,
    /// LANGUAGE (RFC 5646), when the encoder said.
    pub language: Option<String>,
}

/// GROUP-ID of the shared audio rendition.
pub const AUDIO_GROUP: &str = "audio";

/// Writes the master playlist, variants sorted by bandwidth (lowest first so players that
/// start on the first variant start cheap). The first of `audio` is the default one.
pub fn master_playlist(variants: &[Variant], audio: &[AudioRendition]) -> String {
    let mut variants = variants.to_vec();
    variants.sort_by_key(|v| v.bandwidth);
    let alternatives = audio
        .iter()
        .enumerate()
        .map(|(i, a)| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(a.uri.clone()),
            group_id: AUDIO_GROUP.to_string(),
            name: a.name.clone(),
            language: a.language.clone(),
            default: i == 0,
            // Players choose among the others by language, or let the viewer choose.
            autoselect: true,
            channels: Some(a.channels.to_string()),
            ..Default::default()
        })
        .collect();
    let playlist = MasterPlaylist {
        version: Some(VERSION),
        // Not claimed here for every variant: a stream whose GOP outgrows the longest
        // segment has segments cut between keyframes. Each media playlist says it while true.
        independent_segments: false,
        alternatives,
        variants: variants
            .into_iter()
            .map(|v| VariantStream {
                uri: v.uri,
                bandwidth: v.bandwidth.max(1),
                average_bandwidth: Some(v.average_bandwidth.max(1)),
                codecs: Some(v.codecs),
                resolution: v.resolution.map(|(width, height)| Resolution {
                    width: u64::from(width),
                    height: u64::from(height),
                }),
                // RFC 8216bis: FRAME-RATE rounded to three decimal places.
                frame_rate: v.frame_rate.map(|f| (f * 1000.0).round() / 1000.0),
                audio: audio.first().map(|_| AUDIO_GROUP.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(512);
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{StoredSegment, TrackWindow};
    use bytes::Bytes;
    use std::time::{Duration, SystemTime};

    pub(crate) fn window(n: u64, dur_ms: u64) -> TrackWindow {
        let mut w = TrackWindow::new(3);
        w.add_init(0, Bytes::from_static(b"init"));
        for seq in 1..=n {
            w.push(segment(seq, dur_ms, true));
        }
        w
    }

    /// Segment `seq` of a run of `dur_ms` segments, one part, starting on a keyframe or not.
    pub(crate) fn segment(seq: u64, dur_ms: u64, keyframe: bool) -> StoredSegment {
        StoredSegment {
            seq,
            start: ((seq - 1) * dur_ms * 90) as i64,
            duration: dur_ms * 90,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH + Duration::from_millis(seq * dur_ms),
            init_version: 0,
            discontinuity: false,
            parts: vec![crate::store::StoredPart {
                id: seq,
                duration: dur_ms * 90,
                independent: keyframe,
                data: Bytes::from(vec![0u8; 500]),
            }],
        }
    }

    #[test]
    fn target_duration_is_fixed_by_the_configuration() {
        // Rounded up, whatever the segments (it takes none: a 3.6 s segment cannot raise it).
        assert_eq!(fixed_target_duration(2.0), 2);
        assert_eq!(fixed_target_duration(1.5), 2);
        assert_eq!(longest_segment(2.0).as_millis(), 2499);
        assert_eq!(longest_segment(1.5).as_millis(), 2499);
    }

    #[test]
    fn master_playlist_has_codecs_and_audio_group() {
        let v = |bw, h| Variant {
            uri: format!("{h}p/video.m3u8"),
            bandwidth: bw,
            average_bandwidth: bw / 2,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            resolution: Some((h * 16 / 9, h)),
            frame_rate: Some(30_000.0 / 1001.0),
        };
        let text = master_playlist(
            &[v(3_000_000, 720), v(800_000, 360)],
            &[
                AudioRendition {
                    uri: "audio.m3u8".into(),
                    channels: 2,
                    name: "audio".into(),
                    language: None,
                },
                AudioRendition {
                    uri: "audio1/audio.m3u8".into(),
                    channels: 1,
                    name: "audio 1".into(),
                    language: Some("fr".into()),
                },
            ],
        );
        let pl = match m3u8_rs::parse_playlist_res(text.as_bytes()).expect("parses") {
            m3u8_rs::Playlist::MasterPlaylist(p) => p,
            other => panic!("not a master playlist: {other:?}"),
        };
        assert_eq!(pl.variants.len(), 2);
        assert_eq!(pl.variants[0].bandwidth, 800_000);
        assert_eq!(
            pl.variants[0].codecs.as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
        assert_eq!(pl.variants[1].audio.as_deref(), Some(AUDIO_GROUP));
        assert_eq!(pl.alternatives[0].channels.as_deref(), Some("2"));
        let flags = |a: &AlternativeMedia| (a.default, a.autoselect, a.language.clone());
        assert_eq!(flags(&pl.alternatives[0]), (true, true, None));
        assert_eq!(flags(&pl.alternatives[1]), (false, true, Some("fr".into())));
        assert!(text.contains("NAME=\"audio 1\""), "{text}");
        assert!(text.contains("FRAME-RATE=29.97"), "{text}");
        assert!(text.contains("RESOLUTION=1280x720"));
    }
}

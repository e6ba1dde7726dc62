//! Gap segments for a ladder rung whose encoder was away.
//!
//! A rung that comes back takes the ladder boundary's number (see
//! [`crate::segment::timeline::LadderTimeline::rejoin`]), so every rung gives the same number
//! to the same media time. The numbers it missed meanwhile are listed as EXT-X-GAP segments
//! (RFC 8216bis 4.4.4.7), each spanning its ladder boundary: media sequence numbers stay
//! contiguous and the playlist's timeline stays true. DASH never lists them: its timeline
//! restarts at the reconnect (`$Number$` counts every `S`).

use std::time::SystemTime;

use crate::media::MEDIA_CLOCK;
use crate::store::{StoredSegment, TrackWindow};

/// Numbers filled at most: more than any window lists, so a long absence still leaves the
/// listed numbers contiguous without storing one entry per boundary missed.
const MAX_GAPS: u64 = 512;

/// Where the ladder's boundaries are, and what wall-clock time a ladder time is.
pub trait Boundaries {
    /// Ladder time (media clock) where boundary `seq` starts, while remembered.
    fn start(&self, seq: u64) -> Option<i64>;
    /// Wall-clock time of ladder time `t`.
    fn wall_clock(&self, t: i64) -> SystemTime;
}

/// The gaps `window` needs before its segment `seq`, which starts at ladder time
/// `media_start`: one per number between its last segment and `seq`, in order.
pub fn missing(
    window: &TrackWindow,
    seq: u64,
    media_start: i64,
    ladder: &impl Boundaries,
) -> Vec<StoredSegment> {
    let Some(last) = window.last() else {
        return Vec::new();
    };
    if seq <= last.seq + 1 {
        return Vec::new();
    }
    let first = (last.seq + 1).max(seq.saturating_sub(MAX_GAPS));
    let timescale = last.timescale;
    let to_media =
        |t: i64| (i128::from(t) * i128::from(MEDIA_CLOCK) / i128::from(timescale)) as i64;
    let to_track =
        |t: i64| (i128::from(t) * i128::from(timescale) / i128::from(MEDIA_CLOCK)) as i64;
    // Each number spans its ladder boundary, the first from where the last segment
    // ended (a dropped encoder's last segment is short), so the durations add up to the
    // media timeline players compute from them. Forgotten or inconsistent boundaries give
    // way to an even split of the time between the last segment's end and `media_start`.
    let end = to_media(last.start + last.duration as i64).min(media_start);
    let mut starts: Vec<Option<i64>> = (first..seq).map(|k| ladder.start(k)).collect();
    if first == last.seq + 1 {
        starts[0] = starts[0].map(|b| b.min(end));
    }
    starts.push(Some(media_start));
    let starts: Vec<i64> = match starts.iter().copied().collect::<Option<Vec<i64>>>() {
        Some(s) if s.windows(2).all(|w| w[0] < w[1]) => s,
        _ => {
            let n = (seq - first) as i64;
            (0..=n).map(|i| end + (media_start - end) * i / n).collect()
        }
    };
    (first..seq)
        .zip(starts.windows(2))
        .map(|(k, span)| {
            let start = to_track(span[0]);
            StoredSegment {
                seq: k,
                start,
                duration: (to_track(span[1]) - start).max(1) as u64,
                timescale,
                wall_clock: ladder.wall_clock(span[0]),
                init_version: last.init_version,
                discontinuity: false,
                parts: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredPart;
    use bytes::Bytes;
    use std::time::Duration;

    const S: i64 = MEDIA_CLOCK as i64;

    /// Boundaries every 2 s from 0, numbered from 100; `forget` below that number.
    struct Ladder {
        forget: u64,
    }

    impl Boundaries for Ladder {
        fn start(&self, seq: u64) -> Option<i64> {
            (seq >= self.forget).then(|| (seq as i64 - 100) * 2 * S)
        }
        fn wall_clock(&self, t: i64) -> SystemTime {
            crate::wallclock::shift(SystemTime::UNIX_EPOCH, t)
        }
    }

    /// An audio window (48 kHz) whose last segment is `seq`, 1.5 s long (the encoder died).
    fn window(seq: u64) -> TrackWindow {
        let mut w = TrackWindow::new(6);
        w.push(StoredSegment {
            seq,
            start: (seq as i64 - 100) * 96_000,
            duration: 72_000,
            timescale: 48_000,
            wall_clock: SystemTime::UNIX_EPOCH,
            init_version: 7,
            discontinuity: false,
            parts: vec![StoredPart {
                id: 1,
                duration: 72_000,
                independent: true,
                data: Bytes::from_static(b"x"),
            }],
        });
        w
    }

    #[test]
    fn gaps_span_the_ladder_boundaries_missed() {
        let w = window(103);
        // Back at boundary 106 (12 s): 104 and 105 were missed; 104 also covers the end of
        // 103, which the encoder did not finish (7.5 s .. 8 s).
        let gaps = missing(&w, 106, 12 * S, &Ladder { forget: 0 });
        let got: Vec<_> = gaps
            .iter()
            .map(|g| (g.seq, g.start, g.duration, g.init_version, g.is_gap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (104, 360_000, 120_000, 7, true),
                (105, 480_000, 96_000, 7, true)
            ]
        );
        assert_eq!(
            gaps[1].wall_clock,
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
        assert!(missing(&w, 104, 8 * S, &Ladder { forget: 0 }).is_empty());
        assert!(missing(&TrackWindow::new(6), 104, 8 * S, &Ladder { forget: 0 }).is_empty());
    }

    #[test]
    fn forgotten_boundaries_split_the_absence_evenly() {
        let w = window(103);
        // The last segment ended at 7.5 s; 104..=106 share 7.5 s .. 13.5 s.
        let gaps = missing(&w, 107, 27 * S / 2, &Ladder { forget: 105 });
        let got: Vec<_> = gaps.iter().map(|g| (g.seq, g.start, g.duration)).collect();
        assert_eq!(
            got,
            vec![
                (104, 360_000, 96_000),
                (105, 456_000, 96_000),
                (106, 552_000, 96_000)
            ]
        );
    }

    #[test]
    fn a_long_absence_fills_only_the_last_numbers() {
        let gaps = missing(
            &window(103),
            103 + 10_000,
            20_000 * S,
            &Ladder { forget: 0 },
        );
        assert_eq!(gaps.len() as u64, MAX_GAPS);
        assert_eq!(gaps.last().map(|g| g.seq), Some(103 + 9_999));
        assert!(gaps.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }

    /// A video window (90 kHz, 2 s segments) with 101..=103, gaps 104 and 105, then 106
    /// after the reconnect (new init version, discontinuity).
    fn rejoined() -> TrackWindow {
        let seg = |seq: u64, init_version: u64, discontinuity: bool| StoredSegment {
            seq,
            start: (seq as i64 - 100) * 180_000,
            duration: 180_000,
            timescale: 90_000,
            wall_clock: SystemTime::UNIX_EPOCH + Duration::from_secs(2 * (seq - 100)),
            init_version,
            discontinuity,
            parts: vec![StoredPart {
                id: seq,
                duration: 180_000,
                independent: true,
                data: Bytes::from_static(b"x"),
            }],
        };
        let mut w = TrackWindow::new(6);
        w.add_init(0, Bytes::from_static(b"i0"));
        (101..=103).for_each(|k| w.push(seg(k, 0, false)));
        let gaps = missing(&w, 106, 12 * S, &Ladder { forget: 0 });
        gaps.into_iter().for_each(|g| w.push_gap(g));
        w.add_init(1, Bytes::from_static(b"i1"));
        w.push(seg(106, 1, true));
        w
    }

    #[test]
    fn gaps_render_as_ext_x_gap_with_contiguous_numbers() {
        use crate::playlist::media::{Container, MediaPlaylist};
        let w = rejoined();
        let text = MediaPlaylist {
            window: &w,
            prefix: "video",
            container: Container::Cmaf,
            target: 2,
            ended: false,
            low_latency: None,
        }
        .render();
        let body = &text[text.find("#EXT-X-MEDIA-SEQUENCE").unwrap()..];
        assert!(body.starts_with("#EXT-X-MEDIA-SEQUENCE:101\n"), "{text}");
        let uris: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            uris,
            [
                "video/101.m4s",
                "video/102.m4s",
                "video/103.m4s",
                "video/104.m4s",
                "video/105.m4s",
                "video/106.m4s"
            ]
        );
        let gap_104 = "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:08.000Z\n#EXT-X-GAP\n#EXTINF:2.000,\nvideo/104.m4s\n";
        assert!(body.contains(gap_104), "{text}");
        assert_eq!(body.matches("#EXT-X-GAP").count(), 2, "{text}");
        // The discontinuity and the new init come with the first real segment after the gaps.
        assert!(
            body.contains(
                "video/105.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n"
            ),
            "{text}"
        );
        assert_eq!(w.discontinuity_sequence(), 0);
        // A gap has no bytes: requests for it find nothing (404), its neighbours are served.
        assert!(w.get(104).is_none() && w.get(105).is_none());
        assert!(w.get(103).is_some() && w.get(106).is_some());
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
            other => panic!("not a media playlist: {other:?}"),
        };
        assert_eq!(parsed.segments.len(), 6);
    }

    #[test]
    fn dash_lists_no_gap_and_numbers_from_the_reconnect() {
        use crate::playlist::dash::{mpd, DashTrack, Manifest};
        let w = rejoined();
        let track = DashTrack {
            id: "720p-video".into(),
            prefix: "720p/video".into(),
            window: &w,
            kind: crate::media::TrackKind::Video,
            codecs: "avc1.64001f".into(),
            bandwidth: 1,
            resolution: Some((1280, 720)),
            frame_rate: Some(30.0),
            sample_rate: None,
            channels: None,
        };
        let text = mpd(&Manifest {
            availability_start: SystemTime::UNIX_EPOCH,
            publish_time: SystemTime::UNIX_EPOCH,
            ended: false,
            target_duration: 2.0,
            video: vec![track],
            audio: Vec::new(),
            utc_timing_url: "/time".into(),
            aligned: true,
            low_latency: None,
        });
        assert!(text.contains("startNumber=\"106\""), "{text}");
        assert!(text.contains("init-1.mp4"), "{text}");
        assert!(text.contains("<S t=\"1080000\" d=\"180000\"/>"), "{text}");
        assert_eq!(text.matches("<S ").count(), 1, "{text}");
    }
}

//! Unit tests of the segmenter.
use super::*;
use crate::media::Sample;
use crate::segment::{CutPart, CutSegment};
use bytes::Bytes;

fn v(ms: i64, key: bool) -> Frame {
    Frame {
        kind: TrackKind::Video,
        dts: ms * 90,
        pts: ms * 90,
        keyframe: key,
        data: Bytes::from_static(b"v"),
    }
}
fn a(ms: i64) -> Frame {
    Frame {
        kind: TrackKind::Audio,
        dts: ms * 90,
        pts: ms * 90,
        keyframe: true,
        data: Bytes::from_static(b"a"),
    }
}

fn av_segmenter() -> Segmenter {
    let mut s = Segmenter::new(Duration::from_secs(2), 1);
    assert!(s.set_track(TrackKind::Video, 90_000, None).is_empty());
    assert!(s.set_track(TrackKind::Audio, 48_000, Some(1024)).is_empty());
    s
}

/// 30 fps video with a keyframe every `gop_ms`, 48 kHz AAC, interleaved by time.
fn segments(out: Vec<Output>) -> Vec<CutSegment> {
    out.into_iter().filter_map(Output::segment).collect()
}

fn run(s: &mut Segmenter, secs: i64, gop_ms: i64) -> Vec<CutSegment> {
    segments(run_all(s, secs, gop_ms))
}

fn run_all(s: &mut Segmenter, secs: i64, gop_ms: i64) -> Vec<Output> {
    let mut out = run_rtmp(s, secs, (30, 1), gop_ms * 30 / 1000, 48_000);
    out.extend(s.finish());
    out
}

#[test]
fn cuts_at_keyframes_after_target_and_aligns_audio() {
    let mut s = av_segmenter();
    let segs = run(&mut s, 10, 1000);
    let video: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Video).collect();
    let audio: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Audio).collect();
    assert_eq!(
        video.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        audio.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    for c in &video {
        assert!(c.samples[0].keyframe);
        assert!(
            (c.duration_secs() - 2.0).abs() < 0.04,
            "{}",
            c.duration_secs()
        );
    }
    for (vs, as_) in video.iter().zip(&audio) {
        assert_eq!(vs.media_start, as_.media_start);
        let audio_start = as_.start() as f64 / 48_000.0;
        let video_start = vs.start() as f64 / 90_000.0;
        // Audio's first frame is the first one at or after the video cut.
        assert!(audio_start >= video_start && audio_start - video_start < 0.0214);
    }
    // No audio sample lost or duplicated: contiguous timeline.
    let mut next = audio[0].start();
    for c in &audio {
        for smp in &c.samples {
            assert_eq!(smp.dts, next);
            next += i64::from(smp.duration);
        }
    }
}

#[test]
fn long_gop_makes_long_segments() {
    let mut s = av_segmenter();
    let segs = run(&mut s, 12, 3000);
    let video: Vec<_> = segs.iter().filter(|c| c.kind == TrackKind::Video).collect();
    assert_eq!(video.len(), 4);
    assert!((video[0].duration_secs() - 3.0).abs() < 0.04);
}

#[test]
fn frames_before_first_keyframe_are_dropped() {
    let mut s = av_segmenter();
    assert!(s.push(v(0, false)).is_empty());
    assert!(s.push(a(0)).is_empty());
    assert!(s.push(v(33, true)).is_empty());
    let segs = segments(s.finish());
    let video = segs.iter().find(|c| c.kind == TrackKind::Video).unwrap();
    assert_eq!(video.samples.len(), 1);
    assert_eq!(video.media_start, 33 * 90);
}

#[test]
fn audio_only_cuts_on_time() {
    let mut s = Segmenter::new(Duration::from_secs(2), 7);
    s.set_track(TrackKind::Audio, 48_000, Some(1024));
    let mut segs = Vec::new();
    for i in 0..(48_000 * 5 / 1024) {
        segs.extend(segments(s.push(a(i * 1024 * 1000 / 48_000))));
    }
    segs.extend(segments(s.finish()));
    assert_eq!(
        segs.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
    assert!((segs[0].duration_secs() - 2.0).abs() < 0.03);
}

#[test]
fn segment_closes_when_keyframe_arrives() {
    let mut s = Segmenter::new(Duration::from_secs(2), 1);
    s.set_track(TrackKind::Video, 90_000, None);
    for i in 0..60 {
        assert!(s.push(v(i * 1000 / 30, i == 0)).is_empty());
    }
    let out = segments(s.push(v(2000, true)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].samples.len(), 60);
}

#[test]
fn parts_tile_each_segment_and_never_exceed_the_target() {
    let mut s = ll(48_000);
    let out = run_rtmp(&mut s, 10, (30, 1), 30, 48_000);
    check_parts(&s, out, 85);
}

#[test]
fn parts_follow_the_nominal_frame_duration_at_common_rates() {
    // (fps, GOP in frames, audio rate, shortest part but the last (% of the advertised
    // PART-TARGET), shortest last video part allowed). The advertised target takes the
    // millisecond 29.97 fps needs (6 frames are 200.2 ms) and the audio frame that audio
    // parts ending with video parts may add (0.214 s at 48 kHz, 0.209 s at 44.1 kHz).
    let cases = [
        ((30, 1), 60, 48_000, 85, 0.9),
        ((30, 1), 60, 44_100, 85, 0.9),
        ((25, 1), 50, 48_000, 85, 0.9),
        ((60_000, 1001), 120, 48_000, 85, 0.9),
        ((30_000, 1001), 60, 44_100, 85, 0.9),
        ((30_000, 1001), 60, 48_000, 85, 0.9),
    ];
    for (fps, gop, rate, min_percent, video_last) in cases {
        let mut s = ll(rate as u32);
        let out = run_rtmp(&mut s, 20, fps, gop, rate);
        let (v, a) = check_parts(&s, out, min_percent);
        assert!(v >= video_last, "{fps:?}: last video part {v}");
        assert!(a >= 0.5, "{fps:?} {rate}: last audio part {a} (a sliver)");
    }
}

#[test]
fn thirty_fps_parts_are_six_frames_from_the_first() {
    let mut s = ll(48_000);
    let out = run_rtmp(&mut s, 4, (30, 1), 60, 48_000);
    let video: Vec<usize> = out
        .iter()
        .filter_map(|o| match o {
            Output::Part(p) if p.kind == TrackKind::Video && p.seq == 1 => Some(p.samples.len()),
            _ => None,
        })
        .collect();
    assert_eq!(video, vec![6; 10]);
}

#[test]
fn no_keyframe_cuts_at_the_limit_and_resyncs_on_the_next() {
    let mut s = Segmenter::new(Duration::from_secs(2), 1)
        .with_limits(Duration::from_millis(2499), Duration::from_secs(6));
    s.set_track(TrackKind::Video, 90_000, None);
    let mut segs = Vec::new();
    let mut overdue = false;
    // Keyframes at 0 and at 7 s only.
    for i in 0..300i64 {
        let t = i * 1000 / 30;
        segs.extend(segments(s.push(v(t, i == 0 || i == 210))));
        overdue |= s.keyframe_overdue().is_some();
        if i == 200 {
            assert!(s.keyframe_overdue().is_some_and(|d| d > 6 * 90_000));
        }
    }
    assert!(overdue);
    assert!(
        s.keyframe_overdue().is_none(),
        "cleared by the keyframe at 7 s"
    );
    for c in &segs {
        assert!(c.duration_secs() < 2.5, "{}", c.duration_secs());
    }
    let starts: Vec<(f64, bool)> = segs
        .iter()
        .map(|c| (c.start() as f64 / 90_000.0, c.samples[0].keyframe))
        .collect();
    assert!(starts[0].1 && !starts[1].1 && !starts[2].1, "{starts:?}");
    // The keyframe at 7 s starts a segment although the last cut was < 2 s before.
    assert!(
        starts.iter().any(|&(t, k)| k && (t - 7.0).abs() < 0.001),
        "{starts:?}"
    );
}

#[test]
fn a_discontinuity_cuts_at_the_next_keyframe() {
    let mut s = Segmenter::new(Duration::from_secs(2), 1);
    s.set_track(TrackKind::Video, 90_000, None);
    let mut segs = Vec::new();
    for i in 0..30i64 {
        segs.extend(segments(s.push(v(i * 1000 / 30, i % 15 == 0))));
    }
    assert_eq!(s.break_at_next_keyframe(), Some(1));
    for i in 30..100i64 {
        segs.extend(segments(s.push(v(i * 1000 / 30, i % 15 == 0))));
    }
    segs.extend(segments(s.finish()));
    // Cut at 1 s (the first keyframe after the break), then every 2 s again.
    let starts: Vec<i64> = segs.iter().map(|c| c.start() / 90).collect();
    assert_eq!(starts, vec![0, 1000, 3000]);
}

/// Video at `fps_num/fps_den` with a keyframe every `gop` frames and AAC at `rate`,
/// stamped in whole milliseconds as RTMP does (rounded, so 30 fps is 33/34 ms). The
/// stream is not finished: its last segments stay open.
fn run_rtmp(s: &mut Segmenter, secs: i64, fps: (i64, i64), gop: i64, rate: i64) -> Vec<Output> {
    let mut out = Vec::new();
    let (mut vi, mut ai) = (0i64, 0i64);
    let ms = |n: i64, d: i64| (2 * n * 1000 + d) / (2 * d);
    loop {
        let vt = ms(vi * fps.1, fps.0);
        let at = ms(ai * 1024, rate);
        if vt >= secs * 1000 && at >= secs * 1000 {
            break;
        }
        if vt <= at {
            out.extend(s.push(v(vt, vi % gop == 0)));
            vi += 1;
        } else {
            out.extend(s.push(a(at)));
            ai += 1;
        }
    }
    out
}

/// Checks the LL-HLS part rules over every finished segment; returns the shortest last
/// part of each track as a share of the target.
fn check_parts(s: &Segmenter, out: Vec<Output>, min_percent: u64) -> (f64, f64) {
    let pt = s.advertised_part_target().expect("parts on");
    let audio_frame = |seg: &CutSegment| seg.samples[0].duration as f64 / f64::from(seg.timescale);
    let mut ends: std::collections::HashMap<(u64, u32), [f64; 2]> = Default::default();
    let mut aligned = 0;
    let mut parts: Vec<CutPart> = Vec::new();
    let mut shortest_last = [f64::MAX; 2];
    let mut segs = 0;
    for o in out {
        match o {
            Output::Part(p) => parts.push(p),
            Output::Segment(seg) => {
                let mine: Vec<_> = parts
                    .iter()
                    .filter(|p| p.kind == seg.kind && p.seq == seg.seq)
                    .collect();
                // Parts are numbered from 0 and concatenate to exactly the segment.
                assert!(mine.iter().enumerate().all(|(i, p)| p.index as usize == i));
                let joined: Vec<Sample> = mine.iter().flat_map(|p| p.samples.clone()).collect();
                assert_eq!(joined, seg.samples);
                if seg.kind == TrackKind::Video {
                    assert!(mine[0].independent());
                }
                let limit = (pt.as_secs_f64() * f64::from(seg.timescale)).round() as u64;
                for p in &mine {
                    assert!(
                        p.duration() <= limit,
                        "{:?} part {} > PART-TARGET {pt:?}",
                        seg.kind,
                        p.duration()
                    );
                }
                // Where each part but the last ends, seconds.
                let i = usize::from(seg.kind == TrackKind::Audio);
                for p in &mine[..mine.len() - 1] {
                    let last = p.samples.last().unwrap();
                    let end =
                        (last.dts + i64::from(last.duration)) as f64 / f64::from(seg.timescale);
                    ends.entry((p.seq, p.index)).or_insert([f64::NAN; 2])[i] = end;
                }
                if seg.kind == TrackKind::Audio {
                    let frame = audio_frame(&seg);
                    for (&(seq, index), [v, a]) in ends.iter().filter(|(k, _)| k.0 == seg.seq) {
                        if v.is_finite() && a.is_finite() {
                            aligned += 1;
                            assert!(
                                (v - a).abs() < frame,
                                "segment {seq} part {index}: video ends {v}, audio {a}"
                            );
                        }
                    }
                }
                // All but the last part are at least `min_percent` of the target.
                for p in &mine[..mine.len() - 1] {
                    assert!(
                        p.duration() * 100 >= limit * min_percent,
                        "{:?} short part {} of {} in segment {} ({:?})",
                        seg.kind,
                        p.duration(),
                        limit,
                        seg.seq,
                        mine.iter()
                            .map(|p| (p.index, p.samples.len()))
                            .collect::<Vec<_>>()
                    );
                }
                let last = mine[mine.len() - 1].duration() as f64 / limit as f64;
                shortest_last[i] = shortest_last[i].min(last);
                parts.retain(|p| !(p.kind == seg.kind && p.seq == seg.seq));
                segs += 1;
            }
        }
    }
    assert!(segs >= 8, "{segs} segments");
    assert!(
        aligned >= segs / 2 * 5,
        "{aligned} audio parts compared with video"
    );
    let open = parts.iter().map(|p| p.seq).min().unwrap_or(u64::MAX);
    let kept = parts.iter().map(|p| p.seq).max().unwrap_or(0);
    assert!(kept <= open + 1, "parts without a segment");
    (shortest_last[0], shortest_last[1])
}

fn ll(rate: u32) -> Segmenter {
    let mut s =
        Segmenter::new(Duration::from_secs(2), 1).with_parts(Some(Duration::from_millis(200)));
    s.set_track(TrackKind::Video, 90_000, None);
    s.set_track(TrackKind::Audio, rate, Some(1024));
    s
}

#[test]
fn long_gops_are_cut_at_the_target_into_whole_parts() {
    // 4 s GOPs with a 2 s target: once the GOP is known, the segment between keyframes is
    // cut at the target (10 whole parts) rather than at the 2.499 s limit, which left a
    // 0.067 s sliver part that hls.js skipped and then stalled on.
    let mut s = Segmenter::new(Duration::from_secs(2), 1)
        .with_parts(Some(Duration::from_millis(200)))
        .with_limits(Duration::from_millis(2499), Duration::from_secs(6));
    s.set_track(TrackKind::Video, 90_000, None);
    s.set_track(TrackKind::Audio, 48_000, Some(1024));
    let out = run_all(&mut s, 20, 4000);
    let mut parts: Vec<CutPart> = Vec::new();
    let mut video = Vec::new();
    for o in out {
        match o {
            Output::Part(p) if p.kind == TrackKind::Video => parts.push(p),
            Output::Segment(seg) if seg.kind == TrackKind::Video => video.push(seg),
            _ => {}
        }
    }
    // From the second GOP on (the first one teaches the GOP length).
    for seg in video.iter().filter(|c| c.start() >= 4 * 90_000) {
        let secs = seg.duration_secs();
        if seg.start() + seg.duration() as i64 >= 19 * 90_000 {
            continue; // the tail at finish()
        }
        assert!((secs - 2.0).abs() < 0.035, "segment of {secs} s");
        let mine: Vec<_> = parts.iter().filter(|p| p.seq == seg.seq).collect();
        for p in &mine {
            let d = p.duration() as f64 / 90_000.0;
            assert!(d > 0.17 && d <= 0.2, "part of {d} s in a {secs} s segment");
        }
    }
}

#[test]
fn the_advertised_part_target_covers_audio_parts_ending_with_video_parts() {
    let ms = |s: &Segmenter| s.advertised_part_target().unwrap().as_millis();
    assert_eq!(ms(&ll(48_000)), 214);
    assert_eq!(ms(&ll(44_100)), 209);
    let mut video_only =
        Segmenter::new(Duration::from_secs(2), 1).with_parts(Some(Duration::from_millis(200)));
    video_only.set_track(TrackKind::Video, 90_000, None);
    assert_eq!(ms(&video_only), 201);
    assert!(av_segmenter().advertised_part_target().is_none());
}

#[test]
fn a_late_frame_and_a_burst_do_not_collapse_parts_to_single_frames() {
    // A live encoder under load: at 5 s a frame comes 187 ms after the one before, then
    // four frames 2 ms apart catch up. Parts stay whole-sized around it.
    let mut s = ll(48_000);
    let mut out = Vec::new();
    let (mut vt, mut at, mut i, mut ai) = (0i64, 0i64, 0i64, 0i64);
    while vt < 12_000 {
        if vt <= at {
            out.extend(s.push(v(vt, i % 60 == 0)));
            let step = match i {
                149 => 187,
                150..=153 => 2,
                _ if i % 3 == 2 => 34,
                _ => 33,
            };
            vt += step;
            i += 1;
        } else {
            out.extend(s.push(a(at)));
            ai += 1;
            at = ai * 1024 * 1000 / 48_000;
        }
    }
    let mut per_segment = std::collections::BTreeMap::<u64, Vec<usize>>::new();
    for o in &out {
        if let Output::Part(p) = o {
            if p.kind == TrackKind::Video {
                per_segment.entry(p.seq).or_default().push(p.samples.len());
            }
        }
    }
    let short = per_segment.values().flatten().filter(|&&n| n < 3).count();
    assert!(short <= 3, "parts of under 3 frames: {per_segment:?}");
    assert!(
        per_segment.values().all(|p| p.len() <= 12),
        "{per_segment:?}"
    );
}

#[test]
fn gops_that_do_not_divide_the_target_make_whole_gop_segments() {
    // 1.5 s GOPs with a 2 s target (2.499 s limit): waiting for the keyframe at 3 s would
    // overrun the limit, so each GOP is its own segment, every one starting on a keyframe.
    // The old rule cut at 2 s before a non-sync frame, leaving every other segment with
    // nothing a joining player could decode.
    let mut s = Segmenter::new(Duration::from_secs(2), 1)
        .with_parts(Some(Duration::from_millis(200)))
        .with_limits(Duration::from_millis(2499), Duration::from_secs(6));
    s.set_track(TrackKind::Video, 90_000, None);
    s.set_track(TrackKind::Audio, 48_000, Some(1024));
    let video: Vec<_> = segments(run_all(&mut s, 20, 1500))
        .into_iter()
        .filter(|c| c.kind == TrackKind::Video)
        .collect();
    assert!(video.len() >= 12, "{} segments", video.len());
    for seg in &video[..video.len() - 1] {
        assert!(
            seg.samples[0].keyframe,
            "segment {} starts on a non-sync frame",
            seg.seq
        );
        let secs = seg.duration_secs();
        assert!(
            (secs - 1.5).abs() < 0.035,
            "segment {} of {secs} s",
            seg.seq
        );
    }
    // A GOP that divides the target is left alone: 1 s GOPs make 2 s segments.
    let mut s = Segmenter::new(Duration::from_secs(2), 1)
        .with_limits(Duration::from_millis(2499), Duration::from_secs(6));
    s.set_track(TrackKind::Video, 90_000, None);
    let video: Vec<_> = segments(run_all(&mut s, 10, 1000))
        .into_iter()
        .filter(|c| c.kind == TrackKind::Video)
        .collect();
    for seg in &video[..video.len() - 1] {
        assert!((seg.duration_secs() - 2.0).abs() < 0.035);
    }
}

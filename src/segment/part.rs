//! LL-HLS parts: each track's open segment is also cut into parts of at most the part
//! target, emitted as soon as their last sample is known, so a player can fetch media a
//! fraction of a segment after it was encoded.

use std::collections::VecDeque;

use super::output::{CutPart, Output};
use crate::media::{total_duration, Sample, TrackKind, MEDIA_CLOCK};

/// What a part inherits from its segment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Head {
    pub(super) kind: TrackKind,
    pub(super) seq: u64,
    pub(super) timescale: u32,
    pub(super) media_start: i64,
}

/// Where recent video parts ended on the media clock, by (segment, index), so the audio
/// part with the same index can end with it: a player fetching part N of every track
/// then gets the same span of time from each, within an audio frame.
#[derive(Debug, Default)]
pub(super) struct PartEnds(VecDeque<(u64, u32, i64)>);

/// Video part ends remembered (several segments' worth, since audio trails video).
const PART_END_MEMORY: usize = 64;

impl PartEnds {
    /// Remembers where a video part ended.
    pub(super) fn record(&mut self, part: &CutPart) {
        let Some(last) = part.samples.last() else {
            return;
        };
        let end = i128::from(last.dts + i64::from(last.duration)) * i128::from(MEDIA_CLOCK)
            / i128::from(part.timescale.max(1));
        self.0.push_back((part.seq, part.index, end as i64));
        if self.0.len() > PART_END_MEMORY {
            self.0.pop_front();
        }
    }

    /// Media-clock end of video part `index` of segment `seq`, if known.
    pub(super) fn get(&self, seq: u64, index: u32) -> Option<i64> {
        self.0
            .iter()
            .rev()
            .find(|&&(s, i, _)| (s, i) == (seq, index))
            .map(|&(_, _, end)| end)
    }
}

/// Sample durations remembered to estimate a track's nominal frame duration.
const DURATION_MEMORY: usize = 31;
/// Segment lengths (in samples) remembered to predict the next one.
const SEGMENT_MEMORY: usize = 3;
/// Every part but a segment's last must be at least this share of the part target, in
/// percent (Apple's LL-HLS authoring rule).
const MIN_PART_PERCENT: u64 = 85;

/// Where the open part of one track begins, and when it must close.
///
/// Cuts are decided by counting frames of the track's nominal duration, not by adding up
/// the last millisecond deltas: RTMP rounds 30 fps to 33/34 ms, and a cutter that asks
/// "would one more frame like the last overflow the target?" closes a part one frame
/// early whenever the last delta was 34 ms, leaving a sliver at the segment's end that
/// players skip and then wait on. The parts of a segment are planned over its predicted
/// length (the median of the last few segments), evenly when that keeps every part at
/// least 85 % of the target, so the last part is not a sliver either.
#[derive(Debug, Default)]
pub(super) struct PartCutter {
    /// Part target in the track's timescale; `None` disables parts.
    target: Option<u64>,
    /// Segment target in the track's timescale: the length predicted for the first segment.
    segment_target: u64,
    /// Ticks per second.
    timescale: u32,
    /// Index into the open segment's samples where the open part begins.
    from: usize,
    /// Index of the open part within its segment.
    index: u32,
    /// Recent sample durations, newest last.
    recent: VecDeque<u32>,
    /// [`PartCutter::mean`] of `recent`, kept as it changes (it is read several times for
    /// every frame; working it out each time cost more than the rest of the cutting).
    nominal: Option<f64>,
    /// Sample counts of recent segments, newest last.
    lengths: VecDeque<usize>,
    /// The advertised PART-TARGET in ticks, when above `target`: the 85 % rule is
    /// measured against it.
    advertised: Option<u64>,
}

impl PartCutter {
    /// A cutter for parts of `target` track-timescale ticks (or none) in segments of about
    /// `segment_target` ticks.
    pub(super) fn new(target: Option<u64>, segment_target: u64, timescale: u32) -> Self {
        PartCutter {
            target,
            segment_target,
            timescale,
            ..Default::default()
        }
    }

    fn open_duration(&self, samples: &[Sample]) -> u64 {
        total_duration(samples.get(self.from..).unwrap_or_default())
    }

    /// The track's nominal frame duration, in ticks: the mean of the recent durations
    /// within half a median of the median. Outliers are left out because a live encoder
    /// under load sends a late frame (hundreds of ms) and then a burst of frames a
    /// millisecond apart; counting those would make parts of one frame for a second.
    pub(super) fn mean(&self) -> Option<f64> {
        self.nominal
    }

    fn update_mean(&mut self) {
        let mut sorted = [0u32; DURATION_MEMORY];
        let n = self.recent.len().min(DURATION_MEMORY);
        for (slot, &d) in sorted.iter_mut().zip(self.recent.iter()) {
            *slot = d;
        }
        let sorted = &mut sorted[..n];
        sorted.sort_unstable();
        self.nominal = sorted.get(n / 2).map(|&m| {
            let median = f64::from(m);
            let (sum, count) = sorted
                .iter()
                .map(|&d| f64::from(d))
                .filter(|d| (median * 0.5..=median * 1.5).contains(d))
                .fold((0.0, 0usize), |(s, c), d| (s + d, c + 1));
            sum / count.max(1) as f64
        });
    }

    /// How many frames make a part: as many nominal frames as fit the target, with half a
    /// millisecond to spare (the target already allows for RTMP's rounding: six frames
    /// at 29.97 fps are 200.2 ms, stamped 200 or 201 ms).
    fn frames_per_part(&self, target: u64) -> Option<usize> {
        let mean = self.mean()?;
        let spare = f64::from(self.timescale) / 2000.0;
        Some((((target as f64 + spare) / mean).floor() as usize).max(1))
    }

    /// How many samples since the segment start the open part `index` ends after, given
    /// the part `target`; `None` while it has no planned end (the segment's last planned part
    /// and any after it close on their own length).
    fn planned_end(&self, target: u64, most: usize) -> Option<usize> {
        let mean = self.mean()?;
        let predicted = {
            let mut l: Vec<usize> = self.lengths.iter().copied().collect();
            l.sort_unstable();
            match l.get(l.len() / 2) {
                Some(&n) => n,
                None => (self.segment_target as f64 / mean).round() as usize,
            }
        };
        let parts = predicted.div_ceil(most).max(1);
        let k = self.index as usize + 1;
        if k >= parts {
            return None;
        }
        let reference = self.advertised.unwrap_or(target).max(target);
        let even =
            (predicted / parts) as f64 * mean * 100.0 >= (MIN_PART_PERCENT * reference) as f64;
        // Sizes, not positions: a part cut short by the target guard does not shorten the
        // next one.
        let size = if even {
            let at = |k: usize| (k * predicted + parts / 2) / parts;
            at(k) - at(k - 1)
        } else {
            most
        };
        Some(self.from + size)
    }

    /// Before `next` joins the segment: closes the open part if `next` would make it
    /// longer than the target (a part never exceeds it, whatever the jitter).
    pub(super) fn before(
        &mut self,
        samples: &[Sample],
        next: &Sample,
        head: Head,
        out: &mut Vec<Output>,
    ) {
        let Some(target) = self.target else { return };
        if self.from < samples.len()
            && self.open_duration(samples) + u64::from(next.duration) > target
        {
            self.emit(samples, head, out);
        }
    }

    /// After a sample joined: closes the part at once when it has its planned number of
    /// frames, instead of waiting one more frame to find out.
    pub(super) fn after(&mut self, samples: &[Sample], head: Head, out: &mut Vec<Output>) {
        let Some(last) = samples.last() else { return };
        self.recent.push_back(last.duration);
        if self.recent.len() > DURATION_MEMORY {
            self.recent.pop_front();
        }
        self.update_mean();
        let Some(target) = self.target else { return };
        let Some(most) = self.frames_per_part(target) else {
            return;
        };
        let full = match self.planned_end(target, most) {
            Some(end) => samples.len() >= end,
            None => samples.len() - self.from >= most,
        };
        if full {
            self.emit(samples, head, out);
        }
    }

    /// Sets the PART-TARGET the playlists advertise, in this track's ticks.
    pub(super) fn set_advertised(&mut self, ticks: Option<u64>) {
        self.advertised = ticks;
    }

    /// Index of the open part within its segment.
    pub(super) fn index(&self) -> u32 {
        self.index
    }

    /// Following another track's parts: before `next` (starting at media time
    /// `next_media`) joins, closes the open part when `next` starts at or after the other
    /// track's part `end` (media clock), the rule that also places samples in segments, or
    /// when `next` would make the part longer than `most` ticks.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn follow_before(
        &mut self,
        samples: &[Sample],
        next: &Sample,
        next_media: i64,
        end: Option<i64>,
        most: u64,
        head: Head,
        out: &mut Vec<Output>,
    ) {
        if self.target.is_none() || self.from >= samples.len() {
            return;
        }
        let reached = end.is_some_and(|e| next_media >= e);
        if reached || self.open_duration(samples) + u64::from(next.duration) > most {
            self.emit(samples, head, out);
        }
    }

    /// Following another track's parts: after a sample joined, closes the open part at
    /// once when the next sample is sure to start past the other track's part `end`
    /// (`next_media` is where it is expected; a millisecond of slack for RTMP's rounding).
    pub(super) fn follow_after(
        &mut self,
        samples: &[Sample],
        next_media: i64,
        end: Option<i64>,
        head: Head,
        out: &mut Vec<Output>,
    ) {
        let slack = i64::from(MEDIA_CLOCK) / 1000;
        if self.target.is_some()
            && self.from < samples.len()
            && end.is_some_and(|e| next_media >= e + slack)
        {
            self.emit(samples, head, out);
        }
    }

    /// The segment closes: its last part is emitted and the cutter resets. `natural` is
    /// false when the segment was cut short (a discontinuity or the keyframe cap), so its
    /// length says nothing about the next one.
    pub(super) fn close(
        &mut self,
        samples: &[Sample],
        head: Head,
        natural: bool,
        out: &mut Vec<Output>,
    ) {
        if self.target.is_some() && self.from < samples.len() {
            self.emit(samples, head, out);
        }
        if natural && !samples.is_empty() {
            self.lengths.push_back(samples.len());
            if self.lengths.len() > SEGMENT_MEMORY {
                self.lengths.pop_front();
            }
        }
        self.from = 0;
        self.index = 0;
    }

    /// Forgets the frame durations (the track's timing changed, e.g. after a jump).
    pub(super) fn reset_timing(&mut self) {
        self.recent.clear();
        self.nominal = None;
        self.lengths.clear();
    }

    fn emit(&mut self, samples: &[Sample], head: Head, out: &mut Vec<Output>) {
        let Head {
            kind,
            seq,
            timescale,
            media_start,
        } = head;
        out.push(Output::Part(CutPart {
            kind,
            seq,
            index: self.index,
            media_start,
            samples: samples[self.from..].to_vec(),
            timescale,
        }));
        self.from = samples.len();
        self.index += 1;
    }
}

//! A publish session's packaging pipeline: codec configs and frames in, CMAF segments into
//! the rendition's windows out. Runs on the publishing connection's task, so one slow
//! stream never holds up another.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{debug, info, warn};

use super::diagnostics::Tracker;
use super::ladder::Ladder;
use super::lifecycle::Departure;
use super::rendition::{Rendition, TrackOutput};
use super::ts_output::{TsPackager, TsSegment};
use super::Hub;
use crate::flv::timestamp::Reanchor;
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};
use crate::mux::fmp4;
use crate::mux::ts::TsError;
use crate::playlist::hls::longest_segment;
use crate::segment::{CutPart, CutSegment, Output, Segmenter};
use crate::store::{StoredPart, StoredSegment, TrackWindow};

/// fMP4 track ids: distinct per kind so a player muxing both never sees a clash.
fn track_id(kind: TrackKind) -> u32 {
    match kind {
        TrackKind::Video => 1,
        TrackKind::Audio => 2,
    }
}

/// Why a publisher wants its connection closed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// More media arrived before the first keyframe than `[limits] held_bytes` allows.
    #[error("{held} bytes of media before the first keyframe (limits.held_bytes = {limit})")]
    HeldBytes {
        /// Bytes held when the budget ran out.
        held: usize,
        /// The budget.
        limit: usize,
    },
}

/// Feeds one rendition. Dropping it ends the publish as a dropped connection: buffered
/// media is flushed and the playlists wait for a reconnect (see [`super::lifecycle`]).
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    ladder: Arc<Ladder>,
    rendition: Arc<Rendition>,
    segmenter: Segmenter,
    /// Per track: the next segment starts a new timeline.
    discontinuity: [bool; 2],
    /// Added to this publisher's media times to put them on the ladder timeline; set by
    /// the first frame, corrected once by the first keyframe's snap.
    offset: Option<i64>,
    /// Frames that arrived before the first keyframe fixed the offset.
    held: Vec<Frame>,
    /// Bytes `held` costs (payloads plus per-frame bookkeeping).
    held_bytes: usize,
    /// Removes jumps from the encoder's timestamps.
    reanchor: Reanchor,
    /// Per track: segments numbered above this start after a timestamp jump.
    jump_after: [Option<u64>; 2],
    /// Video has gone longer than the keyframe cap without a keyframe (logged once).
    overdue: bool,
    /// A segment was cut between keyframes (logged once per publish).
    cut_between_keyframes: bool,
    /// The video init segment waits for the first keyframe's composition offset (its
    /// edit list).
    edit_pending: bool,
    snapped: bool,
    /// The last segment number of this rendition's previous publish, when this one is a
    /// reconnect: its first keyframe snaps only to ladder boundaries numbered above it.
    resumed_after: Option<u64>,
    /// Misalignment (ticks) of the recent cuts, newest last.
    misalignments: VecDeque<i64>,
    finished: bool,
    /// TS muxing state, when the TS output is on.
    ts: Option<TsPackager>,
    /// Current configs, kept here for the TS muxer (it needs parameter sets and the ASC).
    video: Option<CodecConfig>,
    audio: Option<CodecConfig>,
    /// The next TS segment starts a new timeline.
    ts_discontinuity: bool,
    /// Ingest measurements and warnings.
    ingest: Tracker,
}

fn slot(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl Publisher {
    pub(super) fn new(
        hub: Arc<Hub>,
        ladder: Arc<Ladder>,
        rendition: Arc<Rendition>,
        ip: Option<std::net::IpAddr>,
    ) -> Self {
        let (last_seq, resumed) = {
            let state = rendition.read();
            let last = [state.video.as_ref(), state.audio.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|t| t.window.last().map(|s| s.seq))
                .max();
            (last, last.is_some())
        };
        let target = hub.config().segment.target();
        // An alternative audio rendition is in no TS variant (they carry their own audio).
        let with_ts = hub.config().outputs.hls_ts && rendition.audio_track.is_none();
        // Fresh or reconnecting, a rendition takes the ladder's numbers; the numbers a
        // reconnecting one missed become gaps in its playlists (see `gaps`).
        let timeline = ladder.timeline.clone();
        let config = hub.config();
        let parts = config
            .outputs
            .cmaf()
            .then(|| config.low_latency.part_target())
            .flatten();
        // Segments stay short enough for the fixed EXT-X-TARGETDURATION.
        let cap = config.segment.keyframe_cap();
        let longest = longest_segment(config.segment.target_duration).min(cap);
        let ingest = Tracker::new(
            &ladder.app,
            &rendition.stream_name,
            config.segment.target_duration * 1000.0,
            ip,
            &rendition.ingest,
        )
        .with_bitrate_limit(config.rtmp.warn_bitrate);
        Publisher {
            ladder,
            rendition,
            segmenter: Segmenter::with_timeline(target, timeline, last_seq)
                .with_parts(parts)
                .with_limits(longest, cap),
            discontinuity: [resumed; 2],
            offset: None,
            held: Vec::new(),
            held_bytes: 0,
            reanchor: Reanchor::new(
                (config.segment.timestamp_jump * f64::from(crate::media::MEDIA_CLOCK)) as i64,
            ),
            jump_after: [None; 2],
            overdue: false,
            cut_between_keyframes: false,
            edit_pending: false,
            snapped: false,
            resumed_after: last_seq,
            misalignments: VecDeque::new(),
            finished: false,
            ts: with_ts.then(TsPackager::default),
            video: None,
            audio: None,
            ts_discontinuity: resumed,
            ingest,
            hub,
        }
    }

    /// The ladder this publisher feeds.
    pub fn ladder(&self) -> &Arc<Ladder> {
        &self.ladder
    }

    /// The rendition this publisher feeds.
    pub fn rendition(&self) -> &Arc<Rendition> {
        &self.rendition
    }

    /// A (new) decoder configuration for one track. A repeat of the current one is a no-op;
    /// a different one starts a new init segment version.
    pub fn config(&mut self, config: CodecConfig) {
        let kind = config.kind();
        let unchanged = {
            let state = self.rendition.read();
            state.track(kind).is_some_and(|t| t.config == config)
        };
        // This publisher's own copy: a fresh publisher on a rendition that a dropped one
        // left configured (reconnect before its first segment) must still set its track up.
        let mine = match kind {
            TrackKind::Video => self.video.as_ref(),
            TrackKind::Audio => self.audio.as_ref(),
        };
        if unchanged && mine == Some(&config) && !self.discontinuity[slot(kind)] {
            return; // encoders may repeat the sequence header; nothing changed
        }
        let init = match fmp4::init_segment(&config, track_id(kind)) {
            Ok(b) => b,
            Err(e) => {
                warn!(track = kind.as_str(), error = %e, "cannot build init segment; track ignored");
                return;
            }
        };
        // What the segmenter still holds was coded with the old configuration: store it
        // under the old init before switching.
        let frame_duration = match &config {
            CodecConfig::Aac(c) => Some(c.samples_per_frame()),
            // Opus packets vary (2.5 to 120 ms): durations come from the timestamps.
            _ => None,
        };
        if !config.fits_ts() && self.ts.take().is_some() {
            info!(app = %self.ladder.app, stream = %self.rendition.stream_name,
                codec = %config.codec_string(),
                "MPEG-TS output skipped for this rendition: the codec is packaged as CMAF only");
        }
        match kind {
            TrackKind::Video => self.video = Some(config.clone()),
            TrackKind::Audio => self.audio = Some(config.clone()),
        }
        let flushed = self
            .segmenter
            .set_track(kind, config.timescale(), frame_duration);
        self.store(flushed);
        // Init versions and part numbers grow with the wall clock (and at least by one), so
        // their URLs are never reused by a republish or a codec change and can be cached
        // like segments. Parts come at most every 50 ms.
        let version = {
            let state = self.rendition.read();
            let previous = state.track(kind).map(|t| t.init_version + 1);
            previous.unwrap_or(0).max(crate::wallclock::epoch_number(1))
        };
        let first_part = crate::wallclock::epoch_number(50);
        let (app, base, label) = (&self.ladder.app, &self.ladder.base, &self.rendition.label);
        let window = self.hub.track_window(app, base, label, kind, first_part);
        let mut state = self.rendition.write();
        let track = state.track_mut(kind);
        if let Some(old) = track.as_ref() {
            if old.config != config {
                info!(track = kind.as_str(), codec = %config.codec_string(), "codec configuration changed");
                self.discontinuity[slot(kind)] = true;
            }
        }
        let out = track.get_or_insert_with(|| TrackOutput {
            config: config.clone(),
            init_version: version,
            window,
        });
        out.config = config.clone();
        out.init_version = version;
        out.window.add_init(version, init);
        drop(state);
        self.edit_pending |= kind == TrackKind::Video;
        debug!(track = kind.as_str(), codec = %config.codec_string(), version, "track configured");
    }

    /// One frame of media. An error means the connection must be closed.
    pub fn frame(&mut self, mut frame: Frame) -> Result<(), FrameError> {
        let raw_dts = frame.dts;
        self.reanchor_frame(&mut frame);
        self.ingest.frame(raw_dts, &frame, &self.rendition.ingest);
        let timeline = self.ladder.timeline.clone();
        let offset = *self
            .offset
            .get_or_insert_with(|| timeline.join(frame.dts, SystemTime::now()));
        if !self.snapped {
            let has_video = self.video.is_some();
            let anchor = if has_video {
                frame.kind == TrackKind::Video && frame.keyframe
            } else {
                true
            };
            if !anchor {
                self.hold(frame)?;
                return Ok(());
            }
            // Land the first keyframe exactly on the ladder boundary it is nearest to.
            let corrected = offset
                + if anchor {
                    timeline.snap(frame.dts + offset, self.resumed_after)
                } else {
                    0
                };
            self.offset = Some(corrected);
            self.snapped = true;
            self.rendition.write().timeline_origin = timeline.origin();
            self.held_bytes = 0;
            for held in std::mem::take(&mut self.held) {
                self.push(held, corrected);
            }
        }
        let offset = self.offset.unwrap_or(offset);
        self.push(frame, offset);
        Ok(())
    }

    /// Keeps a frame until the first keyframe, within the `[limits] held_bytes` budget.
    fn hold(&mut self, frame: Frame) -> Result<(), FrameError> {
        let limit = self.hub.config().limits.held_bytes;
        self.held_bytes += frame.data.len() + std::mem::size_of::<Frame>();
        if self.held_bytes > limit {
            warn!(app = %self.ladder.app, stream = %self.rendition.stream_name,
                held = self.held_bytes, limit, "no keyframe within the held_bytes budget: closing the connection");
            let held = self.held_bytes;
            self.held.clear();
            self.held_bytes = 0;
            return Err(FrameError::HeldBytes { held, limit });
        }
        self.held.push(frame);
        Ok(())
    }

    /// Removes a timestamp jump (a wrap the unwrapper could not see, an encoder restart,
    /// a far-future frame): the stream's timeline continues, and the next segment starts
    /// at the next keyframe with EXT-X-DISCONTINUITY.
    fn reanchor_frame(&mut self, frame: &mut Frame) {
        let mapped = self.reanchor.map(slot(frame.kind), frame.dts);
        let shift = mapped.time - frame.dts;
        frame.dts += shift;
        frame.pts += shift;
        let Some(jump) = mapped.jump else { return };
        warn!(app = %self.ladder.app, stream = %self.rendition.stream_name, track = frame.kind.as_str(),
            jump_s = jump as f64 / f64::from(MEDIA_CLOCK),
            "timestamp discontinuity: timeline re-anchored, new segment at the next keyframe");
        metrics::counter!("packgate_timestamp_jumps_total").increment(1);
        self.ingest.jump();
        if let Some(open) = self.segmenter.break_at_next_keyframe() {
            self.jump_after = [Some(open); 2];
        }
    }

    /// Rewrites the current video init segment (same version: nothing refers to it yet)
    /// with an edit list that shows the first keyframe at its decode time, `offset` being
    /// its composition offset on the media clock.
    fn set_edit(&mut self, offset: i64) {
        if offset <= 0 {
            return;
        }
        let mut state = self.rendition.write();
        let Some(track) = state.video.as_mut() else {
            return;
        };
        let timescale = i64::from(track.config.timescale());
        let delay = (offset * timescale + i64::from(MEDIA_CLOCK) / 2) / i64::from(MEDIA_CLOCK);
        match fmp4::init_segment_with_delay(&track.config, track_id(TrackKind::Video), delay as u64)
        {
            Ok(init) => track.window.add_init(track.init_version, init),
            Err(e) => warn!(error = %e, "cannot add the edit list to the init segment"),
        }
    }

    /// True (once) when segment `seq` of track `kind` is the first after a timestamp jump.
    fn after_jump(&mut self, kind: TrackKind, seq: u64, consume: bool) -> bool {
        let slot = &mut self.jump_after[slot(kind)];
        let hit = slot.is_some_and(|open| seq > open);
        if hit && consume {
            *slot = None;
        }
        hit
    }

    fn push(&mut self, mut frame: Frame, offset: i64) {
        frame.dts += offset;
        frame.pts += offset;
        if frame.dts < 0 {
            return; // before the ladder began: nothing to align it with
        }
        if self.edit_pending && frame.kind == TrackKind::Video && frame.keyframe {
            self.edit_pending = false;
            self.set_edit(frame.pts - frame.dts);
        }
        let done = self.segmenter.push(frame);
        self.store(done);
        self.note_keyframes();
    }

    /// Ends the publish now as a dropped connection (also done on drop): the playlists
    /// stay live for a reconnect until the linger time passes.
    pub fn finish(&mut self) {
        self.finish_as(Departure::Dropped);
    }

    /// Ends the publish now; a clean unpublish ends the playlists at once.
    pub fn finish_as(&mut self, how: Departure) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.ingest.finish(&self.rendition.ingest);
        let done = self.segmenter.finish();
        self.store(done);
        if let Some(ts) = self.ts.as_mut() {
            let rest = ts.flush(self.video.as_ref(), self.audio.as_ref());
            self.store_ts(rest);
        }
        let (app, base) = (&self.ladder.app, &self.ladder.base);
        let clean = how == Departure::Clean;
        self.hub
            .recorder()
            .stopped(app, base, &self.rendition.label, clean);
        self.clear_notes();
        super::lifecycle::stopped(&self.hub, &self.ladder, &self.rendition, how);
    }

    /// Wall-clock time of ladder time `media_start` (EXT-X-PROGRAM-DATE-TIME).
    fn wall_clock(&self, media_start: i64) -> SystemTime {
        match self.ladder.timeline.origin() {
            Some(origin) => crate::wallclock::shift(origin, media_start),
            None => SystemTime::now(),
        }
    }

    /// The gaps `window` needs before segment `seq` at ladder time `media_start` (a rung
    /// back after a drop), computed from a snapshot, with no lock held.
    fn gaps(&self, window: Option<&TrackWindow>, seq: u64, media_start: i64) -> Vec<StoredSegment> {
        window.map_or_else(Vec::new, |w| {
            super::gaps::missing(w, seq, media_start, &*self.ladder.timeline)
        })
    }

    fn track_gaps(&self, kind: TrackKind, seq: u64, media_start: i64) -> Vec<StoredSegment> {
        let state = self.rendition.read();
        self.gaps(state.track(kind).map(|t| &t.window), seq, media_start)
    }

    fn store_ts(&mut self, segments: Vec<Result<TsSegment, TsError>>) {
        let window_len = self.hub.config().segment.window;
        for seg in segments {
            let seg = match seg {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot mux TS segment; dropped");
                    continue;
                }
            };
            let stored = StoredSegment {
                seq: seg.seq,
                start: seg.start,
                duration: seg.duration,
                timescale: MEDIA_CLOCK,
                wall_clock: self.wall_clock(seg.media_start),
                init_version: 0,
                discontinuity: std::mem::take(&mut self.ts_discontinuity),
                parts: vec![StoredPart {
                    id: seg.seq,
                    duration: seg.duration,
                    independent: seg.independent,
                    data: seg.data,
                }],
            };
            let gaps = self.gaps(self.rendition.read().ts.as_ref(), seg.seq, seg.media_start);
            let mut state = self.rendition.write();
            let window = state.ts.get_or_insert_with(|| TrackWindow::new(window_len));
            gaps.into_iter().for_each(|g| window.push_gap(g));
            window.push(stored);
            drop(state);
            metrics::counter!("packgate_segments_total", "track" => "ts").increment(1);
        }
    }

    fn store(&mut self, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        let cmaf = self.hub.config().outputs.cmaf();
        for output in outputs {
            let cut = match output {
                Output::Part(part) => {
                    self.store_part(&part);
                    // Wake blocked playlist and part requests as each part lands.
                    self.ladder.notify();
                    continue;
                }
                Output::Segment(cut) => cut,
            };
            if cut.kind == TrackKind::Video || self.video.is_none() {
                self.note_alignment();
                self.rendition.traffic.segment_produced();
            }
            let discontinuity = std::mem::take(&mut self.discontinuity[slot(cut.kind)])
                | self.after_jump(cut.kind, cut.seq, true);
            if cut.kind == TrackKind::Video
                && !cut.samples.first().is_some_and(|s| s.keyframe)
                && !std::mem::replace(&mut self.cut_between_keyframes, true)
            {
                warn!(app = %self.ladder.app, stream = %self.rendition.stream_name,
                    longest_s = self.segmenter.longest_segment_secs(),
                    "keyframes further apart than the longest segment: cutting between keyframes (segments not independent); use a GOP no longer than segment.target_duration");
            }
            self.ts_discontinuity |= discontinuity;
            if cmaf {
                self.store_cmaf(&cut, discontinuity);
            }
            let has = {
                let state = self.rendition.read();
                (state.video.is_some(), state.audio.is_some())
            };
            let done = match self.ts.as_mut() {
                Some(ts) => ts.push(cut, has, self.video.as_ref(), self.audio.as_ref()),
                None => Vec::new(),
            };
            self.store_ts(done);
        }
        self.ladder.notify();
    }

    /// One LL-HLS part: a CMAF chunk appended to the track's open segment.
    fn store_part(&mut self, part: &CutPart) {
        let kind = part.kind;
        metrics::histogram!("packgate_part_duration_seconds", "track" => kind.as_str())
            .record(part.duration() as f64 / f64::from(part.timescale));
        let next_id = {
            let state = self.rendition.read();
            state.track(kind).map(|t| t.window.next_part_id())
        };
        let Some(next_id) = next_id else { return };
        // The first part carries the segment's styp, so the parts concatenate to exactly
        // the segment.
        let muxed = if part.index == 0 {
            fmp4::media_segment(track_id(kind), next_id as u32, &part.samples)
        } else {
            fmp4::fragment(track_id(kind), next_id as u32, &part.samples)
        };
        let data = match muxed {
            Ok(b) => b,
            Err(e) => {
                warn!(track = kind.as_str(), seq = part.seq, part = part.index, error = %e, "cannot mux part; dropped");
                return;
            }
        };
        let wall_clock = self.wall_clock(part.media_start);
        let discontinuity =
            self.discontinuity[slot(kind)] || self.after_jump(kind, part.seq, false);
        let advertised = self
            .segmenter
            .advertised_part_target()
            .map(|d| d.as_secs_f64());
        let gaps = self.track_gaps(kind, part.seq, part.media_start);
        let mut state = self.rendition.write();
        if state.part_target.is_none() {
            state.part_target = advertised;
        }
        if let Some(track) = state.track_mut(kind).as_mut() {
            gaps.into_iter().for_each(|g| track.window.push_gap(g));
            let init_version = track.init_version;
            let head = || StoredSegment {
                seq: part.seq,
                start: part.samples.first().map_or(0, |s| s.dts),
                duration: 0,
                timescale: part.timescale,
                wall_clock,
                init_version,
                discontinuity,
                parts: Vec::new(),
            };
            track
                .window
                .push_part(head, part.duration(), part.independent(), data);
        }
    }

    fn store_cmaf(&mut self, cut: &CutSegment, discontinuity: bool) {
        let kind = cut.kind;
        let low_latency = self.segmenter.has_parts();
        // With parts, the segment is the parts already stored; otherwise one fragment.
        let parts = if low_latency {
            Vec::new()
        } else {
            match fmp4::media_segment(track_id(kind), cut.seq as u32, &cut.samples) {
                Ok(data) => vec![StoredPart {
                    id: cut.seq,
                    duration: cut.duration(),
                    independent: cut.samples.first().is_some_and(|s| s.keyframe),
                    data,
                }],
                Err(e) => {
                    warn!(track = kind.as_str(), seq = cut.seq, error = %e, "cannot mux segment; dropped");
                    return;
                }
            }
        };
        let wall_clock = self.wall_clock(cut.media_start);
        let (app, base) = (&self.ladder.app, &self.ladder.base);
        // Recordings keep the ladder's own audio only: their VoD master has no alternatives.
        let record = self.hub.recorder().wants(app, base) && self.rendition.audio_track.is_none();
        let gaps = self.track_gaps(kind, cut.seq, cut.media_start);
        let mut state = self.rendition.write();
        let mut tap = None;
        if let Some(track) = state.track_mut(kind).as_mut() {
            gaps.into_iter().for_each(|g| track.window.push_gap(g));
            track.window.push(StoredSegment {
                seq: cut.seq,
                start: cut.start(),
                duration: cut.duration(),
                timescale: cut.timescale,
                wall_clock,
                init_version: track.init_version,
                discontinuity,
                parts,
            });
            if record {
                tap = crate::record::Tap::new(&track.config, &track.window, cut.seq);
            }
        }
        drop(state);
        if let Some(tap) = tap {
            let label = &self.rendition.label;
            self.hub.recorder().segment(app, base, label, tap);
        }
        metrics::counter!("packgate_segments_total", "track" => kind.as_str()).increment(1);
        metrics::histogram!("packgate_segment_duration_seconds", "track" => kind.as_str())
            .record(cut.duration_secs());
        debug!(
            track = kind.as_str(),
            seq = cut.seq,
            secs = cut.duration_secs(),
            "segment ready"
        );
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}

#[path = "publisher_notes.rs"]
mod notes;

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;

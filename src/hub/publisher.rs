//! A publish session's packaging pipeline: codec configs and frames in, CMAF and TS
//! segments into the rendition's windows out. Runs on the publishing connection's task,
//! so one slow stream never holds up another.
//!
//! It only joins the parts, each of which does one thing: [`TimelineMap`] (media clock to
//! ladder timeline), the [`Segmenter`] (cuts), [`CmafOutput`] and [`TsPackager`] (muxing),
//! and [`Storage`] (into the store, the recorder, the lifecycle).

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::cmaf_output::CmafOutput;
use super::diagnostics::Tracker;
use super::ladder::Ladder;
use super::lifecycle::{Departure, Expire};
use super::rendition::{slot, Rendition};
use super::services::Services;
use super::storage::Storage;
use super::timeline_map::{Placed, TimelineMap};
use super::ts_output::{TsPackager, TsSegment};
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};
use crate::mux::ts::TsError;
use crate::playlist::hls::longest_segment;
use crate::segment::{CutPart, CutSegment, Output, Segmenter};

pub use super::timeline_map::FrameError;

/// Feeds one rendition. Dropping it ends the publish as a dropped connection: buffered
/// media is flushed and the playlists wait for a reconnect (see [`super::lifecycle`]).
#[derive(Debug)]
pub struct Publisher {
    store: Storage,
    map: TimelineMap,
    segmenter: Segmenter,
    cmaf: CmafOutput,
    /// TS muxing state, when the TS output is on.
    ts: Option<TsPackager>,
    /// Per track: this publisher has set the track up (a rendition continued from a
    /// dropped publisher may hold a track this one has not configured yet).
    configured: [bool; 2],
    /// Per track: the next segment starts a new timeline.
    discontinuity: [bool; 2],
    /// Per track: segments numbered above this start after a timestamp jump.
    jump_after: [Option<u64>; 2],
    /// Video has gone longer than the keyframe cap without a keyframe (logged once).
    overdue: bool,
    /// A segment was cut between keyframes (logged once per publish).
    cut_between_keyframes: bool,
    finished: bool,
    /// Ingest measurements and warnings.
    ingest: Tracker,
}

impl Publisher {
    pub(super) fn new(
        services: Arc<Services>,
        expire: Expire,
        ladder: Arc<Ladder>,
        rendition: Arc<Rendition>,
        ip: Option<std::net::IpAddr>,
    ) -> Self {
        let store = Storage {
            services,
            expire,
            ladder,
            rendition,
        };
        let last_seq = store.last_seq();
        let resumed = last_seq.is_some();
        let config = store.services.config();
        let (ladder, rendition) = (&store.ladder, &store.rendition);
        // An alternative audio rendition is in no TS variant (they carry their own audio).
        let with_ts = config.outputs.hls_ts && rendition.audio_track.is_none();
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
        // Fresh or reconnecting, a rendition takes the ladder's numbers; the numbers a
        // reconnecting one missed become gaps in its playlists (see `gaps`).
        let segmenter =
            Segmenter::with_timeline(config.segment.target(), ladder.timeline.clone(), last_seq)
                .with_parts(parts)
                .with_limits(longest, cap);
        let map = TimelineMap::new(
            ladder.timeline.clone(),
            last_seq,
            config.limits.held_bytes,
            (config.segment.timestamp_jump * f64::from(MEDIA_CLOCK)) as i64,
            config.segment.window,
        );
        Publisher {
            map,
            segmenter,
            cmaf: CmafOutput::default(),
            ts: with_ts.then(|| TsPackager::new(resumed)),
            configured: [false; 2],
            discontinuity: [resumed; 2],
            jump_after: [None; 2],
            overdue: false,
            cut_between_keyframes: false,
            finished: false,
            ingest,
            store,
        }
    }

    /// The ladder this publisher feeds.
    pub fn ladder(&self) -> &Arc<Ladder> {
        &self.store.ladder
    }

    /// The rendition this publisher feeds.
    pub fn rendition(&self) -> &Arc<Rendition> {
        &self.store.rendition
    }

    /// (app, stream name), for log lines.
    fn names(&self) -> (&str, &str) {
        (&self.store.ladder.app, &self.store.rendition.stream_name)
    }

    /// A (new) decoder configuration for one track. A repeat of the current one is a no-op;
    /// a different one starts a new init segment version.
    pub fn config(&mut self, config: CodecConfig) {
        let kind = config.kind();
        let unchanged = {
            let state = self.store.rendition.read();
            state.track(kind).is_some_and(|t| t.config == config)
        };
        // A fresh publisher on a rendition that a dropped one left configured (reconnect
        // before its first segment) must still set its track up.
        if unchanged && self.configured[slot(kind)] && !self.discontinuity[slot(kind)] {
            return; // encoders may repeat the sequence header; nothing changed
        }
        let init = match self.cmaf.init(&config) {
            Ok(b) => b,
            Err(e) => {
                warn!(track = kind.as_str(), error = %e, "cannot build init segment; track ignored");
                return;
            }
        };
        if !config.fits_ts() && self.ts.take().is_some() {
            let (app, stream) = self.names();
            info!(app = %app, stream = %stream, codec = %config.codec_string(),
                "MPEG-TS output skipped for this rendition: the codec is packaged as CMAF only");
        }
        self.configured[slot(kind)] = true;
        // What the segmenter still holds was coded with the old configuration: store it
        // under the old init before switching.
        let frame_duration = match &config {
            CodecConfig::Aac(c) => Some(c.samples_per_frame()),
            // Opus packets vary (2.5 to 120 ms): durations come from the timestamps.
            _ => None,
        };
        let flushed = self
            .segmenter
            .set_track(kind, config.timescale(), frame_duration);
        self.outputs(flushed);
        let (version, changed) = self.store.add_init(kind, &config, init);
        if changed {
            info!(track = kind.as_str(), codec = %config.codec_string(), "codec configuration changed");
            self.discontinuity[slot(kind)] = true;
        }
        debug!(track = kind.as_str(), codec = %config.codec_string(), version, "track configured");
    }

    /// One frame of media. An error means the connection must be closed.
    pub fn frame(&mut self, mut frame: Frame) -> Result<(), FrameError> {
        let raw_dts = frame.dts;
        if let Some(jump) = self.map.reanchor(&mut frame) {
            self.jumped(frame.kind, jump);
        }
        self.ingest
            .frame(raw_dts, &frame, &self.store.rendition.ingest);
        let has_video = self.configured[slot(TrackKind::Video)];
        let (app, stream) = (&self.store.ladder.app, &self.store.rendition.stream_name);
        let time = self.store.services.time();
        match self
            .map
            .place(frame, || time.now(), has_video, (app, stream))?
        {
            Placed::Held => {}
            Placed::Ready(frame) => self.push(frame),
            Placed::First(held, frame) => {
                self.store
                    .rendition
                    .write()
                    .set_timeline_origin(self.map.origin());
                for held in held {
                    self.push(held);
                }
                self.push(frame);
            }
        }
        Ok(())
    }

    /// A timestamp jump was removed: the next segment starts at the next keyframe with
    /// EXT-X-DISCONTINUITY.
    fn jumped(&mut self, kind: TrackKind, jump: i64) {
        let (app, stream) = self.names();
        warn!(app = %app, stream = %stream, track = kind.as_str(),
            jump_s = jump as f64 / f64::from(MEDIA_CLOCK),
            "timestamp discontinuity: timeline re-anchored, new segment at the next keyframe");
        metrics::counter!("packgate_timestamp_jumps_total").increment(1);
        self.ingest.jump();
        if let Some(open) = self.segmenter.break_at_next_keyframe() {
            self.jump_after = [Some(open); 2];
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

    /// A frame on the ladder timeline into the segmenter.
    fn push(&mut self, frame: Frame) {
        if frame.dts < 0 {
            return; // before the ladder began: nothing to align it with
        }
        if self.cmaf.wants_edit() && frame.kind == TrackKind::Video && frame.keyframe {
            let state = self.store.rendition.read();
            let config = state.video.as_ref().map(|t| &t.config);
            if let Some(init) = self.cmaf.edit(true, frame.pts - frame.dts, config) {
                self.store.replace_init(TrackKind::Video, init);
            }
        }
        let done = self.segmenter.push(frame);
        self.outputs(done);
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
        self.ingest.finish(&self.store.rendition.ingest);
        let done = self.segmenter.finish();
        self.outputs(done);
        if let Some(ts) = self.ts.as_mut() {
            let state = self.store.rendition.read();
            let (video, audio) = (state.video.as_ref(), state.audio.as_ref());
            let rest = ts.flush(video.map(|t| &t.config), audio.map(|t| &t.config));
            self.store_ts(rest);
        }
        self.clear_notes();
        self.store.close(how);
    }

    fn store_ts(&mut self, segments: Vec<Result<TsSegment, TsError>>) {
        for seg in segments {
            match seg {
                Ok(s) => self.store.ts(s),
                Err(e) => warn!(error = %e, "cannot mux TS segment; dropped"),
            }
        }
    }

    /// What the segmenter produced: parts and segments, muxed and stored.
    fn outputs(&mut self, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        let cmaf = self.store.services.config().outputs.cmaf();
        for output in outputs {
            match output {
                Output::Part(part) => {
                    self.part(&part);
                    // Wake blocked playlist and part requests as each part lands.
                    self.store.ladder.notify();
                }
                Output::Segment(cut) => self.segment(cut, cmaf),
            }
        }
        self.store.ladder.notify();
    }

    /// A finished segment of one track: CMAF (when on) and its share of a TS segment.
    fn segment(&mut self, cut: CutSegment, cmaf: bool) {
        if cut.kind == TrackKind::Video || !self.configured[slot(TrackKind::Video)] {
            self.note_alignment();
            self.store.rendition.traffic.segment_produced();
        }
        let discontinuity = std::mem::take(&mut self.discontinuity[slot(cut.kind)])
            | self.after_jump(cut.kind, cut.seq, true);
        if cut.kind == TrackKind::Video
            && !cut.samples.first().is_some_and(|s| s.keyframe)
            && !std::mem::replace(&mut self.cut_between_keyframes, true)
        {
            let (app, stream) = self.names();
            warn!(app = %app, stream = %stream,
                longest_s = self.segmenter.longest_segment_secs(),
                "keyframes further apart than the longest segment: cutting between keyframes (segments not independent); use a GOP no longer than segment.target_duration");
        }
        if cmaf {
            // With parts, the segment is the parts already stored; otherwise one fragment.
            let parts = if self.segmenter.has_parts() {
                Some(Vec::new())
            } else {
                self.cmaf.segment(&cut).map(|p| vec![p])
            };
            if let Some(parts) = parts {
                self.store.segment(&cut, parts, discontinuity);
            }
        }
        let Some(ts) = self.ts.as_mut() else { return };
        let state = self.store.rendition.read();
        let (video, audio) = (state.video.as_ref(), state.audio.as_ref());
        let has = (video.is_some(), audio.is_some());
        let (video, audio) = (video.map(|t| &t.config), audio.map(|t| &t.config));
        let done = ts.push(cut, discontinuity, has, video, audio);
        drop(state);
        self.store_ts(done);
    }

    /// One LL-HLS part: a CMAF chunk appended to the track's open segment.
    fn part(&mut self, part: &CutPart) {
        let kind = part.kind;
        metrics::histogram!("packgate_part_duration_seconds", "track" => kind.as_str())
            .record(part.duration() as f64 / f64::from(part.timescale));
        let Some(data) = self.cmaf.part(part) else {
            return;
        };
        let discontinuity =
            self.discontinuity[slot(kind)] || self.after_jump(kind, part.seq, false);
        let advertised = self
            .segmenter
            .advertised_part_target()
            .map(|d| d.as_secs_f64());
        self.store.part(part, data, discontinuity, advertised);
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

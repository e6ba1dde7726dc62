//! A publish session's packaging pipeline: codec configs and frames in, CMAF segments into
//! the rendition's windows out. Runs on the publishing connection's task, so one slow
//! stream never holds up another.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

use super::ladder::Ladder;
use super::rendition::{Rendition, TrackOutput};
use super::ts_output::{TsPackager, TsSegment};
use super::Hub;
use crate::codec::aac::AacConfig;
use crate::codec::h264::AvcConfig;
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};
use crate::mux::fmp4;
use crate::mux::ts::TsError;
use crate::segment::{CutSegment, Segmenter};
use crate::store::{StoredSegment, TrackWindow};

/// fMP4 track ids: distinct per kind so a player muxing both never sees a clash.
fn track_id(kind: TrackKind) -> u32 {
    match kind {
        TrackKind::Video => 1,
        TrackKind::Audio => 2,
    }
}

/// Feeds one rendition. Dropping it ends the publish: buffered media is flushed, the
/// playlists get EXT-X-ENDLIST, and the rendition is removed after the linger time.
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    ladder: Arc<Ladder>,
    rendition: Arc<Rendition>,
    segmenter: Segmenter,
    /// Per track: the next segment starts a new timeline.
    discontinuity: [bool; 2],
    /// Media time and wall-clock time of the first frame, for PROGRAM-DATE-TIME.
    anchor: Option<(i64, SystemTime)>,
    finished: bool,
    /// TS muxing state, when the TS output is on.
    ts: Option<TsPackager>,
    /// Current configs, kept here for the TS muxer (it needs SPS/PPS and the ASC).
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    /// The next TS segment starts a new timeline.
    ts_discontinuity: bool,
}

/// Target durations elapsed since the Unix epoch.
fn clock_sequence(target: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (now.as_millis() / target.as_millis().max(1)) as u64
}

fn slot(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl Publisher {
    pub(super) fn new(hub: Arc<Hub>, ladder: Arc<Ladder>, rendition: Arc<Rendition>) -> Self {
        let (first_seq, resumed) = {
            let state = rendition.read();
            let last = [state.video.as_ref(), state.audio.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|t| t.window.last().map(|s| s.seq))
                .max();
            (last.map(|s| s + 1), last.is_some())
        };
        let target = hub.config().segment.target();
        // A fresh rendition numbers its segments by target durations since the epoch, so a
        // name published again later never reuses a segment URL a CDN may have cached.
        let first_seq = first_seq.unwrap_or_else(|| clock_sequence(target));
        Publisher {
            ladder,
            rendition,
            segmenter: Segmenter::new(target, first_seq),
            discontinuity: [resumed; 2],
            anchor: None,
            finished: false,
            ts: hub.config().outputs.hls_ts.then(TsPackager::default),
            avc: None,
            aac: None,
            ts_discontinuity: resumed,
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
        if unchanged && !self.discontinuity[slot(kind)] {
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
            CodecConfig::H264(_) => None,
        };
        match &config {
            CodecConfig::H264(c) => self.avc = Some(c.clone()),
            CodecConfig::Aac(c) => self.aac = Some(c.clone()),
        }
        let flushed = self
            .segmenter
            .set_track(kind, config.timescale(), frame_duration);
        self.store(flushed);
        // An init version is the first sequence number that uses it: unique across
        // republishes, so init URLs can be cached like segments.
        let version = self.segmenter.next_seq();
        let window_len = self.hub.config().segment.window;
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
            window: TrackWindow::new(window_len),
        });
        out.config = config.clone();
        out.init_version = version;
        out.window.add_init(version, init);
        drop(state);
        debug!(track = kind.as_str(), codec = %config.codec_string(), version, "track configured");
    }

    /// One frame of media.
    pub fn frame(&mut self, frame: Frame) {
        if self.anchor.is_none() {
            let now = SystemTime::now();
            self.anchor = Some((frame.dts, now));
            let origin = offset(now, -frame.dts);
            self.rendition.write().timeline_origin = Some(origin);
        }
        let done = self.segmenter.push(frame);
        self.store(done);
    }

    /// Ends the publish now (also done on drop).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let done = self.segmenter.finish();
        self.store(done);
        if let Some(ts) = self.ts.as_mut() {
            let rest = ts.flush(self.avc.as_ref(), self.aac.as_ref());
            self.store_ts(rest);
        }
        let generation = {
            let mut state = self.rendition.write();
            state.ended = true;
            state.generation
        };
        self.ladder.notify();
        info!(app = %self.ladder.app, stream = %self.rendition.stream_name, "publish ended");
        let linger = Duration::from_secs_f64(self.hub.config().segment.linger);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (hub, ladder, rendition) = (
                self.hub.clone(),
                self.ladder.clone(),
                self.rendition.clone(),
            );
            rt.spawn(async move {
                tokio::time::sleep(linger).await;
                hub.expire(&ladder, &rendition, generation);
            });
        }
    }

    fn wall_clock(&self, media_start: i64) -> SystemTime {
        match self.anchor {
            Some((anchor_media, anchor_wall)) => offset(anchor_wall, media_start - anchor_media),
            None => SystemTime::now(),
        }
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
                data: seg.data,
            };
            let mut state = self.rendition.write();
            state
                .ts
                .get_or_insert_with(|| TrackWindow::new(window_len))
                .push(stored);
            drop(state);
            metrics::counter!("packgate_segments_total", "track" => "ts").increment(1);
        }
    }

    fn store(&mut self, segments: Vec<CutSegment>) {
        if segments.is_empty() {
            return;
        }
        let cmaf = self.hub.config().outputs.cmaf();
        for cut in segments {
            let discontinuity = std::mem::take(&mut self.discontinuity[slot(cut.kind)]);
            self.ts_discontinuity |= discontinuity;
            if cmaf {
                self.store_cmaf(&cut, discontinuity);
            }
            let has = {
                let state = self.rendition.read();
                (state.video.is_some(), state.audio.is_some())
            };
            let done = match self.ts.as_mut() {
                Some(ts) => ts.push(cut, has, self.avc.as_ref(), self.aac.as_ref()),
                None => Vec::new(),
            };
            self.store_ts(done);
        }
        self.ladder.notify();
    }

    fn store_cmaf(&mut self, cut: &CutSegment, discontinuity: bool) {
        let kind = cut.kind;
        let data = match fmp4::media_segment(track_id(kind), cut.seq as u32, &cut.samples) {
            Ok(b) => b,
            Err(e) => {
                warn!(track = kind.as_str(), seq = cut.seq, error = %e, "cannot mux segment; dropped");
                return;
            }
        };
        let wall_clock = self.wall_clock(cut.media_start);
        let mut state = self.rendition.write();
        if let Some(track) = state.track_mut(kind).as_mut() {
            track.window.push(StoredSegment {
                seq: cut.seq,
                start: cut.start(),
                duration: cut.duration(),
                timescale: cut.timescale,
                wall_clock,
                init_version: track.init_version,
                discontinuity,
                data,
            });
        }
        drop(state);
        metrics::counter!("packgate_segments_total", "track" => kind.as_str()).increment(1);
        debug!(
            track = kind.as_str(),
            seq = cut.seq,
            secs = cut.duration_secs(),
            "segment ready"
        );
    }
}

/// `t` moved by `ticks` of the media clock (either direction).
fn offset(t: SystemTime, ticks: i64) -> SystemTime {
    let d = Duration::from_secs_f64(ticks.unsigned_abs() as f64 / f64::from(MEDIA_CLOCK));
    if ticks >= 0 {
        t + d
    } else {
        t - d
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}

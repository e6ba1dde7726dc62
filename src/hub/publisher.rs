//! A publish session's packaging pipeline: codec configs and frames in, CMAF segments into
//! the rendition's windows out. Runs on the publishing connection's task, so one slow
//! stream never holds up another.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::ladder::Ladder;
use super::rendition::{Rendition, TrackOutput};
use super::Hub;
use crate::media::{CodecConfig, Frame, TrackKind, MEDIA_CLOCK};
use crate::mux::fmp4;
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
            hub,
            ladder,
            rendition,
            segmenter: Segmenter::new(target, first_seq),
            discontinuity: [resumed; 2],
            anchor: None,
            finished: false,
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
            self.anchor = Some((frame.dts, SystemTime::now()));
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
        let Some((anchor_media, anchor_wall)) = self.anchor else {
            return SystemTime::now();
        };
        let secs = (media_start - anchor_media) as f64 / f64::from(MEDIA_CLOCK);
        if secs >= 0.0 {
            anchor_wall + Duration::from_secs_f64(secs)
        } else {
            anchor_wall - Duration::from_secs_f64(-secs)
        }
    }

    fn store(&mut self, segments: Vec<CutSegment>) {
        if segments.is_empty() {
            return;
        }
        for cut in segments {
            let kind = cut.kind;
            let data: Bytes = match fmp4::media_segment(
                track_id(kind),
                cut.seq as u32,
                &cut.samples,
            ) {
                Ok(b) => b,
                Err(e) => {
                    warn!(track = kind.as_str(), seq = cut.seq, error = %e, "cannot mux segment; dropped");
                    continue;
                }
            };
            let discontinuity = std::mem::take(&mut self.discontinuity[slot(kind)]);
            let segment = StoredSegment {
                seq: cut.seq,
                start: cut.start(),
                duration: cut.duration(),
                timescale: cut.timescale,
                wall_clock: self.wall_clock(cut.media_start),
                init_version: 0,
                discontinuity,
                data,
            };
            let mut state = self.rendition.write();
            if let Some(track) = state.track_mut(kind).as_mut() {
                track.window.push(StoredSegment {
                    init_version: track.init_version,
                    ..segment
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
        self.ladder.notify();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}

//! What one upload round copies, from one set of snapshots: the feeds whose objects and
//! media playlists the manifests name, and the manifests themselves (master playlists,
//! MPD) rendered from the very same snapshots, so a manifest never names an object the
//! round has not handled.

use std::sync::Arc;

use bytes::Bytes;

use crate::http::snapshot::{alternate_audio, cmaf_ready, listed, ts_ready, Snapshot};
use crate::hub::rendition::RenditionState;
use crate::hub::{Hub, Ladder, Rendition};
use crate::media::TrackKind;
use crate::playlist::hls;
use crate::playlist::media::MediaPlaylist;
use crate::store::TrackWindow;
use crate::urls::{Container, Feed, FeedDir, LadderFile};

/// One feed to copy: its directory and the snapshot its objects come from.
#[derive(Clone, Debug)]
pub struct FeedPlan {
    /// Where its playlist and objects are.
    pub dir: FeedDir,
    /// The rendition supplying it.
    pub rendition: Arc<Rendition>,
    /// The snapshot its objects and playlist come from.
    pub state: Arc<RenditionState>,
    /// An HLS master names its media playlist (false for DASH-only feeds).
    pub playlist: bool,
}

impl FeedPlan {
    /// The feed's window in the snapshot.
    pub fn window(&self) -> Option<&TrackWindow> {
        self.dir.feed().window(&self.state)
    }

    /// The classic (not Low-Latency) media playlist: the bucket has no parts, and nothing
    /// there can answer a blocking reload.
    pub fn playlist_text(&self, hub: &Hub) -> Option<Bytes> {
        let feed = self.dir.feed();
        let playlist = MediaPlaylist {
            window: self.window()?,
            prefix: feed.name(),
            container: feed.container(),
            target: hls::fixed_target_duration(hub.config().segment.target_duration),
            ended: self.state.ended,
            low_latency: None,
        };
        Some(Bytes::from(playlist.render()))
    }
}

/// One round's snapshots of a ladder, chosen as the HTTP handlers choose them.
#[derive(Debug)]
pub struct Plan {
    cmaf: Vec<Snapshot>,
    alternates: Vec<Snapshot>,
    ts: Vec<Snapshot>,
    audio_source: Option<Snapshot>,
}

impl Plan {
    /// Snapshots of `ladder`'s listed renditions for the outputs that are on.
    pub fn take(hub: &Hub, ladder: &Ladder) -> Plan {
        let outputs = &hub.config().outputs;
        let (cmaf, alternates) = if outputs.cmaf() {
            (listed(ladder, cmaf_ready), alternate_audio(ladder))
        } else {
            (Vec::new(), Vec::new())
        };
        let ts = if outputs.hls_ts {
            listed(ladder, ts_ready)
        } else {
            Vec::new()
        };
        // The ladder's audio comes from the rendition the HTTP side picks too.
        let with_audio: Vec<&str> = cmaf
            .iter()
            .filter(|(_, s)| s.audio.is_some())
            .map(|(r, _)| r.label.as_str())
            .collect();
        let audio_source = ladder
            .audio_source(&with_audio)
            .and_then(|label| cmaf.iter().find(|(r, _)| r.label == label).cloned());
        Plan {
            cmaf,
            alternates,
            ts,
            audio_source,
        }
    }

    /// The feeds the manifests name, in the order their objects go up.
    pub fn feeds(&self, hub: &Hub) -> Vec<FeedPlan> {
        let hls_cmaf = hub.config().outputs.hls_cmaf;
        let feed = |dir: FeedDir, (r, s): &Snapshot, playlist: bool| FeedPlan {
            dir,
            rendition: r.clone(),
            state: s.clone(),
            playlist,
        };
        let own = |(r, _): &Snapshot, kind| FeedDir::Rendition {
            label: r.label.clone(),
            feed: Feed::Cmaf(kind),
        };
        let mut out = Vec::new();
        for snap in &self.cmaf {
            // A rendition without video is an audio-only variant of its own.
            let kind = match snap.1.video {
                Some(_) => TrackKind::Video,
                None => TrackKind::Audio,
            };
            out.push(feed(own(snap, kind), snap, hls_cmaf));
        }
        if let Some(snap) = &self.audio_source {
            out.push(feed(FeedDir::LadderAudio, snap, hls_cmaf));
        }
        for snap in &self.alternates {
            out.push(feed(own(snap, TrackKind::Audio), snap, hls_cmaf));
        }
        for snap in &self.ts {
            let dir = FeedDir::Rendition {
                label: snap.0.label.clone(),
                feed: Feed::Ts,
            };
            out.push(feed(dir, snap, true));
        }
        out
    }

    /// The master playlists and the MPD, in upload order, from the round's snapshots.
    /// The MPD has no low-latency signalling (no segment in progress is in the bucket)
    /// and no UTCTiming (the bucket has no clock).
    pub fn manifests(&self, hub: &Hub, ladder: &Ladder) -> Vec<(LadderFile, Bytes)> {
        let outputs = &hub.config().outputs;
        let mut out = Vec::new();
        if outputs.hls_cmaf && !self.cmaf.is_empty() {
            let text =
                crate::http::master::master_text(&self.cmaf, &self.alternates, Container::Cmaf);
            out.push((LadderFile::Master(Container::Cmaf), text));
        }
        if outputs.hls_ts && !self.ts.is_empty() {
            let text = crate::http::master::master_text(&self.ts, &[], Container::Ts);
            out.push((LadderFile::Master(Container::Ts), text));
        }
        if outputs.dash && !self.cmaf.is_empty() {
            let mut mpd = crate::http::dash::manifest_of(hub, ladder, &self.cmaf, &self.alternates);
            mpd.low_latency = None;
            mpd.utc_timing_url = String::new();
            out.push((
                LadderFile::Mpd,
                Bytes::from(crate::playlist::dash::mpd(&mpd)),
            ));
        }
        out
    }
}

//! The hub: live streams by app and name, grouped into ladders, with the publish lifecycle.

pub mod auth;
pub mod claims;
mod cmaf_output;
pub mod diagnostics;
pub mod dvr;
pub mod gaps;
pub mod ladder;
pub mod lifecycle;
pub mod naming;
pub mod part_ids;
pub mod publisher;
pub mod renderings;
pub mod rendition;
pub mod services;
mod storage;
mod timeline_map;
pub mod traffic;
pub mod ts_output;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use auth::{Credential, Holder};
pub use claims::{ClaimGuard, Released};
pub use ladder::Ladder;
pub use lifecycle::{Departure, Phase};
pub use publisher::Publisher;
pub use rendition::Rendition;
pub use services::Services;

use crate::clock::Time;
use crate::config::Config;
use crate::drain::Drain;
use naming::{ladder_name, reserved_app, valid_name};

/// Why a publish request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The app or stream name has characters we cannot put in a URL.
    #[error("invalid name {0:?}: use ASCII letters, digits, '_', '-' or '.'")]
    InvalidName(String),
    /// The app name is one of the HTTP router's own paths (`api`, `metrics`, ...), so its
    /// streams could never be played.
    #[error("app name {0:?} is reserved for the HTTP routes {routes:?}", routes = crate::urls::RESERVED_APPS)]
    ReservedApp(String),
    /// Somebody is already publishing this name.
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
    /// The current publisher was told to stop in favour of this one: wait, then try again.
    #[error("stream is being taken over from its current publisher")]
    TakingOver(Released),
}

/// A granted publish: feed the publisher; the claim holds the name until dropped (after
/// the publisher, so a newcomer finds the rendition ended and continues its playlists).
#[derive(Debug)]
pub struct Granted {
    /// The packaging pipeline.
    pub publisher: Publisher,
    /// The name's claim, with the stop signal a takeover sends.
    pub claim: ClaimGuard,
}

/// All live ladders, by (app, base).
#[derive(Debug)]
pub struct Hub {
    /// What every publisher shares (configuration, clock, recorder, part ids, DVR tier).
    services: Arc<Services>,
    drain: Drain,
    ladders: RwLock<HashMap<(String, String), Arc<Ladder>>>,
    claims: Arc<claims::Claims>,
    /// The cluster state when `[cluster]` is on, set once at start; typed `Any` so the
    /// hub does not depend on `crate::cluster`, which depends on it.
    cluster: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Hub {
    /// An empty hub on the system clocks.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Self::with_time(config, Time::real())
    }

    /// An empty hub on `time`'s clock and spawner (a fake one in tests).
    pub fn with_time(config: Arc<Config>, time: Time) -> Arc<Self> {
        Arc::new(Hub {
            services: Arc::new(Services::new(config, time)),
            drain: Drain::default(),
            ladders: RwLock::new(HashMap::new()),
            claims: Arc::default(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// Attaches the cluster state (the first call wins).
    pub fn attach_cluster(&self, state: Arc<dyn std::any::Any + Send + Sync>) {
        let _ = self.cluster.set(state);
    }

    /// The cluster state, when attached.
    pub fn cluster(&self) -> Option<&Arc<dyn std::any::Any + Send + Sync>> {
        self.cluster.get()
    }

    /// The clock and spawner of the ingest side.
    pub fn time(&self) -> &Time {
        self.services.time()
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        self.services.config()
    }

    /// What is recorded to disk.
    pub fn recorder(&self) -> &crate::record::Recorder {
        self.services.recorder()
    }

    /// The shutting-down signal every held request observes.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Where `name` lands in `app`'s ladders.
    pub fn ladder_name(&self, app: &str, name: &str) -> naming::LadderName {
        ladder_name(name, self.config().ladder.labels_for(app))
    }

    /// Starts publishing `app/name` for `holder` (already authorised). The name is claimed
    /// first, under one lock, so of two simultaneous publishes only one gets it; a holder
    /// the app's `reconnect` policy lets take over gets [`PublishError::TakingOver`].
    pub fn publish(
        self: &Arc<Self>,
        app: &str,
        name: &str,
        holder: Holder,
    ) -> Result<Granted, PublishError> {
        for part in [app, name] {
            if !valid_name(part) {
                return Err(PublishError::InvalidName(part.to_string()));
            }
        }
        if reserved_app(app) {
            return Err(PublishError::ReservedApp(app.to_string()));
        }
        let ln = self.ladder_name(app, name);
        self.publish_as(app, name, ln, None, holder)
    }

    /// Starts publishing one more rendition, `label` of ladder `base`, for a connection
    /// that already publishes in that ladder: a video track of an Enhanced RTMP multitrack
    /// stream. `stream` names it in logs and the API.
    pub fn publish_track(
        self: &Arc<Self>,
        app: &str,
        base: &str,
        label: &str,
        stream: &str,
        holder: Holder,
    ) -> Result<Granted, PublishError> {
        if !valid_name(label) {
            return Err(PublishError::InvalidName(label.to_string()));
        }
        let ln = naming::LadderName {
            base: base.to_string(),
            label: label.to_string(),
        };
        self.publish_as(app, stream, ln, None, holder)
    }

    /// Starts publishing audio track `track` (1..) of an Enhanced RTMP multitrack stream as
    /// the alternative audio rendition `audio{track}` of ladder `base`, for the connection
    /// that publishes in that ladder. `stream` names it in logs and the API.
    pub fn publish_audio_track(
        self: &Arc<Self>,
        app: &str,
        base: &str,
        track: u8,
        stream: &str,
        holder: Holder,
    ) -> Result<Granted, PublishError> {
        let ln = naming::LadderName {
            base: base.to_string(),
            label: format!("audio{track}"),
        };
        self.publish_as(app, stream, ln, Some(track), holder)
    }

    fn publish_as(
        self: &Arc<Self>,
        app: &str,
        name: &str,
        ln: naming::LadderName,
        audio_track: Option<u8>,
        holder: Holder,
    ) -> Result<Granted, PublishError> {
        let policy = self
            .config()
            .auth
            .app(app)
            .map(|a| a.reconnect)
            .unwrap_or_default();
        let holder_ip = holder.ip;
        let claim = match self
            .claims
            .claim((app, &ln.base, &ln.label), holder, policy)
        {
            Ok(c) => c,
            Err(claims::Refused::Held) => {
                return Err(PublishError::AlreadyPublishing(format!("{app}/{name}")))
            }
            Err(claims::Refused::TakingOver(r)) => return Err(PublishError::TakingOver(r)),
        };
        let conn_id = claim.conn_id();
        let ip = holder_ip;
        // What is under the name is looked at, then changed only if it is still the same
        // (`Ladder::swap`); if it changed meanwhile (an expiry removed it, the ladder
        // retired), look again. Every lap follows a change by someone else, so this ends.
        let (ladder, rendition) = loop {
            let ladder = self.mapped_ladder(app, &ln.base);
            let existing = ladder.rendition(&ln.label);
            // A live rendition of the same label but another kind (a rung named `audio1`)
            // is not continued as this one.
            if existing
                .as_ref()
                .is_some_and(|r| r.audio_track != audio_track && !r.read().ended)
            {
                return Err(PublishError::AlreadyPublishing(format!("{app}/{name}")));
            }
            // The time is read before the rendition's lock is taken (no lock inside another).
            let now = self.time().instant();
            let resume = existing
                .as_ref()
                .map(|r| lifecycle::republish(&mut r.write(), conn_id, now));
            match (existing, resume) {
                // Only a publisher that outlived its claim gets here.
                (_, Some(lifecycle::Resume::Busy)) => {
                    return Err(PublishError::AlreadyPublishing(format!("{app}/{name}")));
                }
                // The encoder came back within the linger time: the same playlists
                // continue. A rendition that is not ended is never removed, so it is
                // still in the ladder.
                (Some(existing), Some(lifecycle::Resume::Continued)) => break (ladder, existing),
                (old, _) => {
                    // New, or its playlists ended (EXT-X-ENDLIST is final): fresh playlists.
                    let r = Rendition::new(&ln.label, name, conn_id);
                    let r = Arc::new(match audio_track {
                        Some(track) => r.as_audio_track(track),
                        None => r,
                    });
                    if !ladder.swap(old.as_ref(), r.clone()) {
                        continue;
                    }
                    if let Some(old) = old {
                        lifecycle::removed(&old.read());
                    }
                    lifecycle::started(&r.read());
                    break (ladder, r);
                }
            }
        };
        Ok(Granted {
            publisher: Publisher::new(self.services.clone(), self.expiry(), ladder, rendition, ip),
            claim,
        })
    }

    /// Disconnects the publisher of RTMP stream `app/name`, or failing that every
    /// publisher of ladder `app/name`; returns how many connections were told to close.
    pub fn disconnect(&self, app: &str, name: &str) -> usize {
        let ln = self.ladder_name(app, name);
        match self.claims.stop(app, &ln.base, Some(&ln.label)) {
            0 => self.claims.stop(app, name, None),
            n => n,
        }
    }

    /// The ladder `app/base`.
    pub fn ladder(&self, app: &str, base: &str) -> Option<Arc<Ladder>> {
        self.ladders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(app.to_string(), base.to_string()))
            .cloned()
    }

    /// Every ladder, sorted by app and base.
    pub fn ladders(&self) -> Vec<Arc<Ladder>> {
        let mut all: Vec<_> = self
            .ladders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.app, &a.base).cmp(&(&b.app, &b.base)));
        all
    }

    /// The ladder `app/base` in the map, created if there is none; a retired one (its
    /// last rendition expired) is replaced by a fresh one.
    fn mapped_ladder(&self, app: &str, base: &str) -> Arc<Ladder> {
        // Read before the lock is taken: a (fake) clock may have a lock of its own.
        let now = self.time().now();
        let fresh = || Arc::new(Ladder::new(app, base, self.config().segment.target(), now));
        let mut ladders = self.ladders.write().unwrap_or_else(|e| e.into_inner());
        let ladder = ladders
            .entry((app.to_string(), base.to_string()))
            .or_insert_with(fresh);
        if ladder.is_retired() {
            *ladder = fresh();
        }
        ladder.clone()
    }

    /// How a publisher's lifecycle expires its rendition: [`Hub::expire`], while the hub
    /// is there.
    fn expiry(self: &Arc<Self>) -> lifecycle::Expire {
        let hub = Arc::downgrade(self);
        Arc::new(move |ladder, rendition, generation| {
            if let Some(hub) = hub.upgrade() {
                hub.expire(ladder, rendition, generation);
            }
        })
    }

    /// Removes an ended rendition (scheduled by [`lifecycle`] for publish session
    /// `generation`) unless it was published again since: a republish either continued it
    /// (a newer generation) or put a new rendition under its name, which is left alone.
    /// The ladder goes with its last rendition.
    pub fn expire(&self, ladder: &Arc<Ladder>, rendition: &Arc<Rendition>, generation: u64) {
        {
            let state = rendition.read();
            if !state.ended || state.generation != generation {
                return;
            }
        }
        // An ended rendition is never continued, only replaced, and `remove` only takes
        // this very object: no newer publish of the name is lost between the check above
        // and here.
        let removed = ladder.remove(rendition);
        if removed.removed {
            lifecycle::removed(&rendition.read());
        }
        if !removed.retired {
            return;
        }
        // The ladder retired with its last rendition (no publish joins it any more): unmap
        // it unless a publish has already mapped a fresh one in its place.
        let mut ladders = self.ladders.write().unwrap_or_else(|e| e.into_inner());
        let key = (ladder.app.clone(), ladder.base.clone());
        if ladders.get(&key).is_some_and(|l| Arc::ptr_eq(l, ladder)) {
            ladders.remove(&key);
        }
        drop(ladders);
        self.recorder().expired(&ladder.app, &ladder.base);
    }
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod publish_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn from(conn_id: u64, ip: Option<&str>) -> Holder {
        Holder {
            conn_id,
            ip: ip.map(|s| s.parse().unwrap()),
            credential: Credential::Open,
        }
    }

    #[test]
    fn grouping_follows_the_apps_labels_and_refuses_doubles() {
        let config = Config::from_toml("[ladder.apps.tv]\nlabels = [\"hd\"]\n").unwrap();
        let hub = Hub::new(Arc::new(config));
        let tv = hub
            .publish("tv", "news_hd", from(1, None))
            .unwrap()
            .publisher;
        let live = hub
            .publish("live", "news_hd", from(2, None))
            .unwrap()
            .publisher;
        assert_eq!(
            (tv.ladder().base.as_str(), tv.rendition().label.as_str()),
            ("news", "hd")
        );
        assert_eq!(
            (live.ladder().base.as_str(), live.rendition().label.as_str()),
            ("news_hd", "src")
        );
        let p720 = hub.publish("live", "news_720p", from(3, None)).unwrap();
        assert_eq!(p720.publisher.ladder().base, "news");
        assert!(matches!(
            hub.publish("tv", "news_hd", from(4, None)),
            Err(PublishError::AlreadyPublishing(n)) if n == "tv/news_hd"
        ));
        // `x` and `x_src` are one rendition: one claim.
        let _x = hub.publish("live", "x", from(5, None)).unwrap();
        assert!(matches!(
            hub.publish("live", "x_src", from(6, None)),
            Err(PublishError::AlreadyPublishing(_))
        ));
        assert!(matches!(
            hub.publish("tv", "a/b", from(7, None)),
            Err(PublishError::InvalidName(_))
        ));
        assert_eq!(hub.ladders().len(), 4);
    }

    #[test]
    fn simultaneous_publishes_of_one_name_grant_one() {
        let hub = Hub::new(Arc::new(Config::default()));
        let granted = std::thread::scope(|s| {
            let tries: Vec<_> = (0..8)
                .map(|i| {
                    let hub = hub.clone();
                    s.spawn(move || hub.publish("live", "race_720p", from(i, None)).ok())
                })
                .collect();
            tries
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(granted.len(), 1);
        assert_eq!(hub.ladder("live", "race").unwrap().renditions().len(), 1);
    }

    #[tokio::test]
    async fn takeover_continues_the_rendition() {
        let hub = Hub::new(Arc::new(Config::default()));
        let ip = Some("192.0.2.7");
        let old = hub.publish("live", "show", from(1, ip)).unwrap();
        let rendition = old.publisher.rendition().clone();
        let mut stop = old.claim.stop_signal();
        assert!(matches!(
            hub.publish("live", "show", from(2, Some("192.0.2.8"))),
            Err(PublishError::AlreadyPublishing(_))
        ));
        let Err(PublishError::TakingOver(released)) = hub.publish("live", "show", from(3, ip))
        else {
            panic!("same IP takes over");
        };
        assert!(*stop.borrow_and_update());
        drop(old); // the old connection closes: publisher finishes, then the claim goes
        released.wait().await;
        let new = hub.publish("live", "show", from(3, ip)).unwrap();
        assert!(Arc::ptr_eq(new.publisher.rendition(), &rendition));
        let state = rendition.read();
        assert_eq!(
            (state.ended, state.generation, state.publisher),
            (false, 1, 3)
        );
    }

    #[test]
    fn an_audio_track_is_an_alternative_rendition_of_the_ladder() {
        let hub = Hub::new(Arc::new(Config::default()));
        let main = hub.publish("live", "show", from(1, None)).unwrap();
        let extra = hub
            .publish_audio_track("live", "show", 2, "show.audio2", from(1, None))
            .unwrap();
        let r = extra.publisher.rendition();
        assert_eq!((r.label.as_str(), r.audio_track), ("audio2", Some(2)));
        assert_eq!(main.publisher.rendition().audio_track, None);
        assert_eq!(hub.ladder("live", "show").unwrap().renditions().len(), 2);
        // A rung that happens to be labelled `audio2` cannot continue it.
        drop(extra);
        assert!(matches!(
            hub.publish_track("live", "show", "audio2", "show_audio2", from(3, None)),
            Err(PublishError::AlreadyPublishing(_))
        ));
    }

    #[test]
    fn route_names_are_refused_as_apps() {
        let hub = Hub::new(Arc::new(Config::default()));
        for app in crate::urls::RESERVED_APPS {
            assert!(matches!(
                hub.publish(app, "show", from(1, None)),
                Err(PublishError::ReservedApp(a)) if a == *app
            ));
        }
        assert!(
            hub.ladders().is_empty(),
            "a refused publish leaves no ladder"
        );
    }
}

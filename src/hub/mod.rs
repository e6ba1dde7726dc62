//! The hub: live streams by app and name, grouped into ladders, with the publish lifecycle.

pub mod ladder;
pub mod naming;
pub mod publisher;
pub mod renderings;
pub mod rendition;
pub mod ts_output;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use ladder::Ladder;
pub use publisher::Publisher;
pub use rendition::Rendition;

use crate::config::Config;
use crate::drain::Drain;
use naming::{ladder_name, reserved_app, valid_name};

/// Why a publish request was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PublishError {
    /// The app or stream name has characters we cannot put in a URL.
    #[error("invalid name {0:?}: use ASCII letters, digits, '_', '-' or '.'")]
    InvalidName(String),
    /// The app name is one of the HTTP router's own paths (`api`, `metrics`, ...), so its
    /// streams could never be played.
    #[error("app name {0:?} is reserved for the HTTP routes {routes:?}", routes = crate::http::routes::RESERVED_APPS)]
    ReservedApp(String),
    /// Somebody is already publishing this name.
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
}

/// All live ladders, by (app, base).
#[derive(Debug)]
pub struct Hub {
    config: Arc<Config>,
    drain: Drain,
    ladders: RwLock<HashMap<(String, String), Arc<Ladder>>>,
}

impl Hub {
    /// An empty hub.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Arc::new(Hub {
            config,
            drain: Drain::default(),
            ladders: RwLock::new(HashMap::new()),
        })
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shutting-down signal every held request observes.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Starts publishing `app/name` for connection `conn_id`.
    pub fn publish(
        self: &Arc<Self>,
        app: &str,
        name: &str,
        conn_id: u64,
    ) -> Result<Publisher, PublishError> {
        for part in [app, name] {
            if !valid_name(part) {
                return Err(PublishError::InvalidName(part.to_string()));
            }
        }
        if reserved_app(app) {
            return Err(PublishError::ReservedApp(app.to_string()));
        }
        let ln = ladder_name(name, self.config.ladder.labels_for(app));
        let ladder = {
            let mut ladders = self.ladders.write().unwrap_or_else(|e| e.into_inner());
            ladders
                .entry((app.to_string(), ln.base.clone()))
                .or_insert_with(|| {
                    Arc::new(Ladder::new(app, &ln.base, self.config.segment.target()))
                })
                .clone()
        };
        let rendition = match ladder.rendition(&ln.label) {
            Some(existing) => {
                let mut state = existing.write();
                if !state.ended {
                    return Err(PublishError::AlreadyPublishing(format!("{app}/{name}")));
                }
                // A reconnect within the linger time continues the same playlists.
                state.ended = false;
                state.generation += 1;
                state.publisher = conn_id;
                drop(state);
                existing
            }
            None => {
                let r = Arc::new(Rendition::new(&ln.label, name, conn_id));
                ladder.insert(r.clone());
                r
            }
        };
        Ok(Publisher::new(self.clone(), ladder, rendition))
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

    /// Removes an ended rendition (after its linger time) unless it was republished, and
    /// the ladder with it when it was the last.
    pub fn expire(&self, ladder: &Arc<Ladder>, rendition: &Arc<Rendition>, generation: u64) {
        {
            let state = rendition.read();
            if !state.ended || state.generation != generation {
                return;
            }
        }
        ladder.remove(rendition);
        // Asked before taking the hub's lock: no lock is held while another is taken.
        if !ladder.is_empty() {
            return;
        }
        let mut ladders = self.ladders.write().unwrap_or_else(|e| e.into_inner());
        let key = (ladder.app.clone(), ladder.base.clone());
        if ladders.get(&key).is_some_and(|l| Arc::ptr_eq(l, ladder)) {
            ladders.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_follows_the_apps_labels_and_refuses_doubles() {
        let config = Config::from_toml("[ladder.apps.tv]\nlabels = [\"hd\"]\n").unwrap();
        let hub = Hub::new(Arc::new(config));
        let tv = hub.publish("tv", "news_hd", 1).unwrap();
        let live = hub.publish("live", "news_hd", 2).unwrap();
        assert_eq!(
            (tv.ladder().base.as_str(), tv.rendition().label.as_str()),
            ("news", "hd")
        );
        assert_eq!(
            (live.ladder().base.as_str(), live.rendition().label.as_str()),
            ("news_hd", "src")
        );
        let p720 = hub.publish("live", "news_720p", 3).unwrap();
        assert_eq!(p720.ladder().base, "news");
        assert_eq!(
            hub.publish("tv", "news_hd", 4).unwrap_err(),
            PublishError::AlreadyPublishing("tv/news_hd".into())
        );
        assert!(matches!(
            hub.publish("tv", "a/b", 5),
            Err(PublishError::InvalidName(_))
        ));
        assert_eq!(hub.ladders().len(), 3);
    }

    #[test]
    fn route_names_are_refused_as_apps() {
        let hub = Hub::new(Arc::new(Config::default()));
        for app in crate::http::routes::RESERVED_APPS {
            assert_eq!(
                hub.publish(app, "show", 1).unwrap_err(),
                PublishError::ReservedApp(app.to_string())
            );
        }
        assert!(
            hub.ladders().is_empty(),
            "a refused publish leaves no ladder"
        );
    }
}

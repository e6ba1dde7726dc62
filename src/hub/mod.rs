//! The hub: live streams by app and name, grouped into ladders, with the publish lifecycle.

pub mod ladder;
pub mod lifecycle;
pub mod naming;
pub mod publisher;
pub mod rendition;
pub mod ts_output;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use ladder::Ladder;
pub use lifecycle::{Departure, Phase};
pub use publisher::Publisher;
pub use rendition::Rendition;

use crate::config::Config;
use naming::{ladder_name, valid_name};

/// Why a publish request was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PublishError {
    /// The app or stream name has characters we cannot put in a URL.
    #[error("invalid name {0:?}: use ASCII letters, digits, '_', '-' or '.'")]
    InvalidName(String),
    /// Somebody is already publishing this name.
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
}

/// All live ladders, by (app, base).
#[derive(Debug)]
pub struct Hub {
    config: Arc<Config>,
    ladders: RwLock<HashMap<(String, String), Arc<Ladder>>>,
}

impl Hub {
    /// An empty hub.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Arc::new(Hub {
            config,
            ladders: RwLock::new(HashMap::new()),
        })
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
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
        let existing = ladder.rendition(&ln.label);
        let resume = existing
            .as_ref()
            .map(|r| lifecycle::republish(&mut r.write(), conn_id));
        let rendition = match (existing, resume) {
            (_, Some(lifecycle::Resume::Busy)) => {
                return Err(PublishError::AlreadyPublishing(format!("{app}/{name}")));
            }
            (Some(existing), Some(lifecycle::Resume::Continued)) => existing,
            (old, _) => {
                // New, or its playlists ended (EXT-X-ENDLIST is final): fresh playlists.
                if let Some(old) = old {
                    lifecycle::removed(&old.read());
                }
                let r = Arc::new(Rendition::new(&ln.label, name, conn_id));
                lifecycle::started(&r.read());
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

    /// Removes an ended rendition (scheduled by [`lifecycle`]) unless it was republished,
    /// and the ladder with it when it was the last.
    pub fn expire(&self, ladder: &Arc<Ladder>, rendition: &Arc<Rendition>, generation: u64) {
        {
            let state = rendition.read();
            if !state.ended || state.generation != generation {
                return;
            }
        }
        if ladder.remove(rendition) {
            lifecycle::removed(&rendition.read());
        }
        let mut ladders = self.ladders.write().unwrap_or_else(|e| e.into_inner());
        let key = (ladder.app.clone(), ladder.base.clone());
        if ladder.is_empty() && ladders.get(&key).is_some_and(|l| Arc::ptr_eq(l, ladder)) {
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
}

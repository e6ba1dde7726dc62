//! `[ladder]`: how published stream names group into adaptive ladders (read by
//! `hub::naming`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// How stream names group into adaptive ladders.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LadderConfig {
    /// Labels that make `{base}_{label}` a rendition of ladder `{base}`, besides any `\d+p`.
    pub labels: Vec<String>,
    /// Per-app label lists (`[ladder.apps.tv] labels = ["hd", "sd"]`) replacing `labels`.
    pub apps: BTreeMap<String, AppLadderConfig>,
}

/// Ladder grouping for one app.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AppLadderConfig {
    /// Labels that group names in this app, besides any `\d+p`.
    pub labels: Vec<String>,
}

impl LadderConfig {
    /// The labels that apply in `app`.
    pub fn labels_for(&self, app: &str) -> &[String] {
        self.apps.get(app).map_or(&self.labels, |a| &a.labels)
    }
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig {
            labels: ["src", "hi", "mid", "low"].map(String::from).to_vec(),
            apps: BTreeMap::new(),
        }
    }
}

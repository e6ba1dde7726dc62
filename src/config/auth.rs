//! `[auth]`: who may publish. Off by default (anyone may publish any name).

use serde::Deserialize;

/// Publish authorisation settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {}

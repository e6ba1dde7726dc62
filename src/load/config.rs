//! What a load run does: where the server is, how many publishers of which samples, how
//! many viewers of each kind, and for how long.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::publisher::Sample;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// RTMP server.
    pub rtmp: SocketAddr,
    /// HTTP server.
    pub http: SocketAddr,
    /// RTMP app.
    pub app: String,
    /// Streams (ladders) to publish.
    pub streams: usize,
    /// Stream names are `{prefix}{i}` (`{prefix}{i}_{label}` for ladder rungs).
    pub prefix: String,
    /// Rungs of each ladder as (label, sample); one rung with an empty label: plain
    /// streams.
    pub rungs: Vec<(String, Arc<Sample>)>,
    /// Classic HLS viewers in all, spread over the streams.
    pub hls_viewers: usize,
    /// LL-HLS viewers in all.
    pub ll_viewers: usize,
    /// LL-DASH viewers in all.
    pub dash_viewers: usize,
    /// Classic HLS URL path; `{app}`, `{stream}` (ladder base) and `{rendition}` (first
    /// rung's stream key) are filled in.
    pub hls_url: String,
    /// LL-HLS URL path template; `None`: the server has no LL-HLS.
    pub ll_url: Option<String>,
    /// DASH MPD URL path template; `None`: the server has no DASH.
    pub dash_url: Option<String>,
    /// Whole run.
    pub duration: Duration,
    /// From the start to the steady window.
    pub warmup: Duration,
    /// Length of the steady window; `None`: until the end of the run (less half a second).
    pub window: Option<Duration>,
    /// Server process whose CPU and RSS are read from /proc.
    pub server_pid: Option<u32>,
    /// Streams whose publish → first part/segment is measured.
    pub probe_streams: usize,
}

impl LoadConfig {
    /// Defaults for packgate at the given addresses with one sample: TS playlists for
    /// classic HLS, the CMAF master for LL-HLS, the MPD for DASH.
    pub fn packgate(rtmp: SocketAddr, http: SocketAddr, sample: Arc<Sample>) -> Self {
        LoadConfig {
            rtmp,
            http,
            app: "live".into(),
            streams: 1,
            prefix: "load".into(),
            rungs: vec![(String::new(), sample)],
            hls_viewers: 0,
            ll_viewers: 0,
            dash_viewers: 0,
            hls_url: "/{app}/{stream}/ts.m3u8".into(),
            ll_url: Some("/{app}/{stream}/index.m3u8".into()),
            dash_url: Some("/{app}/{stream}/index.mpd".into()),
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(10),
            window: None,
            server_pid: None,
            probe_streams: 10,
        }
    }

    pub(super) fn names(&self, i: usize) -> (String, Vec<String>) {
        let base = format!("{}{i}", self.prefix);
        let keys = self
            .rungs
            .iter()
            .map(|(label, _)| {
                if label.is_empty() {
                    base.clone()
                } else {
                    format!("{base}_{label}")
                }
            })
            .collect();
        (base, keys)
    }

    pub(super) fn url(&self, template: &str, i: usize) -> String {
        let (base, keys) = self.names(i);
        template
            .replace("{app}", &self.app)
            .replace("{stream}", &base)
            .replace("{rendition}", &keys[0])
    }
}

//! Prometheus metrics: one recorder per process, rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for segment and part durations, seconds (parts ~0.1-1 s, segments 1-12 s).
const DURATION_BUCKETS: &[f64] = &[0.1, 0.2, 0.33, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0];
/// Buckets for HTTP latency, seconds: served from memory in ~ms; held (blocking) playlist
/// requests take up to a part or segment duration.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.005, 0.02, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0];

/// The builder with histogram buckets (without them the exporter renders summaries).
fn builder() -> PrometheusBuilder {
    let plain = PrometheusBuilder::new;
    plain()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), DURATION_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("packgate_http_request_seconds".into()),
                LATENCY_BUCKETS,
            )
        })
        .unwrap_or_else(|_| plain())
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder the first time; later calls (several servers in one test
/// process) reuse it. `None` if another recorder was installed by the embedding program.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|_| handle)
        })
        .as_ref()
}

/// Sets `packgate_retained_media_bytes`: the media bytes every live window holds in
/// memory now (segments, parts in progress, init segments; DVR segments on disk not
/// counted), read at scrape time so the ingest path keeps no running total. Each window
/// is read under its rendition's lock alone, one after the other.
pub fn retained_media(hub: &crate::hub::Hub) {
    let mut bytes = 0usize;
    for ladder in hub.ladders() {
        for rendition in ladder.renditions() {
            let state = rendition.read();
            bytes += [state.video.as_ref(), state.audio.as_ref()]
                .into_iter()
                .flatten()
                .map(|t| t.window.bytes_held())
                .sum::<usize>();
            bytes += state.ts.as_ref().map_or(0, |w| w.bytes_held());
        }
    }
    ::metrics::gauge!("packgate_retained_media_bytes").set(bytes as f64);
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

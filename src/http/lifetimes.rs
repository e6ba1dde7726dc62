//! How long a cache (a CDN, a browser) may keep each kind of live object, tied to the
//! segment and part targets so a CDN in front of packgate shields it without holding
//! viewers behind the live edge.
//!
//! - init segments, segments, parts: immutable (their URLs are never reused) — set by
//!   [`super::media`];
//! - a blocking-reload answer (`?_HLS_msn=…`): its URL names a position of the stream, and
//!   every viewer at the edge asks for the same one within a part or two, so it may be
//!   kept a target duration — enough for a CDN to answer them all from one origin request,
//!   short enough that a lagging player is not walked through stale answers;
//! - a plain live playlist: half a part target under LL-HLS, half a target duration
//!   otherwise, and never under the one second `max-age` can say (a stale one costs an LL
//!   player one immediately answered blocking reload; `Age` tells it how stale);
//! - master playlists and the MPD: half a target duration;
//! - errors, held requests given up (404, 503), the API: never stored, since a part that
//!   is missing now exists a part target later.

use super::response::Caching;
use crate::config::Config;
use crate::playlist::hls;

/// The target duration in whole seconds, as the playlists state it.
fn target(config: &Config) -> u32 {
    u32::try_from(hls::fixed_target_duration(config.segment.target_duration)).unwrap_or(u32::MAX)
}

/// Half of `secs`, in whole seconds, at least one.
fn half(secs: f64) -> Caching {
    Caching::Fresh(((secs / 2.0).floor() as u32).max(1))
}

/// A media playlist: `low_latency` for the LL-HLS form, `blocking` when the request
/// carried `_HLS_msn` (and was answered, not given up).
pub fn media_playlist(config: &Config, low_latency: bool, blocking: bool) -> Caching {
    match (low_latency, blocking) {
        (true, true) => Caching::Fresh(target(config)),
        (true, false) => half(config.low_latency.part_target),
        (false, _) => half(config.segment.target_duration),
    }
}

/// A master playlist or the MPD: they change when renditions come and go, and with
/// bitrates and the segment list (MPD), at most once per segment.
pub fn manifest(config: &Config) -> Caching {
    half(config.segment.target_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_follow_the_targets() {
        let mut c = Config::default();
        c.segment.target_duration = 2.0;
        c.low_latency.part_target = 0.2;
        assert_eq!(media_playlist(&c, true, true), Caching::Fresh(2));
        assert_eq!(media_playlist(&c, true, false), Caching::Fresh(1));
        assert_eq!(media_playlist(&c, false, false), Caching::Fresh(1));
        assert_eq!(manifest(&c), Caching::Fresh(1));
        c.segment.target_duration = 6.0;
        c.low_latency.part_target = 1.0;
        assert_eq!(media_playlist(&c, true, true), Caching::Fresh(6));
        assert_eq!(media_playlist(&c, true, false), Caching::Fresh(1));
        assert_eq!(media_playlist(&c, false, false), Caching::Fresh(3));
        assert_eq!(manifest(&c), Caching::Fresh(3));
        c.segment.target_duration = 1.5;
        assert_eq!(
            media_playlist(&c, true, true),
            Caching::Fresh(2),
            "as EXT-X-TARGETDURATION"
        );
    }

    #[test]
    fn cache_control_values() {
        let v = |c: Caching| c.header().to_str().unwrap().to_string();
        assert_eq!(v(Caching::Immutable), "public, max-age=31536000, immutable");
        assert_eq!(v(Caching::Fresh(2)), "public, max-age=2");
        assert_eq!(v(Caching::NoStore), "no-store");
    }
}

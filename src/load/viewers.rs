//! The three kinds of viewer, each one task: classic HLS (playlist polls every target
//! duration + new segments), LL-HLS (blocking reloads and preload-hinted parts, both in
//! flight at once on two connections, as hls.js does) and LL-DASH (chunked reads of the
//! segment in progress). Every request has a deadline; viewers stop at the run's end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::{resolve, Client, Response};
use super::moof::{chunk_times, ChunkSplitter};
use super::parse::{audio_rendition, dash_template, first_variant, media_playlist, MediaPlaylist};
use super::publisher::Timeline;
use super::stats::{bump, KindStats, Stats};

/// Deadline of one request (a blocking reload waits up to a few part targets; an
/// in-progress segment up to its duration).
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// How long a viewer waits for its stream to appear before giving up (an error).
const READY_LIMIT: Duration = Duration::from_secs(30);

/// What every viewer task gets.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The HTTP server.
    pub http: SocketAddr,
    /// Master or media playlist (or MPD) path.
    pub url: String,
    /// Send times of the watched stream's frames.
    pub timeline: Arc<Timeline>,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// End of the run.
    pub until: Instant,
}

impl Viewer {
    fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    fn limit(&self) -> Duration {
        REQUEST_LIMIT.min(self.left())
    }

    /// Records a request's outcome; true if it returned 200.
    fn record(
        &self,
        path: &str,
        kind: &KindStats,
        playlist: bool,
        started: Instant,
        r: &Result<Response, super::http::HttpError>,
    ) -> bool {
        let on = self.stats.on();
        match r {
            Ok(r) if r.status == 200 => {
                if on {
                    let series = if playlist {
                        &kind.playlist
                    } else {
                        &kind.media
                    };
                    series.add(r.done - started);
                    bump(&kind.bytes, r.body.len() as u64);
                }
                true
            }
            Ok(r) => {
                if Instant::now() < self.until {
                    tracing::debug!(status = r.status, path, "unexpected status");
                    bump(&kind.errors, 1);
                }
                false
            }
            Err(e) => {
                // A request cut by the end of the run is not a server error.
                if Instant::now() + Duration::from_millis(50) < self.until {
                    tracing::debug!(error = %e, path, "request failed");
                    bump(&kind.errors, 1);
                }
                false
            }
        }
    }

    /// Waits until `start` answers a media playlist (following a master's first variant)
    /// that satisfies `ready`; returns its path and contents, and the master's audio
    /// rendition path if it has one.
    async fn media_ready(
        &self,
        c: &mut Client,
        start: &str,
        ready: impl Fn(&MediaPlaylist) -> bool,
    ) -> Option<(String, MediaPlaylist, Option<String>)> {
        let end = (Instant::now() + READY_LIMIT).min(self.until);
        let mut path = start.to_string();
        let mut audio = None;
        while Instant::now() < end {
            if let Ok(r) = c.get(&path, self.limit()).await {
                let text = String::from_utf8_lossy(&r.body);
                if r.status == 200 {
                    if let Some(v) = first_variant(&text) {
                        audio = audio_rendition(&text).map(|a| resolve(&path, &a));
                        path = resolve(&path, &v);
                        continue;
                    }
                    if let Some(p) = media_playlist(&text).filter(&ready) {
                        return Some((path, p, audio));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Dates a part or chunk whose last frame has media time `t` (in `timescale`) received
    /// whole at `done`.
    fn delay(&self, kind: &KindStats, t: u64, timescale: u64, done: Instant) {
        if !self.stats.on() {
            return;
        }
        match self.timeline.sent_at(t * 1000 / timescale.max(1)) {
            Some(sent) => kind.part_delay.add(done.saturating_duration_since(sent)),
            None => bump(&kind.unmatched, 1),
        }
    }
}

/// Classic HLS: polls the media playlist every target duration and fetches new segments.
pub async fn classic_hls(v: Viewer) {
    let kind = &v.stats.hls;
    let mut c = Client::new(v.http);
    let ready = v.media_ready(&mut c, &v.url, |p| !p.segments.is_empty());
    let Some((path, mut pl, _)) = ready.await else {
        bump(&kind.errors, 1);
        return;
    };
    // Players start near the live edge: the newest segment.
    let mut last = pl.segments.last().map_or(0, |s| s.0).saturating_sub(1);
    loop {
        let polled = Instant::now();
        let fresh: Vec<_> = pl.segments.iter().filter(|s| s.0 > last).cloned().collect();
        for (seq, uri) in fresh {
            let started = Instant::now();
            let seg = resolve(&path, &uri);
            let r = c.get(&seg, v.limit()).await;
            if v.record(&seg, kind, false, started, &r) && v.stats.on() {
                bump(&kind.segments, 1);
            }
            last = seq;
        }
        let next = polled + Duration::from_secs_f64(pl.target.max(0.5));
        if next >= v.until {
            return;
        }
        tokio::time::sleep_until(next.into()).await;
        let started = Instant::now();
        let r = c.get(&path, v.limit()).await;
        if v.record(&path, kind, true, started, &r) {
            if let Some(p) = r
                .ok()
                .and_then(|r| media_playlist(&String::from_utf8_lossy(&r.body)))
            {
                pl = p;
            }
        }
    }
}

/// LL-HLS as hls.js plays it: the preload-hinted part and the blocking reload that will
/// list it are requested together; the new playlist gives the next hint. With a separate
/// audio rendition, its playlist and parts are followed the same way at the same time.
pub async fn ll_hls(v: Viewer) {
    let kind = &v.stats.llhls;
    let mut pc = Client::new(v.http);
    let Some((path, pl, audio)) = v.media_ready(&mut pc, &v.url, has_hint).await else {
        bump(&kind.errors, 1);
        return;
    };
    let video = ll_follow(&v, path, pl, pc, true);
    let Some(audio) = audio else {
        return video.await;
    };
    let audio = async {
        let mut c = Client::new(v.http);
        match v.media_ready(&mut c, &audio, has_hint).await {
            Some((path, pl, _)) => ll_follow(&v, path, pl, c, false).await,
            None => bump(&kind.errors, 1),
        }
    };
    tokio::join!(video, audio);
}

fn has_hint(p: &MediaPlaylist) -> bool {
    p.hint.is_some()
}

/// Follows one LL media playlist until the end of the run; dates its parts when `date`
/// (video: the publisher's timeline holds video frames).
async fn ll_follow(v: &Viewer, path: String, mut pl: MediaPlaylist, mut pc: Client, date: bool) {
    let kind = &v.stats.llhls;
    let mut mc = Client::new(v.http);
    while Instant::now() < v.until {
        let Some(hint) = pl.hint.clone() else {
            bump(&kind.errors, 1);
            return;
        };
        let skip = if pl.can_skip { "&_HLS_skip=YES" } else { "" };
        let reload = format!(
            "{path}?_HLS_msn={}&_HLS_part={}{skip}",
            pl.next_msn, pl.trailing_parts
        );
        let part_path = resolve(&path, &hint);
        let limit = v.limit();
        let started = Instant::now();
        let (part, list) = tokio::join!(pc.get(&part_path, limit), mc.get(&reload, limit));
        if v.record(&part_path, kind, false, started, &part) {
            if let Ok(r) = &part {
                if v.stats.on() {
                    bump(&kind.parts, 1);
                }
                match chunk_times(&r.body).last() {
                    Some(t) if date => v.delay(kind, *t, 90_000, r.done),
                    _ => {}
                }
            }
        }
        let ok = v.record(&reload, kind, true, started, &list);
        match list
            .ok()
            .filter(|_| ok)
            .and_then(|r| media_playlist(&String::from_utf8_lossy(&r.body)))
        {
            Some(p) if p.hint.is_some() => pl = p,
            _ => {
                // Start over from a plain reload, as a player would.
                tokio::time::sleep(Duration::from_millis(200)).await;
                match v.media_ready(&mut mc, &path, has_hint).await {
                    Some((_, p, _)) => pl = p,
                    None => return,
                }
            }
        }
    }
}

/// LL-DASH as dash.js plays it in low-latency mode: the segment in progress is read as
/// its CMAF chunks arrive; the MPD is refreshed once per segment.
pub async fn ll_dash(v: Viewer) {
    tokio::join!(dash_follow(&v, "video"), dash_follow(&v, "audio"));
}

/// Reads the segments in progress of the MPD's first `content` ("video", "audio")
/// adaptation set; returns at once when the live MPD has none. Video chunks are dated.
async fn dash_follow(v: &Viewer, content: &str) {
    let kind = &v.stats.dash;
    let date = content == "video";
    let mut c = Client::new(v.http);
    let end = (Instant::now() + READY_LIMIT).min(v.until);
    let mut template = None;
    while Instant::now() < end {
        if let Ok(r) = c.get(&v.url, v.limit()).await {
            let text = String::from_utf8_lossy(&r.body);
            let live = dash_template(&text, "video").is_some_and(|t| t.count > 0);
            template = dash_template(&text, content).filter(|t| t.count > 0);
            if live && template.is_none() {
                return;
            }
        }
        if template.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(mut t) = template else {
        bump(&kind.errors, 1);
        return;
    };
    let started = Instant::now();
    let init = resolve(&v.url, &t.init);
    let r = c.get(&init, v.limit()).await;
    v.record(&init, kind, false, started, &r);
    // The timeline lists the segment in progress (availabilityTimeComplete="false"): the
    // live edge is its last entry.
    let mut next = (t.start + t.count).saturating_sub(1);
    while Instant::now() < v.until {
        let path = resolve(&v.url, &t.media.replace("$Number$", &next.to_string()));
        let mut splitter = ChunkSplitter::default();
        let mut chunks = Vec::new();
        let started = Instant::now();
        let r = c
            .get_with(&path, v.limit(), |data, at| {
                chunks.extend(splitter.push(data).into_iter().map(|t| (t, at)))
            })
            .await;
        let ok = v.record(&path, kind, false, started, &r);
        if ok && v.stats.on() {
            bump(&kind.segments, 1);
            bump(&kind.parts, chunks.len() as u64);
        }
        for (time, at) in chunks.into_iter().filter(|_| date) {
            v.delay(kind, time, t.timescale, at);
        }
        let started = Instant::now();
        let r = c.get(&v.url, v.limit()).await;
        if v.record(&v.url, kind, true, started, &r) {
            if let Some(new) = r
                .ok()
                .and_then(|r| dash_template(&String::from_utf8_lossy(&r.body), content))
            {
                t = new;
            }
        }
        next += 1;
        let live = (t.start + t.count).saturating_sub(1);
        if !ok || next < t.start || next > live + 1 {
            // Fell out of the window or ahead of it: rejoin at the live edge.
            next = live;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Publish accepted → first part and first segment listed, polling every 50 ms.
pub async fn probe_first(v: Viewer, accepted: Instant, low_latency: bool) {
    let mut c = Client::new(v.http);
    let mut path = v.url.clone();
    let (mut part, mut segment) = (!low_latency, false);
    let end = (accepted + READY_LIMIT).min(v.until);
    while !(part && segment) && Instant::now() < end {
        if let Ok(r) = c.get(&path, v.limit()).await {
            let text = String::from_utf8_lossy(&r.body);
            if r.status == 200 {
                if let Some(var) = first_variant(&text) {
                    path = resolve(&path, &var);
                    continue;
                }
                if let Some(p) = media_playlist(&text) {
                    if !part && text.contains("#EXT-X-PART:") {
                        part = true;
                        v.stats.first_part.add(r.done - accepted);
                    }
                    if !segment && !p.segments.is_empty() {
                        segment = true;
                        v.stats.first_segment.add(r.done - accepted);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

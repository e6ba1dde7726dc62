//! Every path written parses back to itself (over many generated paths), and the URLs
//! players and tests rely on are spelled exactly as before.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::media::TrackKind;

/// A name the hub accepts as app, base, label or recording start (`hub::naming::valid_name`),
/// sometimes one that looks like a file or a route word, to catch positional mix-ups.
fn name(rng: &mut StdRng) -> String {
    const TRICKY: &[&str] = &[
        "audio",
        "video",
        "ts",
        "index.m3u8",
        "audio.m3u8",
        "video.m3u8",
        "index.mpd",
        "streams",
        "recordings",
        "init-1.mp4",
        "7.m4s",
        "part-3.m4s",
        "720p",
        "src",
    ];
    if rng.random_bool(0.3) {
        return TRICKY[rng.random_range(0..TRICKY.len())].to_string();
    }
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-.";
    loop {
        let len = rng.random_range(1..12);
        let s: String = (0..len)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect();
        if s != "." && s != ".." {
            return s;
        }
    }
}

/// An app the hub lets publish (not a route word).
fn app(rng: &mut StdRng) -> String {
    loop {
        let a = name(rng);
        if !is_reserved_app(&a) {
            return a;
        }
    }
}

/// A rendition label whose objects are reachable (see the module docs on `vod`).
fn label(rng: &mut StdRng) -> String {
    loop {
        let l = name(rng);
        if l != VOD {
            return l;
        }
    }
}

fn number(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..3) {
        0 => rng.random_range(0..10),
        1 => rng.random(),
        _ => rng.random_range(0..100_000),
    }
}

fn kind(rng: &mut StdRng) -> TrackKind {
    if rng.random_bool(0.5) {
        TrackKind::Video
    } else {
        TrackKind::Audio
    }
}

fn feed(rng: &mut StdRng) -> Feed {
    match rng.random_range(0..3) {
        0 => Feed::Ts,
        _ => Feed::Cmaf(kind(rng)),
    }
}

fn object(rng: &mut StdRng, feed: Feed) -> ObjectName {
    match (feed, rng.random_range(0..3)) {
        (Feed::Ts, _) | (_, 0) => ObjectName::Segment(number(rng)),
        (_, 1) => ObjectName::Init(number(rng)),
        _ => ObjectName::Part(number(rng)),
    }
}

fn ladder_file(rng: &mut StdRng) -> LadderFile {
    let dir = |rng: &mut StdRng| {
        if rng.random_bool(0.2) {
            FeedDir::LadderAudio
        } else {
            FeedDir::Rendition {
                label: label(rng),
                feed: feed(rng),
            }
        }
    };
    match rng.random_range(0..5) {
        0 => LadderFile::Master(if rng.random_bool(0.5) {
            Container::Cmaf
        } else {
            Container::Ts
        }),
        1 => LadderFile::Mpd,
        2 => LadderFile::Playlist(dir(rng)),
        _ => {
            let d = dir(rng);
            let o = object(rng, d.feed());
            LadderFile::Object(d, o)
        }
    }
}

fn vod_file(rng: &mut StdRng) -> VodFile {
    let small = |rng: &mut StdRng| rng.random_range(0..10_000usize);
    match rng.random_range(0..5) {
        0 => VodFile::Master,
        1 => VodFile::Mpd,
        2 => VodFile::Playlist {
            label: name(rng),
            kind: kind(rng),
        },
        3 => VodFile::Combined {
            label: name(rng),
            n: small(rng),
        },
        _ => VodFile::Object {
            label: name(rng),
            kind: kind(rng),
            object: if rng.random_bool(0.3) {
                VodObject::Init(small(rng))
            } else {
                VodObject::Segment(small(rng), small(rng))
            },
        },
    }
}

fn api(rng: &mut StdRng) -> ApiPath {
    match rng.random_range(0..4) {
        0 => ApiPath::Streams,
        1 => ApiPath::Stream {
            app: name(rng),
            name: name(rng),
        },
        2 => ApiPath::Recordings,
        _ => ApiPath::Recording {
            app: name(rng),
            name: name(rng),
            action: if rng.random_bool(0.5) {
                RecordingAction::Start
            } else {
                RecordingAction::Stop
            },
        },
    }
}

fn path(rng: &mut StdRng) -> ObjectPath {
    match rng.random_range(0..8) {
        0 => ObjectPath::Index,
        1 => ObjectPath::Vendor(name(rng)),
        2 => ObjectPath::Time,
        3 => ObjectPath::Metrics,
        4 => ObjectPath::Api(api(rng)),
        5 => ObjectPath::Vod {
            app: app(rng),
            name: name(rng),
            start: name(rng),
            file: vod_file(rng),
        },
        _ => ObjectPath::Live {
            app: app(rng),
            base: name(rng),
            file: ladder_file(rng),
        },
    }
}

#[test]
fn every_path_written_parses_back_to_itself() {
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..200_000 {
        let p = path(&mut rng);
        let text = p.to_string();
        assert_eq!(text.parse::<ObjectPath>(), Ok(p.clone()), "{text}");
        // Written paths are canonical: parsing and writing again gives the same text.
        assert_eq!(text.parse::<ObjectPath>().unwrap().to_string(), text);
    }
}

#[test]
fn relative_uris_resolve_to_the_paths_they_name() {
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..20_000 {
        let (a, b, l) = (app(&mut rng), name(&mut rng), label(&mut rng));
        let f = feed(&mut rng);
        let o = object(&mut rng, f);
        // A media playlist at `{label}/{feed}.m3u8` lists `{feed}/{file}` (the form
        // `playlist::media` writes, whose own test parses what it renders).
        let dir = FeedDir::Rendition { label: l, feed: f };
        let playlist = ObjectPath::live(&a, &b, LadderFile::Playlist(dir.clone()));
        let listed = format!("{}/{}", f.name(), o.file(f.container()));
        let resolved = resolve(&playlist.to_string(), &listed);
        assert_eq!(
            resolved.parse(),
            Ok(ObjectPath::live(&a, &b, LadderFile::Object(dir.clone(), o)))
        );
        // The ladder audio playlist at `audio.m3u8` lists `audio/{file}`.
        if let Feed::Cmaf(_) = f {
            let audio = Feed::Cmaf(TrackKind::Audio);
            let at = ObjectPath::live(&a, &b, LadderFile::Playlist(FeedDir::LadderAudio));
            let listed = format!("{}/{}", audio.name(), o.file(Container::Cmaf));
            let resolved = resolve(&at.to_string(), &listed);
            let want = LadderFile::Object(FeedDir::LadderAudio, o);
            assert_eq!(resolved.parse(), Ok(ObjectPath::live(&a, &b, want)));
        }
        // The MPD's SegmentTemplate, with a number put in, names the segment.
        if let (Feed::Cmaf(_), ObjectName::Segment(n)) = (f, o) {
            let mpd = ObjectPath::live(&a, &b, LadderFile::Mpd).to_string();
            let media = dir.segment_template().replace("$Number$", &n.to_string());
            let want = LadderFile::Object(dir, ObjectName::Segment(n));
            assert_eq!(
                resolve(&mpd, &media).parse(),
                Ok(ObjectPath::live(&a, &b, want))
            );
        }
    }
}

/// `reference` resolved against the directory of `base` (RFC 3986, for relative paths
/// without dot segments).
fn resolve(base: &str, reference: &str) -> String {
    let dir = &base[..=base.rfind('/').unwrap()];
    format!("{dir}{reference}")
}

#[test]
fn urls_players_use_are_spelled_as_ever() {
    let live = |file| ObjectPath::live("live", "show", file).to_string();
    let rendition = |feed| FeedDir::Rendition {
        label: "720p".into(),
        feed,
    };
    let video = Feed::Cmaf(TrackKind::Video);
    assert_eq!(
        live(LadderFile::Master(Container::Cmaf)),
        "/live/show/index.m3u8"
    );
    assert_eq!(
        live(LadderFile::Master(Container::Ts)),
        "/live/show/ts.m3u8"
    );
    assert_eq!(live(LadderFile::Mpd), "/live/show/index.mpd");
    assert_eq!(
        live(LadderFile::Playlist(FeedDir::LadderAudio)),
        "/live/show/audio.m3u8"
    );
    assert_eq!(
        live(LadderFile::Playlist(rendition(video))),
        "/live/show/720p/video.m3u8"
    );
    assert_eq!(
        live(LadderFile::Object(rendition(video), ObjectName::Init(3))),
        "/live/show/720p/video/init-3.mp4"
    );
    assert_eq!(
        live(LadderFile::Object(rendition(video), ObjectName::Part(41))),
        "/live/show/720p/video/part-41.m4s"
    );
    assert_eq!(
        live(LadderFile::Object(
            rendition(Feed::Ts),
            ObjectName::Segment(7)
        )),
        "/live/show/720p/ts/7.ts"
    );
    assert_eq!(
        live(LadderFile::Object(
            FeedDir::LadderAudio,
            ObjectName::Segment(7)
        )),
        "/live/show/audio/7.m4s"
    );
    assert_eq!(
        rendition(video).segment_template(),
        "720p/video/$Number$.m4s"
    );
    let vod = |file| {
        ObjectPath::Vod {
            app: "live".into(),
            name: "show".into(),
            start: "20260101T000000Z".into(),
            file,
        }
        .to_string()
    };
    assert_eq!(
        vod(VodFile::Master),
        "/live/show/vod/20260101T000000Z/index.m3u8"
    );
    assert_eq!(
        vod(VodFile::Object {
            label: "src".into(),
            kind: TrackKind::Audio,
            object: VodObject::Segment(0, 12)
        }),
        "/live/show/vod/20260101T000000Z/src/audio/0-12.m4s"
    );
    assert_eq!(
        VodFile::segment_template("src", TrackKind::Video, 1),
        "src/video/1-$Number$.m4s"
    );
    let api = |a| ObjectPath::Api(a).to_string();
    assert_eq!(api(ApiPath::Streams), "/api/streams");
    assert_eq!(api(ApiPath::Recordings), "/api/recordings");
    let stop = ApiPath::Recording {
        app: "live".into(),
        name: "show".into(),
        action: RecordingAction::Stop,
    };
    assert_eq!(api(stop), "/api/recordings/live/show/stop");
    assert_eq!(ObjectPath::Index.to_string(), "/");
    assert_eq!(ObjectPath::Time.to_string(), "/time");
}

#[test]
fn what_the_router_refuses() {
    for bad in [
        "/live",
        "/live/show",
        "/live/show/video.m3u8",
        "/live/show/720p/video/7.ts",
        "/live/show/720p/ts/init-1.mp4",
        "/live/show/720p/ts/part-1.m4s",
        "/live/show/720p/subs/1.m4s",
        "/live/show/audio/x.m3u8",
        "/live/show/vod/720p/video/1.m4s",
        "/api/streams/live",
        "/api/recordings/live/show/pause",
        "/api/nope",
        "/vendor/a/b",
    ] {
        assert_eq!(bad.parse::<ObjectPath>(), Err(NoSuchPath), "{bad}");
    }
    // Empty segments are skipped, as they always were.
    assert_eq!(
        "//live//show/index.m3u8".parse(),
        Ok(ObjectPath::live(
            "live",
            "show",
            LadderFile::Master(Container::Cmaf)
        ))
    );
    // A rendition labelled `audio` keeps its own playlists.
    assert_eq!(
        "/live/show/audio/video.m3u8"
            .parse::<ObjectPath>()
            .unwrap()
            .to_string(),
        "/live/show/audio/video.m3u8"
    );
}

#[test]
fn any_request_path_that_parses_writes_back_to_a_path_of_the_same_value() {
    // Requests come as any text: what parses must write a canonical path that parses to
    // the same value (so logs, metrics and redirects never name another object).
    const TOKENS: &[&str] = &[
        "",
        "live",
        "show",
        "720p",
        "vod",
        "api",
        "streams",
        "recordings",
        "start",
        "stop",
        "time",
        "metrics",
        "vendor",
        "audio",
        "video",
        "ts",
        "index.m3u8",
        "ts.m3u8",
        "index.mpd",
        "audio.m3u8",
        "video.m3u8",
        "init-3.mp4",
        "part-9.m4s",
        "12.m4s",
        "12.ts",
        "0-4.m4s",
        "init-0.mp4",
        "+5.m4s",
        "007.ts",
        "x",
    ];
    let mut rng = StdRng::seed_from_u64(5);
    let mut parsed = 0;
    for _ in 0..200_000 {
        let n = rng.random_range(0..9);
        let path: String = (0..n)
            .map(|_| format!("/{}", TOKENS[rng.random_range(0..TOKENS.len())]))
            .collect();
        if let Ok(p) = path.parse::<ObjectPath>() {
            parsed += 1;
            assert_eq!(p.to_string().parse(), Ok(p.clone()), "{path} → {p}");
        }
    }
    assert!(
        parsed > 1_000,
        "the generator rarely makes a real path: {parsed}"
    );
}

//! The paths of a live ladder under `/{app}/{base}/`: master playlists, the MPD, media
//! playlists, and the objects (init segments, segments, LL-HLS parts) they list.

use std::fmt;

use crate::media::TrackKind;

/// How a feed names its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// CMAF: `{seq}.m4s` with init segments `init-{version}.mp4` and parts `part-{id}.m4s`.
    Cmaf,
    /// MPEG-TS: `{seq}.ts`, self-initialising.
    Ts,
}

impl Container {
    /// The segment file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Cmaf => "m4s",
            Container::Ts => "ts",
        }
    }
}

/// One sequence of segments a rendition publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feed {
    /// A demuxed CMAF track.
    Cmaf(TrackKind),
    /// Muxed MPEG-TS.
    Ts,
}

impl Feed {
    /// The feed named by a URL path segment (`video`, `audio`, `ts`).
    pub fn parse(name: &str) -> Option<Feed> {
        match name {
            "video" => Some(Feed::Cmaf(TrackKind::Video)),
            "audio" => Some(Feed::Cmaf(TrackKind::Audio)),
            "ts" => Some(Feed::Ts),
            _ => None,
        }
    }

    /// The URL path segment naming the feed.
    pub fn name(self) -> &'static str {
        match self {
            Feed::Cmaf(k) => k.as_str(),
            Feed::Ts => "ts",
        }
    }

    /// How the feed's segments are named.
    pub fn container(self) -> Container {
        match self {
            Feed::Cmaf(_) => Container::Cmaf,
            Feed::Ts => Container::Ts,
        }
    }
}

/// An object of a feed, by what it is. Its file name also depends on the feed's
/// [`Container`]; TS feeds have segments only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectName {
    /// `init-{version}.mp4`.
    Init(u64),
    /// `part-{id}.m4s`.
    Part(u64),
    /// `{seq}.m4s` or `{seq}.ts`.
    Segment(u64),
}

impl ObjectName {
    /// Parses the file name of an object of a `container` feed.
    pub fn parse(file: &str, container: Container) -> Option<ObjectName> {
        let number = |prefix: &str, suffix: &str| -> Option<u64> {
            file.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse()
                .ok()
        };
        let segment = || {
            let seq = file
                .strip_suffix(container.extension())?
                .strip_suffix('.')?;
            seq.parse().ok().map(ObjectName::Segment)
        };
        match container {
            Container::Cmaf => number("init-", ".mp4")
                .map(ObjectName::Init)
                .or_else(|| number("part-", ".m4s").map(ObjectName::Part))
                .or_else(segment),
            Container::Ts => segment(),
        }
    }

    /// The file name in a `container` feed.
    pub fn file(self, container: Container) -> FileName {
        FileName(self, container)
    }
}

/// An object's file name, written by its `Display`.
#[derive(Clone, Copy, Debug)]
pub struct FileName(ObjectName, Container);

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ObjectName::Init(v) => write!(f, "init-{v}.mp4"),
            ObjectName::Part(id) => write!(f, "part-{id}.m4s"),
            ObjectName::Segment(seq) => write!(f, "{seq}.{}", self.1.extension()),
        }
    }
}

/// Where a feed's playlist and objects live in a ladder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FeedDir {
    /// The ladder's shared audio (`audio.m3u8`, `audio/{file}`): its segment numbers stay
    /// when the rendition supplying it changes.
    LadderAudio,
    /// A rendition's feed (`{label}/{feed}.m3u8`, `{label}/{feed}/{file}`).
    Rendition {
        /// The rendition's label in the ladder.
        label: String,
        /// Which of its feeds.
        feed: Feed,
    },
}

impl FeedDir {
    /// The feed the directory holds.
    pub fn feed(&self) -> Feed {
        match self {
            FeedDir::LadderAudio => Feed::Cmaf(TrackKind::Audio),
            FeedDir::Rendition { feed, .. } => *feed,
        }
    }

    /// The DASH `SegmentTemplate@media` of the directory's CMAF segments, relative to the
    /// MPD: the segment path with `$Number$` for the number.
    pub fn segment_template(&self) -> String {
        segment_template(&self.to_string())
    }
}

impl fmt::Display for FeedDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedDir::LadderAudio => f.write_str("audio"),
            FeedDir::Rendition { label, feed } => write!(f, "{label}/{}", feed.name()),
        }
    }
}

/// A file of a live ladder, relative to `/{app}/{base}/` (where the master playlists and
/// the MPD are, so it is also the URI those write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LadderFile {
    /// `index.m3u8` (CMAF) or `ts.m3u8` (MPEG-TS): an HLS master playlist.
    Master(Container),
    /// `index.mpd`: the DASH manifest.
    Mpd,
    /// `audio.m3u8` or `{label}/{feed}.m3u8`: a media playlist.
    Playlist(FeedDir),
    /// `audio/{file}` or `{label}/{feed}/{file}`: an object.
    Object(FeedDir, ObjectName),
}

impl LadderFile {
    /// Parses the path segments after `/{app}/{base}/`.
    pub fn parse(rest: &[&str]) -> Option<LadderFile> {
        Some(match rest {
            ["index.m3u8"] => LadderFile::Master(Container::Cmaf),
            ["ts.m3u8"] => LadderFile::Master(Container::Ts),
            ["index.mpd"] => LadderFile::Mpd,
            ["audio.m3u8"] => LadderFile::Playlist(FeedDir::LadderAudio),
            // A playlist of a rendition labelled `audio` ends in `.m3u8`; objects never do.
            ["audio", file] if !file.ends_with(".m3u8") => LadderFile::Object(
                FeedDir::LadderAudio,
                ObjectName::parse(file, Container::Cmaf)?,
            ),
            [label, file] => {
                let feed = Feed::parse(file.strip_suffix(".m3u8")?)?;
                LadderFile::Playlist(FeedDir::Rendition {
                    label: label.to_string(),
                    feed,
                })
            }
            [label, feed, file] => {
                let feed = Feed::parse(feed)?;
                let name = ObjectName::parse(file, feed.container())?;
                let label = label.to_string();
                LadderFile::Object(FeedDir::Rendition { label, feed }, name)
            }
            _ => return None,
        })
    }

    /// The rendition the file belongs to, if it is not ladder-wide.
    pub fn label(&self) -> Option<&str> {
        match self {
            LadderFile::Playlist(FeedDir::Rendition { label, .. })
            | LadderFile::Object(FeedDir::Rendition { label, .. }, _) => Some(label),
            _ => None,
        }
    }
}

impl fmt::Display for LadderFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LadderFile::Master(Container::Cmaf) => f.write_str("index.m3u8"),
            LadderFile::Master(Container::Ts) => f.write_str("ts.m3u8"),
            LadderFile::Mpd => f.write_str("index.mpd"),
            LadderFile::Playlist(dir) => write!(f, "{dir}.m3u8"),
            LadderFile::Object(dir, name) => {
                write!(f, "{dir}/{}", name.file(dir.feed().container()))
            }
        }
    }
}

/// The DASH `SegmentTemplate@media` of the CMAF segments in directory `dir` (a written
/// [`FeedDir`]): the segment path with `$Number$` for the number.
pub fn segment_template(dir: &str) -> String {
    format!("{dir}/$Number$.m4s")
}

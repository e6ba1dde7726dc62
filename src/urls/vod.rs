//! The paths of a recording served as VOD under `/{app}/{name}/vod/{start}/`: its master
//! playlist and MPD, a media playlist per track, and the objects, named by file and
//! position (`{label}/{track}/init-{n}.mp4`, `{label}/{track}/{n}-{i}.m4s`), and each
//! rendition's combined file (`{label}/av-{n}.mp4`).

use std::fmt;

use crate::media::TrackKind;

/// What a VOD object name names: `init-{n}.mp4` or `{n}-{i}.m4s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VodObject {
    /// The init segment of file `n`.
    Init(usize),
    /// Segment `i` of file `n`.
    Segment(usize, usize),
}

impl VodObject {
    /// Parses an object file name.
    pub fn parse(file: &str) -> Option<VodObject> {
        if let Some(n) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            return n.parse().ok().map(VodObject::Init);
        }
        let (n, i) = file.strip_suffix(".m4s")?.split_once('-')?;
        Some(VodObject::Segment(n.parse().ok()?, i.parse().ok()?))
    }
}

impl fmt::Display for VodObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VodObject::Init(n) => write!(f, "init-{n}.mp4"),
            VodObject::Segment(n, i) => write!(f, "{n}-{i}.m4s"),
        }
    }
}

/// An object as its track's media playlist lists it: `{track}/{file}`, relative to the
/// playlist at `{label}/{track}.m3u8`.
#[derive(Clone, Copy, Debug)]
pub struct TrackObject(pub TrackKind, pub VodObject);

impl fmt::Display for TrackObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.as_str(), self.1)
    }
}

/// A file of a recording, relative to `/{app}/{name}/vod/{start}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VodFile {
    /// `index.m3u8`: the HLS master playlist.
    Master,
    /// `index.mpd`: the static MPD.
    Mpd,
    /// `{label}/{track}.m3u8`: a track's media playlist.
    Playlist {
        /// The rendition's label.
        label: String,
        /// The track.
        kind: TrackKind,
    },
    /// `{label}/av-{n}.mp4`: video file `n` and its audio in one MP4 (whole, with ranges).
    Combined {
        /// The rendition's label.
        label: String,
        /// Which video file.
        n: usize,
    },
    /// `{label}/{track}/{file}`: an object.
    Object {
        /// The rendition's label.
        label: String,
        /// The track.
        kind: TrackKind,
        /// Which object of the track.
        object: VodObject,
    },
}

impl VodFile {
    /// Parses the path segments after `/{app}/{name}/vod/{start}/`.
    pub fn parse(rest: &[&str]) -> Option<VodFile> {
        Some(match rest {
            ["index.m3u8"] => VodFile::Master,
            ["index.mpd"] => VodFile::Mpd,
            [label, file] if file.ends_with(".mp4") => VodFile::Combined {
                label: label.to_string(),
                n: file
                    .strip_prefix("av-")?
                    .strip_suffix(".mp4")?
                    .parse()
                    .ok()?,
            },
            [label, playlist] => VodFile::Playlist {
                label: label.to_string(),
                kind: TrackKind::parse(playlist.strip_suffix(".m3u8")?)?,
            },
            [label, kind, file] => VodFile::Object {
                label: label.to_string(),
                kind: TrackKind::parse(kind)?,
                object: VodObject::parse(file)?,
            },
            _ => return None,
        })
    }

    /// The DASH `SegmentTemplate@media` of file `n` of a track, relative to the MPD.
    pub fn segment_template(label: &str, kind: TrackKind, n: usize) -> String {
        format!("{label}/{}/{n}-$Number$.m4s", kind.as_str())
    }
}

impl fmt::Display for VodFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VodFile::Master => f.write_str("index.m3u8"),
            VodFile::Mpd => f.write_str("index.mpd"),
            VodFile::Playlist { label, kind } => write!(f, "{label}/{}.m3u8", kind.as_str()),
            VodFile::Combined { label, n } => write!(f, "{label}/av-{n}.mp4"),
            VodFile::Object {
                label,
                kind,
                object,
            } => write!(f, "{label}/{}", TrackObject(*kind, *object)),
        }
    }
}

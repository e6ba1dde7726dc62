//! Where an object goes in the bucket and how it is described: the HTTP URL layout under
//! the prefix (`/{app}/{name}/{file}` is `{prefix}/{app}/{name}/{file}`), so the relative
//! URIs the playlists and the MPD write resolve inside the bucket as they do on the server.

use object_store::path::Path;

use crate::media::TrackKind;
use crate::urls::{Feed, LadderFile, ObjectName, ObjectPath};

/// What an object is, for its headers and its metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A CMAF init segment.
    Init,
    /// A media segment (CMAF or MPEG-TS).
    Segment,
    /// A media playlist.
    Playlist,
    /// A master playlist or the MPD.
    Manifest,
}

impl Kind {
    /// The kind of `file`.
    pub fn of(file: &LadderFile) -> Kind {
        match file {
            LadderFile::Object(_, ObjectName::Init(_)) => Kind::Init,
            LadderFile::Object(..) => Kind::Segment,
            LadderFile::Playlist(_) => Kind::Playlist,
            LadderFile::Master(_) | LadderFile::Mpd => Kind::Manifest,
        }
    }

    /// The `kind` label of the bucket metrics.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Playlist => "playlist",
            Kind::Manifest => "manifest",
        }
    }

    /// Cache-Control stored with the object, for a CDN in front of the bucket: media URLs
    /// are never reused (numbers start from the clock), playlists change every segment.
    pub fn cache_control(self) -> &'static str {
        match self {
            Kind::Init | Kind::Segment => "public, max-age=31536000, immutable",
            Kind::Playlist | Kind::Manifest => "public, max-age=1",
        }
    }
}

/// The Content-Type of `file`, as the HTTP server answers it.
pub fn content_type(file: &LadderFile) -> &'static str {
    match file {
        LadderFile::Master(_) | LadderFile::Playlist(_) => "application/vnd.apple.mpegurl",
        LadderFile::Mpd => "application/dash+xml",
        LadderFile::Object(dir, _) => match dir.feed() {
            Feed::Cmaf(TrackKind::Video) => "video/mp4",
            Feed::Cmaf(TrackKind::Audio) => "audio/mp4",
            Feed::Ts => "video/mp2t",
        },
    }
}

/// The keys of one ladder's objects.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    app: String,
    base: String,
}

impl Keys {
    /// Keys under `prefix` (no leading or trailing slash; may be empty) for ladder `app/base`.
    pub fn new(prefix: &str, app: &str, base: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
            app: app.to_string(),
            base: base.to_string(),
        }
    }

    /// The key of `file`.
    pub fn key(&self, file: &LadderFile) -> Path {
        let url = ObjectPath::live(&self.app, &self.base, file.clone()).to_string();
        let url = url.trim_start_matches('/');
        if self.prefix.is_empty() {
            Path::from(url)
        } else {
            Path::from(format!("{}/{url}", self.prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::urls::{Container, FeedDir};

    #[test]
    fn keys_follow_the_url_layout_under_the_prefix() {
        let video = FeedDir::Rendition {
            label: "src".into(),
            feed: Feed::Cmaf(TrackKind::Video),
        };
        let seg = LadderFile::Object(video.clone(), ObjectName::Segment(42));
        let keys = Keys::new("cdn/a", "live", "show");
        assert_eq!(keys.key(&seg).as_ref(), "cdn/a/live/show/src/video/42.m4s");
        assert_eq!(
            keys.key(&LadderFile::Master(Container::Cmaf)).as_ref(),
            "cdn/a/live/show/index.m3u8"
        );
        let bare = Keys::new("", "live", "show");
        assert_eq!(
            bare.key(&LadderFile::Playlist(FeedDir::LadderAudio))
                .as_ref(),
            "live/show/audio.m3u8"
        );
        assert_eq!(Kind::of(&seg), Kind::Segment);
        assert_eq!(content_type(&seg), "video/mp4");
        let init = LadderFile::Object(video, ObjectName::Init(0));
        assert_eq!(Kind::of(&init).label(), "init");
    }
}

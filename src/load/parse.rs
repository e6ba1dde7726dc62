//! The few playlist and MPD facts the viewers need, read leniently from text: what a
//! player must know to ask for the next segment or part, nothing more.

/// A media playlist as a viewer sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    /// EXT-X-TARGETDURATION, seconds.
    pub target: f64,
    /// PART-TARGET, seconds, when low latency is on.
    pub part_target: Option<f64>,
    /// CAN-SKIP-UNTIL was offered (delta updates).
    pub can_skip: bool,
    /// Segments as (media sequence number, URI), the skipped ones left out.
    pub segments: Vec<(u64, String)>,
    /// Media sequence number of the segment after the last whole one.
    pub next_msn: u64,
    /// Parts listed after the last whole segment.
    pub trailing_parts: u64,
    /// The preload hint's URI.
    pub hint: Option<String>,
    /// EXT-X-ENDLIST seen.
    pub ended: bool,
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[at..];
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next();
    }
    rest.split(',').next()
}

/// The first variant URI of a master playlist; `None` for a media playlist.
pub fn first_variant(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with("#EXT-X-STREAM-INF"))?;
    lines
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
}

/// The URI of a master playlist's first audio rendition (`EXT-X-MEDIA:TYPE=AUDIO`).
pub fn audio_rendition(master: &str) -> Option<String> {
    master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:") && attr(l, "TYPE") == Some("AUDIO"))
        .find_map(|l| attr(l, "URI").map(String::from))
}

/// Reads a media playlist.
pub fn media_playlist(text: &str) -> Option<MediaPlaylist> {
    if !text.starts_with("#EXTM3U") {
        return None;
    }
    let mut p = MediaPlaylist::default();
    let mut seq = 0u64;
    let mut pending_segment = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.parse().ok()?;
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = attr(line, "PART-TARGET").and_then(|v| v.parse().ok());
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.can_skip = attr(line, "CAN-SKIP-UNTIL").is_some();
        } else if line.starts_with("#EXT-X-SKIP:") {
            seq += attr(line, "SKIPPED-SEGMENTS").and_then(|v| v.parse::<u64>().ok())?;
        } else if line.starts_with("#EXT-X-PART:") {
            p.trailing_parts += 1;
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") && attr(line, "TYPE") == Some("PART") {
            p.hint = attr(line, "URI").map(String::from);
        } else if line.starts_with("#EXTINF:") {
            pending_segment = true;
        } else if line.starts_with("#EXT-X-ENDLIST") {
            p.ended = true;
        } else if !line.is_empty() && !line.starts_with('#') && pending_segment {
            p.segments.push((seq, line.to_string()));
            seq += 1;
            pending_segment = false;
            p.trailing_parts = 0;
        }
    }
    p.next_msn = seq;
    Some(p)
}

/// What a DASH viewer needs of the first video representation's SegmentTemplate.
#[derive(Clone, Debug, PartialEq)]
pub struct DashTemplate {
    /// Media URL template.
    pub media: String,
    /// Init segment URL.
    pub init: String,
    /// Timescale of the template.
    pub timescale: u64,
    /// Number of the first listed segment.
    pub start: u64,
    /// Segments listed in the SegmentTimeline.
    pub count: u64,
}

fn xml_attr(tag: &str, key: &str) -> Option<String> {
    let at = tag.find(&format!(" {key}=\""))? + key.len() + 3;
    tag[at..].split('"').next().map(String::from)
}

/// Reads the first SegmentTemplate of a live MPD's first AdaptationSet of `content`
/// ("video", "audio"), with `$RepresentationID$` filled.
pub fn dash_template(mpd: &str, content: &str) -> Option<DashTemplate> {
    let video = mpd.find(&format!("contentType=\"{content}\""))?;
    let rest = &mpd[video..];
    let rep_id = rest
        .find("<Representation ")
        .and_then(|i| xml_attr(&rest[i..], "id"))
        .unwrap_or_default();
    let t_at = rest.find("<SegmentTemplate ")?;
    let tag = &rest[t_at..t_at + rest[t_at..].find('>')?];
    let fill = |s: String| s.replace("$RepresentationID$", &rep_id);
    let timeline_end = rest[t_at..]
        .find("</SegmentTimeline>")
        .map_or(0, |e| t_at + e);
    let mut count = 0u64;
    let mut pos = t_at;
    while let Some(i) = rest[pos..timeline_end.max(pos)].find("<S ") {
        let s_end = rest[pos + i..].find('>')? + pos + i;
        let s = &rest[pos + i..s_end];
        count += 1 + xml_attr(s, "r")
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0);
        pos = s_end;
    }
    Some(DashTemplate {
        media: fill(xml_attr(tag, "media")?),
        init: fill(xml_attr(tag, "initialization")?),
        timescale: xml_attr(tag, "timescale")?.parse().ok()?,
        start: xml_attr(tag, "startNumber")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ll_playlist_with_skip() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0\n\
#EXT-X-PART-INF:PART-TARGET=0.209\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n\
#EXTINF:2.000,\nv/12.m4s\n#EXT-X-PART:DURATION=0.2,URI=\"v/p1.m4s\"\n#EXTINF:2.000,\nv/13.m4s\n\
#EXT-X-PART:DURATION=0.2,URI=\"v/p2.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v/p3.m4s\"\n";
        let p = media_playlist(text).unwrap();
        assert_eq!(
            p.segments,
            vec![(12, "v/12.m4s".into()), (13, "v/13.m4s".into())]
        );
        assert_eq!((p.next_msn, p.trailing_parts), (14, 1));
        assert_eq!(p.hint.as_deref(), Some("v/p3.m4s"));
        assert_eq!(p.part_target, Some(0.209));
        assert!(p.can_skip && !p.ended);
        assert_eq!(first_variant(text), None);
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio.m3u8\",GROUP-ID=\"a\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/v.m3u8\n";
        assert_eq!(first_variant(master).as_deref(), Some("src/v.m3u8"));
        assert_eq!(audio_rendition(master).as_deref(), Some("audio.m3u8"));
        assert_eq!(audio_rendition(text), None);
    }

    #[test]
    fn reads_the_video_template() {
        let mpd = r#"<MPD><Period><AdaptationSet id="0" contentType="video">
<Representation id="src-video" codecs="avc1">
<SegmentTemplate timescale="90000" initialization="src/video/init-1.mp4" media="src/video/$Number$.m4s" startNumber="898">
<SegmentTimeline><S t="0" d="180000" r="4"/><S d="1"/></SegmentTimeline></SegmentTemplate>
</Representation></AdaptationSet><AdaptationSet contentType="audio"><SegmentTemplate timescale="44100" media="a" initialization="b"><SegmentTimeline><S t="0" d="1"/></SegmentTimeline></SegmentTemplate></AdaptationSet></Period></MPD>"#;
        let t = dash_template(mpd, "video").unwrap();
        assert_eq!((t.start, t.count, t.timescale), (898, 6, 90000));
        assert_eq!(t.media, "src/video/$Number$.m4s");
        assert_eq!(t.init, "src/video/init-1.mp4");
        assert_eq!(dash_template(mpd, "audio").unwrap().timescale, 44100);
        assert_eq!(dash_template(mpd, "text"), None);
    }
}

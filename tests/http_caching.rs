//! Issue 15 part 1 over real HTTP: the caching headers of every kind of live object, 304
//! revalidation, single Range requests (206/416), HEAD, and gzip of playlists and the MPD
//! (decoded and compared with the identity body), on a live ffmpeg publish with LL-HLS on.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use common::http::{request_with, Response};
use common::{poll, publish, start, test_config};

fn req(http: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    request_with(http, method, path, headers).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn get(http: SocketAddr, path: &str) -> Response {
    req(http, "GET", path, &[])
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers))
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

/// The value of attribute `name` in a tag line.
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!("{name}="))? + name.len() + 1..];
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next(),
        None => rest.split(',').next(),
    }
}

/// A text playlist or MPD: short-lived, ETag without Last-Modified, Vary, gzip when
/// asked for that decodes to the identity body, 304 for its own tag.
fn check_text(http: SocketAddr, path: &str, max_age: u32) -> String {
    let plain = get(http, path);
    assert_eq!(plain.status, 200, "{path}");
    assert_eq!(
        header(&plain, "cache-control"),
        format!("public, max-age={max_age}"),
        "{path}"
    );
    assert_eq!(header(&plain, "vary"), "accept-encoding", "{path}");
    assert!(plain.header("content-encoding").is_none(), "{path}");
    assert!(
        plain.header("last-modified").is_none(),
        "{path}: dates too coarse"
    );
    assert!(plain.header("expires").is_none(), "{path}");
    let etag = header(&plain, "etag").to_string();
    let body = plain.text();
    if body.len() >= 256 {
        // A live playlist moves on every part: retry until both forms are of one rendering.
        let same = poll(Duration::from_secs(5), || {
            let plain = get(http, path);
            let gz = req(
                http,
                "GET",
                path,
                &[("Accept-Encoding", "gzip, deflate, br")],
            );
            assert_eq!(header(&gz, "content-encoding"), "gzip", "{path}");
            assert_eq!(header(&gz, "vary"), "accept-encoding");
            assert!(gz.body.len() < plain.body.len(), "{path}: compressed");
            let tag = header(&plain, "etag");
            (header(&gz, "etag") == format!("{}-gz\"", &tag[..tag.len() - 1]))
                .then_some((plain.body, gz.body))
        });
        let (identity, compressed) = same.unwrap_or_else(|| panic!("{path}: never one rendering"));
        assert_eq!(gunzip(&compressed), identity, "{path}: gzip round trip");
        eprintln!(
            "{path}: {} bytes, gzip {} bytes",
            identity.len(),
            compressed.len()
        );
    }
    let revalidated = req(http, "GET", path, &[("If-None-Match", &etag)]);
    // 304 unless the text changed in between (a new part): then a fresh 200.
    assert!(
        revalidated.status == 304 || header(&revalidated, "etag") != etag,
        "{path}: {}",
        revalidated.status
    );
    if revalidated.status == 304 {
        assert!(revalidated.body.is_empty());
        assert_eq!(header(&revalidated, "etag"), etag);
        assert_eq!(header(&revalidated, "vary"), "accept-encoding");
    }
    body
}

/// An immutable media object: long-lived, validators, Accept-Ranges, no Vary, 304s,
/// Range 206 equal to the slice of the whole, 416 past the end, HEAD.
fn check_media(http: SocketAddr, path: &str, dated: bool) {
    let whole = get(http, path);
    assert_eq!(whole.status, 200, "{path}");
    assert_eq!(
        header(&whole, "cache-control"),
        "public, max-age=31536000, immutable",
        "{path}"
    );
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    assert!(whole.header("vary").is_none(), "{path}: media never varies");
    assert!(whole.header("expires").is_none());
    let etag = header(&whole, "etag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let len = whole.body.len();
    assert!(len > 16, "{path}");
    assert_eq!(header(&whole, "content-length"), len.to_string());
    // The same tag every time.
    assert_eq!(header(&get(http, path), "etag"), etag, "{path}: stable");

    let cached = req(http, "GET", path, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304, "{path}");
    assert!(cached.body.is_empty());
    assert_eq!(header(&cached, "etag"), etag);
    assert_eq!(
        header(&cached, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let other = req(http, "GET", path, &[("If-None-Match", "\"nope\"")]);
    assert_eq!(other.status, 200);

    if dated {
        let modified = header(&whole, "last-modified").to_string();
        let since = req(http, "GET", path, &[("If-Modified-Since", &modified)]);
        assert_eq!(since.status, 304, "{path}: If-Modified-Since its own date");
        let older = "Mon, 01 Jan 2001 00:00:00 GMT";
        let since = req(http, "GET", path, &[("If-Modified-Since", older)]);
        assert_eq!(since.status, 200);
    } else {
        assert!(whole.header("last-modified").is_none(), "{path}");
    }

    let (a, b) = (3, len / 2);
    let part = req(http, "GET", path, &[("Range", &format!("bytes={a}-{b}"))]);
    assert_eq!(part.status, 206, "{path}");
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes {a}-{b}/{len}")
    );
    assert_eq!(part.body, whole.body[a..=b], "{path}: the range's bytes");
    let tail = req(http, "GET", path, &[("Range", "bytes=-10")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, whole.body[len - 10..]);
    let past = req(http, "GET", path, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(past.status, 416, "{path}");
    assert_eq!(header(&past, "content-range"), format!("bytes */{len}"));
    assert_eq!(header(&past, "cache-control"), "no-store");
    let if_range = [("Range", "bytes=0-3"), ("If-Range", "\"stale\"")];
    assert_eq!(req(http, "GET", path, &if_range).status, 200);
    let if_range = [("Range", "bytes=0-3"), ("If-Range", etag.as_str())];
    assert_eq!(req(http, "GET", path, &if_range).status, 206);

    let head = req(http, "HEAD", path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(header(&head, "content-length"), len.to_string());
    assert_eq!(header(&head, "etag"), etag);
    assert!(head.body.is_empty());
}

#[test]
fn every_object_kind_has_cdn_correct_headers() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _p = publish(
        server.rtmp_addr,
        "live",
        "cache",
        &common::long_sample(60),
        0,
    );
    let master = "/live/cache/index.m3u8";
    let media = "/live/cache/src/video.m3u8";
    // Two finished segments, so the second-newest is surely complete.
    poll(Duration::from_secs(20), || {
        let r = get(http, media);
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then_some(())
    })
    .expect("two segments");

    check_text(http, master, 1);
    check_text(http, "/live/cache/index.mpd", 1);
    check_text(http, "/live/cache/ts.m3u8", 1);
    let text = check_text(http, media, 1);

    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:").and_then(|l| attr(l, "URI")))
        .expect("EXT-X-MAP");
    check_media(http, &format!("/live/cache/src/{init}"), false);
    let segment = text
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a segment");
    check_media(http, &format!("/live/cache/src/{segment}"), true);
    let part = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:").and_then(|l| attr(l, "URI")))
        .next()
        .expect("a part");
    check_media(http, &format!("/live/cache/src/{part}"), true);
    let ts = check_text(http, "/live/cache/src/ts.m3u8", 1);
    let ts_segment = ts
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a TS segment");
    check_media(http, &format!("/live/cache/src/{ts_segment}"), true);

    // A blocking reload: answered when the next part exists, cacheable for a target
    // duration under its own URL; gzip round trip on it too.
    let hint_line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .expect("a preload hint");
    let hint = attr(hint_line, "URI").unwrap();
    let (msn, part_index) = next_position(&text);
    let blocking = format!("{media}?_HLS_msn={msn}&_HLS_part={part_index}");
    let held = req(http, "GET", &blocking, &[("Accept-Encoding", "gzip")]);
    assert_eq!(held.status, 200);
    assert_eq!(header(&held, "cache-control"), "public, max-age=2");
    assert_eq!(header(&held, "content-encoding"), "gzip");
    let listed = String::from_utf8(gunzip(&held.body)).unwrap();
    assert!(
        listed.contains(hint),
        "the answer lists the hinted part {hint}"
    );
    let again = get(http, &blocking);
    assert_eq!(gunzip(&held.body), again.body, "same position, same text");

    // Errors are never stored: a part far ahead, a segment long gone, the API.
    let r = get(http, "/live/cache/src/video/part-1.m4s");
    assert_eq!(r.status, 404);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let r = get(http, "/live/cache/src/video/1000000.m4s");
    assert_eq!(r.status, 404);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let r = get(http, "/live/nothere/index.m3u8");
    assert_eq!(header(&r, "cache-control"), "no-store");
    let r = get(http, "/api/streams");
    assert_eq!(header(&r, "cache-control"), "no-store");
    let r = req(http, "HEAD", master, &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(header(&r, "content-length").parse::<usize>().unwrap() > 0);
}

/// The (msn, part) a blocking request for the part after the newest listed one names.
fn next_position(text: &str) -> (u64, usize) {
    let mut msn: u64 = 0;
    let mut parts = 0usize;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap();
        } else if line.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !line.starts_with('#') && !line.is_empty() {
            msn += 1;
            parts = 0;
        }
    }
    (msn, parts)
}

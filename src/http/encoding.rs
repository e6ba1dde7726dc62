//! Text responses (playlists, MPDs) with content negotiation: gzip when the client accepts
//! it (an LL-HLS media playlist compresses about 4.5:1), `Vary: Accept-Encoding` so a cache
//! keeps the two forms apart, a strong ETag per form, and 304 for a cache whose copy is
//! current.
//!
//! Compression happens once per rendering, not per request ([`Rendering::encoded`]), on
//! no lock: the requests a new part releases share the one compressed copy.

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use warp::http::{header, HeaderValue};

use super::request::Headers;
use super::response::{ok, Caching};
use super::validators::Validators;
use crate::hub::renderings::Rendering;

/// Bodies shorter than this go uncompressed: gzip's header and trailer would eat the gain.
pub const MIN_GZIP: usize = 256;

/// True when `accept_encoding` allows gzip (RFC 9110 12.5.3): listed (or `*`) with a
/// nonzero q-value.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(list) = accept_encoding else {
        return false;
    };
    let mut star = false;
    for item in list.split(',') {
        let mut fields = item.split(';').map(str::trim);
        let coding = fields.next().unwrap_or("").to_ascii_lowercase();
        let q = fields
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => return q > 0.0,
            "*" => star = q > 0.0,
            _ => {}
        }
    }
    star
}

/// `body` gzip-compressed at the fast level.
pub fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 64), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// Answers a GET or HEAD for a rendered text: gzip-compressed when the request accepts it
/// and the text is long enough, 304 when the request's tag is current.
pub fn text(
    rendering: &Rendering,
    content_type: &str,
    caching: Caching,
    req: &Headers,
) -> warp::reply::Response {
    let gzipped = rendering.body.len() >= MIN_GZIP && accepts_gzip(req.accept_encoding.as_deref());
    // Each form is its own representation with its own strong tag.
    let tag = if gzipped {
        format!("{}-gz", rendering.tag)
    } else {
        rendering.tag.clone()
    };
    let validators = Validators::new(tag, None);
    if validators.not_modified(req) {
        return validators.not_modified_response(caching, true);
    }
    let body = if gzipped {
        rendering.encoded(gzip)
    } else {
        rendering.body.clone()
    };
    let mut resp = ok(body, content_type, caching);
    let h = resp.headers_mut();
    validators.insert(h);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Read;
    use warp::http::StatusCode;

    #[test]
    fn reads_accept_encoding() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("*, gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("br, deflate")));
        assert!(!accepts_gzip(None));
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    async fn body(resp: warp::reply::Response) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn gzip_round_trips_and_each_form_has_its_tag() {
        let text_body: String = (0..40)
            .map(|i| format!("#EXTINF:2.000,\n{i}.m4s\n"))
            .collect();
        let r = Rendering::new(Bytes::from(text_body.clone()));
        let req = |enc: Option<&str>, inm: Option<String>| Headers {
            accept_encoding: enc.map(str::to_string),
            if_none_match: inm,
            ..Headers::default()
        };
        let plain = text(
            &r,
            "application/vnd.apple.mpegurl",
            Caching::Fresh(1),
            &req(None, None),
        );
        let h = plain.headers().clone();
        assert!(h.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(h[header::VARY], "accept-encoding");
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=1");
        assert!(h.get(header::LAST_MODIFIED).is_none());
        assert_eq!(body(plain).await, text_body.as_bytes());

        let gz = text(
            &r,
            "application/vnd.apple.mpegurl",
            Caching::Fresh(1),
            &req(Some("gzip"), None),
        );
        let gh = gz.headers().clone();
        assert_eq!(gh[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gh[header::VARY], "accept-encoding");
        assert_ne!(
            gh[header::ETAG],
            h[header::ETAG],
            "each form has its own tag"
        );
        let compressed = body(gz).await;
        assert!(
            compressed.len() < text_body.len() / 3,
            "{}",
            compressed.len()
        );
        assert_eq!(gunzip(&compressed), text_body.as_bytes());

        // Revalidation matches the form asked for only.
        let etag = |h: &warp::http::HeaderMap| h[header::ETAG].to_str().unwrap().to_string();
        let again = text(
            &r,
            "x",
            Caching::Fresh(1),
            &req(Some("gzip"), Some(etag(&gh))),
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::VARY], "accept-encoding");
        let other_form = text(&r, "x", Caching::Fresh(1), &req(None, Some(etag(&gh))));
        assert_eq!(other_form.status(), StatusCode::OK);
    }

    #[test]
    fn short_texts_stay_plain() {
        let r = Rendering::new(Bytes::from_static(b"#EXTM3U\n"));
        let req = Headers {
            accept_encoding: Some("gzip".into()),
            ..Headers::default()
        };
        let resp = text(&r, "x", Caching::Fresh(1), &req);
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(resp.headers()[header::VARY], "accept-encoding");
    }
}

//! Ingest's publish authorisation, driven with bytes: the webhook round trip through the
//! driver's answer, media held meanwhile, refusals, and the unpublish notice.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::config::Config;
use crate::rtmp::client::{ClientEvent, ClientSession};

fn hub(toml: &str) -> Arc<Hub> {
    Hub::new(Arc::new(Config::from_toml(toml).unwrap()))
}

/// Moves bytes both ways until both sides are quiet; returns the client's events.
fn pump(
    ingest: &mut Ingest,
    client: &mut ClientSession,
    mut to_server: Vec<Bytes>,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    for _ in 0..20 {
        for b in std::mem::take(&mut to_server) {
            ingest.input(&b).expect("ingest accepts client bytes");
        }
        let out = std::mem::take(&mut ingest.out);
        if out.is_empty() && to_server.is_empty() {
            break;
        }
        for b in out {
            for e in client.handle_input(&b).expect("client") {
                match e {
                    ClientEvent::Send(b) => to_server.push(b),
                    other => seen.push(other),
                }
            }
        }
    }
    seen
}

fn sample_video_header() -> Bytes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/h264_aac_640x360.flv");
    let tags = crate::flv::file::read_tags(Bytes::from(std::fs::read(path).unwrap())).unwrap();
    tags.into_iter()
        .find(|t| t.kind == 9 && t.body.len() > 1 && t.body[1] == 0)
        .expect("AVC sequence header")
        .body
}

const HOOK: &str = "[auth.apps.live]\nwebhook = \"http://127.0.0.1:9/hook\"\n";

#[test]
fn webhook_answer_decides_and_held_media_is_kept() {
    let hub = hub(HOOK);
    let mut ingest = Ingest::new(hub.clone(), 7).with_peer("192.0.2.1".parse().unwrap());
    let (mut client, c0c1) = ClientSession::new("live", "show_720p?key=abc", false, 4096);
    let seen = pump(&mut ingest, &mut client, vec![c0c1]);
    assert!(!seen.contains(&ClientEvent::PublishAccepted), "{seen:?}");
    let Some(AuthRequest::Webhook(call)) = ingest.take_request() else {
        panic!("the webhook must be asked");
    };
    let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["action"], "publish");
    assert_eq!(
        (body["stream"].as_str(), body["ladder"].as_str()),
        (Some("show_720p"), Some("show"))
    );
    assert_eq!(body["client_ip"], "192.0.2.1");
    assert_eq!(body["conn_id"], 7);
    assert_eq!(call.url.path, "/hook");
    // The encoder sends its header before the answer: it is held, not lost.
    let header = client.video(0, sample_video_header());
    assert!(pump(&mut ingest, &mut client, vec![header]).is_empty());
    assert!(
        hub.ladder("live", "show").is_none(),
        "nothing published before the answer"
    );
    ingest.answer(AuthAnswer::Webhook(Ok(204))).unwrap();
    assert!(ingest.is_publishing());
    let seen = pump(&mut ingest, &mut client, Vec::new());
    assert!(seen.contains(&ClientEvent::PublishAccepted), "{seen:?}");
    let rendition = hub
        .ladder("live", "show")
        .unwrap()
        .rendition("720p")
        .unwrap();
    assert!(
        rendition.read().video.is_some(),
        "held sequence header reached the publisher"
    );
    assert!(ingest.take_notices().is_empty());
    ingest.unpublish();
    let notices = ingest.take_notices();
    assert_eq!(notices.len(), 1);
    let told: serde_json::Value = serde_json::from_slice(&notices[0].body).unwrap();
    assert_eq!(
        (told["action"].as_str(), told["conn_id"].as_u64()),
        (Some("unpublish"), Some(7))
    );
}

#[test]
fn webhook_refusal_and_unreachable_answer_bad_name() {
    for outcome in [Ok(403), Err("connection refused".to_string())] {
        let hub = hub(HOOK);
        let mut ingest = Ingest::new(hub.clone(), 1);
        let (mut client, c0c1) = ClientSession::new("live", "show", false, 4096);
        pump(&mut ingest, &mut client, vec![c0c1]);
        assert!(matches!(
            ingest.take_request(),
            Some(AuthRequest::Webhook(_))
        ));
        ingest.answer(AuthAnswer::Webhook(outcome)).unwrap();
        let seen = pump(&mut ingest, &mut client, Vec::new());
        assert!(
            seen.contains(&ClientEvent::PublishRejected(
                "NetStream.Publish.BadName".into()
            )),
            "{seen:?}"
        );
        assert!(!ingest.is_publishing());
        assert!(hub.ladder("live", "show").is_none());
    }
}

#[test]
fn keys_are_checked_without_the_driver() {
    let hub = hub("[auth.apps.live]\nkeys = { show = \"k1\" }\n");
    for (name, accepted) in [
        ("show?key=k1", true),
        ("show?key=k2", false),
        ("show", false),
    ] {
        let mut ingest = Ingest::new(hub.clone(), 1);
        let (mut client, c0c1) = ClientSession::new("live", name, false, 4096);
        let seen = pump(&mut ingest, &mut client, vec![c0c1]);
        assert!(ingest.take_request().is_none());
        assert_eq!(
            seen.contains(&ClientEvent::PublishAccepted),
            accepted,
            "{name}: {seen:?}"
        );
        ingest.unpublish();
    }
}

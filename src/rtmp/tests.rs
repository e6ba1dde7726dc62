//! Server and client sessions wired to each other in memory (no sockets, no timing).

use bytes::Bytes;

use super::client::{ClientEvent, ClientSession};
use super::session::{ServerSession, SessionConfig, SessionEvent};

/// Moves bytes both ways until neither side has anything to say; returns what each saw.
fn pump(
    server: &mut ServerSession,
    client: &mut ClientSession,
    mut to_server: Vec<Bytes>,
    split: usize,
) -> (Vec<SessionEvent>, Vec<ClientEvent>) {
    let (mut sev, mut cev) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        if to_server.is_empty() {
            break;
        }
        let mut to_client = Vec::new();
        for bytes in to_server.drain(..) {
            for part in bytes.chunks(split.max(1)) {
                for e in server
                    .handle_input(part)
                    .expect("server accepts client bytes")
                {
                    if let SessionEvent::PublishRequested { stream_id, .. } = &e {
                        for r in server.accept_publish(*stream_id) {
                            if let SessionEvent::Send(b) = r {
                                to_client.push(b);
                            }
                        }
                    }
                    match e {
                        SessionEvent::Send(b) => to_client.push(b),
                        other => sev.push(other),
                    }
                }
            }
        }
        for bytes in to_client {
            for e in client
                .handle_input(&bytes)
                .expect("client accepts server bytes")
            {
                match e {
                    ClientEvent::Send(b) => to_server.push(b),
                    other => cev.push(other),
                }
            }
        }
    }
    (sev, cev)
}

/// A server session with a client publishing `live/s` on it.
fn published() -> (ServerSession, ClientSession) {
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client, c0c1) = ClientSession::new("live", "s", false, 4096);
    let (_, cev) = pump(&mut server, &mut client, vec![c0c1], usize::MAX);
    assert!(cev.contains(&ClientEvent::PublishAccepted));
    (server, client)
}

fn publish_flow(digest: bool, split: usize) {
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client, c0c1) = ClientSession::new("live", "show?token=1", digest, 4096);
    let (sev, cev) = pump(&mut server, &mut client, vec![c0c1], split);
    assert_eq!(
        cev,
        vec![ClientEvent::Connected, ClientEvent::PublishAccepted],
        "{sev:?}"
    );
    assert!(
        sev.iter().any(
            |e| matches!(e, SessionEvent::PublishRequested { app, stream_key, query, .. }
        if app == "live" && stream_key == "show" && query.as_deref() == Some("token=1"))
        ),
        "{sev:?}"
    );
    assert_eq!(server.app(), Some("live"));

    let big = Bytes::from(vec![7u8; 10_000]);
    let msgs = vec![
        client.metadata(super::amf0::Amf0Value::object([(
            "width",
            super::amf0::Amf0Value::Number(640.0),
        )])),
        client.video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0])),
        client.audio(23, Bytes::from_static(&[0xAF, 1, 1])),
        client.video(0x0100_0000, big.clone()),
        client.unpublish(),
    ];
    let (sev, _) = pump(&mut server, &mut client, msgs, split);
    let id = client.stream_id();
    assert!(
        matches!(&sev[0], SessionEvent::Metadata { data, .. } if data.get("width").is_some()),
        "{sev:?}"
    );
    assert_eq!(
        sev[1],
        SessionEvent::Video {
            stream_id: id,
            timestamp: 0,
            payload: Bytes::from_static(&[0x17, 0, 0, 0, 0])
        }
    );
    assert_eq!(
        sev[2],
        SessionEvent::Audio {
            stream_id: id,
            timestamp: 23,
            payload: Bytes::from_static(&[0xAF, 1, 1])
        }
    );
    assert_eq!(
        sev[3],
        SessionEvent::Video {
            stream_id: id,
            timestamp: 0x0100_0000,
            payload: big
        }
    );
    assert!(
        sev.contains(&SessionEvent::PublishFinished { stream_id: id }),
        "{sev:?}"
    );
}

#[test]
fn publish_simple_handshake() {
    publish_flow(false, usize::MAX);
}

#[test]
fn publish_digest_handshake() {
    publish_flow(true, usize::MAX);
}

#[test]
fn publish_fed_one_byte_at_a_time() {
    publish_flow(false, 1);
}

#[test]
fn publish_request_carries_query_and_reject_answers_bad_name() {
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client, c0c1) = ClientSession::new("live/", "show?token=abc", false, 128);
    let mut to_client = Vec::new();
    let mut requested = None;
    let mut to_server = vec![c0c1];
    for _ in 0..10 {
        for b in to_server.drain(..) {
            for e in server.handle_input(&b).unwrap() {
                match e {
                    SessionEvent::Send(b) => to_client.push(b),
                    SessionEvent::PublishRequested {
                        app,
                        stream_key,
                        stream_id,
                        query,
                    } => {
                        assert_eq!(
                            (app.as_str(), stream_key.as_str(), query.as_deref()),
                            ("live", "show", Some("token=abc"))
                        );
                        requested = Some(stream_id);
                        for e in
                            server.reject_publish(stream_id, "NetStream.Publish.BadName", "taken")
                        {
                            if let SessionEvent::Send(b) = e {
                                to_client.push(b);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for b in to_client.drain(..) {
            for e in client.handle_input(&b).unwrap() {
                match e {
                    ClientEvent::Send(b) => to_server.push(b),
                    ClientEvent::PublishRejected(code) => {
                        assert_eq!(code, "NetStream.Publish.BadName");
                        assert!(requested.is_some());
                        // Media on a refused stream is not delivered.
                        let v = client.video(0, Bytes::from_static(&[0x17, 1]));
                        let ev = server.handle_input(&v).unwrap();
                        assert!(
                            ev.iter().all(|e| !matches!(e, SessionEvent::Video { .. })),
                            "{ev:?}"
                        );
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    panic!("client never saw the rejection");
}

#[test]
fn acknowledgement_after_window_and_ping_response() {
    let mut server = ServerSession::new(SessionConfig {
        chunk_size: 4096,
        window_ack_size: 1000,
        ..SessionConfig::default()
    });
    let (mut client, c0c1) = ClientSession::new("live", "s", false, 4096);
    let (_, cev) = pump(&mut server, &mut client, vec![c0c1], usize::MAX);
    assert!(cev.contains(&ClientEvent::PublishAccepted));
    // The client never sent Window Ack Size, so the server acks every 2.5 MB: send 3 MB.
    let chunk = client.video(0, Bytes::from(vec![0u8; 1_000_000]));
    let mut acks = 0;
    for _ in 0..3 {
        for e in server.handle_input(&chunk).unwrap() {
            if let SessionEvent::Send(b) = e {
                // type 3 (Acknowledgement) on csid 2.
                if b.len() >= 16 && b[0] == 0x02 && b[7] == 3 {
                    acks += 1;
                }
            }
        }
    }
    assert_eq!(acks, 1);
    // Ping request (User Control 6) on csid 2 gets a ping response (event 7).
    let ping = [0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 6, 0, 0, 0, 42];
    let ev = server.handle_input(&ping).unwrap();
    let sent: Vec<u8> = ev
        .iter()
        .filter_map(|e| {
            if let SessionEvent::Send(b) = e {
                Some(b.to_vec())
            } else {
                None
            }
        })
        .flatten()
        .collect();
    assert_eq!(&sent[12..], &[0, 7, 0, 0, 0, 42]);
}

#[test]
fn garbage_after_handshake_is_an_error_not_a_panic() {
    let (mut server, _client) = published();
    // A command whose AMF0 is broken.
    let bad = [0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0x02, 0xFF, 0xFF];
    assert!(server.handle_input(&bad).is_err());
}

#[test]
fn media_sent_right_behind_publish_is_not_lost() {
    // Some encoders do not wait for onStatus: publish, metadata and sequence headers can
    // arrive in one read, before the driver has answered the publish request.
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client, c0c1) = ClientSession::new("live", "eager", false, 4096);
    let mut to_server = vec![c0c1];
    for _ in 0..10 {
        let mut to_client = Vec::new();
        for b in to_server.drain(..) {
            for e in server.handle_input(&b).unwrap() {
                match e {
                    SessionEvent::Send(b) => to_client.push(b),
                    SessionEvent::PublishRequested { .. } => {
                        panic!("publish arrived without media")
                    }
                    _ => {}
                }
            }
        }
        for b in to_client {
            for e in client.handle_input(&b).unwrap() {
                if let ClientEvent::Send(mut bytes) = e {
                    if client.stream_id() != 0 && bytes.len() > 20 {
                        // The publish command: send a sequence header in the same write.
                        let header = client.video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]));
                        let mut joined = bytes.to_vec();
                        joined.extend_from_slice(&header);
                        bytes = Bytes::from(joined);
                        let events = server.handle_input(&bytes).unwrap();
                        let kinds: Vec<_> = events
                            .iter()
                            .filter(|e| !matches!(e, SessionEvent::Send(_)))
                            .map(|e| match e {
                                SessionEvent::PublishRequested { .. } => "publish",
                                SessionEvent::Video { .. } => "video",
                                _ => "other",
                            })
                            .collect();
                        assert_eq!(kinds, vec!["publish", "video"], "{events:?}");
                        return;
                    }
                    to_server.push(bytes);
                }
            }
        }
    }
    panic!("never reached publish");
}

#[test]
fn pings_echo_four_bytes_and_budget_errors_are_classified() {
    let (mut server, _client) = published();
    // A ping request carrying 100 bytes is answered with its 4-byte timestamp only.
    let mut ping = vec![0x02, 0, 0, 0, 0, 0, 102, 4, 0, 0, 0, 0, 0, 6];
    ping.extend((0..100).map(|i| i as u8));
    let sent: usize = server
        .handle_input(&ping)
        .unwrap()
        .iter()
        .map(|e| match e {
            SessionEvent::Send(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(sent, 12 + 6);
    // A declared length over limits.message_bytes is a budget hit, not just a protocol error.
    let e = server
        .handle_input(&[0x05, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0])
        .unwrap_err();
    let hit = e.limit().expect("a budget hit");
    assert_eq!(hit.limit, crate::limit::Limit::MessageBytes);
    // Broken AMF0 is not.
    let (mut server, _client) = published();
    let bad = [0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0x02, 0xFF, 0xFF];
    assert!(server.handle_input(&bad).unwrap_err().limit().is_none());
}

#[test]
fn app_query_joins_the_stream_query() {
    let mut server = ServerSession::new(SessionConfig::default());
    let (mut client, c0c1) = ClientSession::new("live?key=k1", "show?x=1", false, 4096);
    let (sev, _) = pump(&mut server, &mut client, vec![c0c1], usize::MAX);
    assert!(
        sev.iter().any(
            |e| matches!(e, SessionEvent::PublishRequested { app, stream_key, query, .. }
        if app == "live" && stream_key == "show" && query.as_deref() == Some("key=k1&x=1"))
        ),
        "{sev:?}"
    );
}

#[test]
fn connect_answers_enhanced_clients_with_our_capabilities() {
    for enhanced in [false, true] {
        let mut server = ServerSession::new(SessionConfig::default());
        let (client, c0c1) = ClientSession::new("live", "s", false, 4096);
        let mut client = if enhanced {
            client.enhanced(&["hvc1", "av01"])
        } else {
            client
        };
        let (_, cev) = pump(&mut server, &mut client, vec![c0c1], usize::MAX);
        assert!(cev.contains(&ClientEvent::PublishAccepted));
        let props = client.server_properties().expect("connect _result");
        assert_eq!(
            props.get("fmsVer").and_then(|v| v.as_str()),
            Some("FMS/3,0,1,123")
        );
        let list = props.get("fourCcList");
        assert_eq!(list.is_some(), enhanced, "{props:?}");
        if let Some(super::amf0::Amf0Value::StrictArray(list)) = list {
            assert!(list.iter().any(|v| v.as_str() == Some("hvc1")));
            assert!(props.get("videoFourCcInfoMap").is_some());
            assert_eq!(props.get("capsEx").and_then(|v| v.as_f64()), Some(14.0));
        }
    }
}

//! Enhanced RTMP capability negotiation (E-RTMP v2, "Enhancing NetConnection connect
//! Command"): a client that announces `fourCcList`, `videoFourCcInfoMap`,
//! `audioFourCcInfoMap` or `capsEx` in its connect command object gets ours back in the
//! `_result` properties, so it knows which codecs and extensions this server takes.
//! Legacy clients get the legacy reply byte for byte.

use super::amf0::Amf0Value;

/// Video FourCCs packaged by this server.
pub const VIDEO_FOURCCS: [&str; 4] = ["avc1", "hvc1", "av01", "vp09"];
/// Audio FourCCs packaged by this server.
pub const AUDIO_FOURCCS: [&str; 2] = ["mp4a", "Opus"];

/// FourCcInfoMask CanForward: the codec is passed on (repackaged) without re-encoding.
const CAN_FORWARD: f64 = 4.0;
/// CapsExMask bits: Multitrack (video tracks become ladder renditions), ModEx signalling
/// and its nanosecond timestamp offset. Reconnect (1) is not offered.
const CAPS_EX: f64 = (2 | 4 | 8) as f64;

/// Names of the connect properties that mark an Enhanced RTMP client.
const ENHANCED_KEYS: [&str; 4] = [
    "fourCcList",
    "videoFourCcInfoMap",
    "audioFourCcInfoMap",
    "capsEx",
];

/// True if the connect command object announces Enhanced RTMP.
pub fn is_enhanced(connect: &Amf0Value) -> bool {
    ENHANCED_KEYS.iter().any(|k| connect.get(k).is_some())
}

/// The properties to add to the connect `_result` for this client: none for a legacy
/// client, our capabilities for an Enhanced RTMP one.
pub fn reply_properties(connect: &Amf0Value) -> Vec<(String, Amf0Value)> {
    if !is_enhanced(connect) {
        return Vec::new();
    }
    let all = VIDEO_FOURCCS.iter().chain(AUDIO_FOURCCS.iter());
    let map = |list: &[&str]| {
        Amf0Value::Object(
            list.iter()
                .map(|f| (f.to_string(), Amf0Value::Number(CAN_FORWARD)))
                .collect(),
        )
    };
    vec![
        (
            "fourCcList".to_string(),
            Amf0Value::StrictArray(all.map(|f| Amf0Value::String(f.to_string())).collect()),
        ),
        ("videoFourCcInfoMap".to_string(), map(&VIDEO_FOURCCS)),
        ("audioFourCcInfoMap".to_string(), map(&AUDIO_FOURCCS)),
        ("capsEx".to_string(), Amf0Value::Number(CAPS_EX)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_clients_get_nothing_new() {
        let connect = Amf0Value::object([("app", Amf0Value::String("live".into()))]);
        assert!(!is_enhanced(&connect));
        assert!(reply_properties(&connect).is_empty());
    }

    #[test]
    fn enhanced_clients_get_our_codecs() {
        let connect = Amf0Value::object([
            ("app", Amf0Value::String("live".into())),
            (
                "fourCcList",
                Amf0Value::StrictArray(vec![Amf0Value::String("hvc1".into())]),
            ),
        ]);
        let props = Amf0Value::Object(reply_properties(&connect));
        let Some(Amf0Value::StrictArray(list)) = props.get("fourCcList") else {
            panic!("no fourCcList: {props:?}");
        };
        let names: Vec<_> = list.iter().filter_map(Amf0Value::as_str).collect();
        assert_eq!(names, ["avc1", "hvc1", "av01", "vp09", "mp4a", "Opus"]);
        let video = props.get("videoFourCcInfoMap").unwrap();
        assert_eq!(video.get("av01").and_then(Amf0Value::as_f64), Some(4.0));
        assert_eq!(video.get("vp08"), None);
        let audio = props.get("audioFourCcInfoMap").unwrap();
        assert_eq!(audio.get("Opus").and_then(Amf0Value::as_f64), Some(4.0));
        assert_eq!(props.get("capsEx").and_then(Amf0Value::as_f64), Some(14.0));
        // capsEx alone is enough to be treated as Enhanced RTMP.
        let connect = Amf0Value::object([("capsEx", Amf0Value::Number(2.0))]);
        assert_eq!(reply_properties(&connect).len(), 4);
    }
}

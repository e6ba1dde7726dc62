//! Issue 3 end to end: MPEG-TS HLS and live DASH from the same cut as CMAF HLS, read back
//! with mpeg2ts, ffmpeg, hls.js and dash.js.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::http::get;
use common::{poll, publish, sample, start, test_config, tools};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

fn lines_with(text: &str, suffix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.ends_with(suffix))
        .map(str::to_string)
        .collect()
}

fn attr<'a>(text: &'a str, tag_start: &str, name: &str) -> &'a str {
    let tag = &text[text
        .find(tag_start)
        .unwrap_or_else(|| panic!("no {tag_start} in\n{text}"))..];
    let key = format!(" {name}=\"");
    let v = &tag[tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag_start}"))
        + key.len()..];
    &v[..v.find('"').unwrap()]
}

fn ffmpeg_decodes(url: &str) {
    let out = Command::new(tools::ffmpeg())
        .args(["-v", "error", "-nostdin", "-i", url, "-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg errors decoding {url}:\n{errors}"
    );
}

/// A segment's first access unit: AUD, then SPS and PPS before the IDR.
fn check_first_access_unit(uri: &str, d: &[u8]) {
    assert_eq!(
        &d[..5],
        &[0, 0, 0, 1, 0x09],
        "{uri}: video PES does not start with an AUD"
    );
    let types: Vec<u8> = d
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3] & 0x1f)
        .collect();
    let idx = |t: u8| types.iter().position(|x| *x == t);
    let (sps, pps, idr) = (idx(7), idx(8), idx(5));
    assert!(
        sps.is_some() && pps.is_some() && idr.is_some(),
        "{uri}: NAL types {types:?}"
    );
    assert!(
        sps < idr && pps < idr,
        "{uri}: SPS/PPS after the IDR: {types:?}"
    );
}

/// Every TS rule the issue lists, over the concatenation of the playlist's segments.
fn check_ts(http: SocketAddr, base: &str, segments: &[String]) {
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr = 0u64;
    let mut pids = std::collections::BTreeSet::new();
    let mut pes_count = 0;
    for uri in segments {
        let body = get(http, &format!("{base}/{uri}")).unwrap().body;
        assert_eq!(body.len() % 188, 0, "{uri}: not whole 188-byte packets");
        let mut reader = TsPacketReader::new(&body[..]);
        let mut first_video_pes = true;
        let mut first_pes: Option<Vec<u8>> = None;
        let mut checked_first = false;
        let mut saw_pat = false;
        while let Some(pkt) = reader
            .read_ts_packet()
            .unwrap_or_else(|e| panic!("{uri}: {e}"))
        {
            let pid = pkt.header.pid.as_u16();
            pids.insert(pid);
            let counter = pkt.header.continuity_counter.as_u8();
            if pkt.payload.is_some() {
                if let Some(prev) = cc.insert(pid, counter) {
                    assert_eq!(
                        counter,
                        (prev + 1) % 16,
                        "{uri}: continuity gap on PID {pid:#x}"
                    );
                }
            }
            if let Some(pcr) = pkt.adaptation_field.as_ref().and_then(|a| a.pcr) {
                assert_eq!(pid, 0x100, "PCR on the video PID");
                assert!(pcr.as_u64() >= last_pcr, "{uri}: PCR went backwards");
                last_pcr = pcr.as_u64();
            }
            match pkt.payload {
                Some(TsPayload::Pat(_)) => saw_pat = true,
                Some(TsPayload::PesStart(pes)) => {
                    pes_count += 1;
                    let pts = pes.header.pts.expect("PES has a PTS").as_u64();
                    if let Some(dts) = pes.header.dts {
                        assert!(pts >= dts.as_u64(), "{uri}: PTS < DTS");
                        // PCR must not be ahead of the DTS it clocks.
                        assert!(last_pcr / 300 <= dts.as_u64(), "{uri}: PCR ahead of DTS");
                    }
                    if pid == 0x100 && first_video_pes {
                        first_video_pes = false;
                        assert!(saw_pat, "{uri}: PAT must come first");
                        let ra = pkt
                            .adaptation_field
                            .as_ref()
                            .is_some_and(|a| a.random_access_indicator);
                        assert!(ra, "{uri}: first video packet is not a random access point");
                        first_pes = Some(pes.data.to_vec());
                    } else if pid == 0x100 && first_pes.is_some() && !checked_first {
                        checked_first = true;
                        check_first_access_unit(uri, first_pes.as_deref().unwrap_or_default());
                    }
                    if pid == 0x101 {
                        assert_eq!(&pes.data[..2], &[0xFF, 0xF1], "{uri}: audio is not ADTS");
                    }
                }
                Some(TsPayload::Raw(data)) | Some(TsPayload::PesContinuation(data))
                    if pid == 0x100 && !checked_first =>
                {
                    if let Some(buf) = first_pes.as_mut() {
                        buf.extend_from_slice(&data);
                    }
                }
                _ => {}
            }
        }
        assert!(!first_video_pes, "{uri}: no video");
        assert!(checked_first, "{uri}: only one video PES");
    }
    assert!(
        pids.contains(&0)
            && pids.contains(&0x1000)
            && pids.contains(&0x100)
            && pids.contains(&0x101),
        "{pids:?}"
    );
    assert!(pes_count > 100);
}

#[test]
fn ts_and_dash_read_back_and_share_cmaf_bytes() {
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let mut ffmpeg = publish(
        server.rtmp_addr,
        "live",
        "three",
        &sample("h264_aac_640x360.flv"),
        0,
    );
    poll(Duration::from_secs(20), || {
        get(http, "/live/three/index.mpd")
            .ok()
            .filter(|r| r.status == 200)
    })
    .expect("MPD");

    // Live MPD: dynamic, with the timing attributes players need.
    let mpd = get(http, "/live/three/index.mpd").unwrap();
    assert_eq!(mpd.header("content-type"), Some("application/dash+xml"));
    let live = mpd.text();
    for a in [
        "type=\"dynamic\"",
        "availabilityStartTime=",
        "publishTime=",
        "minimumUpdatePeriod=",
        "timeShiftBufferDepth=",
        "suggestedPresentationDelay=",
        "minBufferTime=",
        "<UTCTiming",
        "<SegmentTimeline>",
        "audioSamplingRate=\"44100\"",
    ] {
        assert!(live.contains(a), "live MPD lacks {a}:\n{live}");
    }
    assert_eq!(
        attr(&live, "<Representation id=\"audio\"", "codecs"),
        "mp4a.40.2"
    );
    let audio_template = &live[live.find("<Representation id=\"audio\"").unwrap()..];
    assert_eq!(
        attr(audio_template, "<SegmentTemplate", "timescale"),
        "44100",
        "audio timescale = sample rate"
    );
    let time = get(http, "/time").unwrap().text();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");

    // Produced once per segment number, however many feeds carry it and however many
    // viewers ask: note the first number now (the window cannot have slid yet), serve
    // viewers of all three outputs while the publish runs, then compare the rendition's
    // count of cuts with the numbers it used.
    let media_sequence = |text: &str| -> u64 {
        let tag = "#EXT-X-MEDIA-SEQUENCE:";
        let at = text
            .find(tag)
            .unwrap_or_else(|| panic!("no {tag} in\n{text}"))
            + tag.len();
        text[at..].lines().next().unwrap().parse().unwrap()
    };
    let first = media_sequence(&get(http, "/live/three/src/video.m3u8").unwrap().text());
    for _ in 0..40 {
        for path in [
            "/live/three/ts.m3u8",
            "/live/three/index.m3u8",
            "/live/three/index.mpd",
            "/live/three/src/ts.m3u8",
            "/live/three/src/video.m3u8",
        ] {
            assert_eq!(get(http, path).unwrap().status, 200, "{path}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(
        ffmpeg.wait_for(Duration::from_secs(40)),
        Some(true),
        "ffmpeg publish failed"
    );
    poll(Duration::from_secs(5), || {
        get(http, "/live/three/src/ts.m3u8")
            .ok()
            .filter(|r| r.text().contains("ENDLIST"))
    })
    .expect("TS playlist ends");

    // The same cut: TS, CMAF video and CMAF audio list the same sequence numbers.
    let ts_pl = get(http, "/live/three/src/ts.m3u8").unwrap().text();
    let v_pl = get(http, "/live/three/src/video.m3u8").unwrap().text();
    let ts_segs = lines_with(&ts_pl, ".ts");
    let v_segs = lines_with(&v_pl, ".m4s");
    assert!(ts_segs.len() >= 5);
    let num = |s: &str| {
        s.rsplit('/')
            .next()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        ts_segs.iter().map(|s| num(s)).collect::<Vec<_>>(),
        v_segs.iter().map(|s| num(s)).collect::<Vec<_>>()
    );
    let last: u64 = num(v_segs.last().unwrap()).parse().unwrap();
    let api: serde_json::Value =
        serde_json::from_slice(&get(http, "/api/streams/live/three").unwrap().body).unwrap();
    assert_eq!(
        api["renditions"][0]["segments_produced"].as_u64(),
        Some(last - first + 1),
        "segments {first}..={last} were cut, each once"
    );
    let ts_master = get(http, "/live/three/ts.m3u8").unwrap().text();
    assert!(
        ts_master.contains("CODECS=\"avc1.64001e,mp4a.40.2\"") && ts_master.contains("src/ts.m3u8"),
        "{ts_master}"
    );
    let seg = get(http, &format!("/live/three/src/{}", ts_segs[0])).unwrap();
    assert_eq!(seg.header("content-type"), Some("video/mp2t"));
    check_ts(http, "/live/three/src", &ts_segs);

    // After unpublish the MPD is static; its template points at THE SAME objects as HLS.
    let ended = get(http, "/live/three/index.mpd").unwrap().text();
    assert!(
        ended.contains("type=\"static\"") && ended.contains("mediaPresentationDuration"),
        "{ended}"
    );
    let media = attr(&ended, "<SegmentTemplate", "media");
    let init = attr(&ended, "<SegmentTemplate", "initialization");
    let start: u64 = attr(&ended, "<SegmentTemplate", "startNumber")
        .parse()
        .unwrap();
    assert_eq!(media, "src/video/$Number$.m4s");
    let via_dash = get(
        http,
        &format!(
            "/live/three/{}",
            media.replace("$Number$", &(start + 1).to_string())
        ),
    )
    .unwrap();
    let hls_uri = v_segs
        .iter()
        .find(|s| num(s) == (start + 1).to_string())
        .expect("segment in HLS playlist");
    let via_hls = get(http, &format!("/live/three/src/{hls_uri}")).unwrap();
    assert_eq!(via_dash.status, 200);
    assert!(
        via_dash.body == via_hls.body && !via_hls.body.is_empty(),
        "HLS and DASH serve different bytes"
    );
    let map = &v_pl[v_pl.find("#EXT-X-MAP:URI=\"").expect("EXT-X-MAP") + 16..];
    let init_hls = &map[..map.find('"').unwrap()];
    assert_eq!(
        get(http, &format!("/live/three/{init}")).unwrap().body,
        get(http, &format!("/live/three/src/{init_hls}"))
            .unwrap()
            .body
    );

    ffmpeg_decodes(&format!("http://{http}/live/three/ts.m3u8"));
    ffmpeg_decodes(&format!("http://{http}/live/three/index.mpd"));
}

#[test]
fn outputs_can_be_switched_off() {
    let mut config = test_config();
    config.outputs.hls_ts = false;
    config.outputs.dash = false;
    let (_rt, server) = start(config);
    let http = server.http_addr;
    let _ffmpeg = common::publish_and_wait(
        &server,
        "cmafonly",
        "h264_aac_640x360.flv",
        -1,
        "/live/cmafonly/index.m3u8",
    );
    for path in [
        "/live/cmafonly/ts.m3u8",
        "/live/cmafonly/index.mpd",
        "/live/cmafonly/src/ts.m3u8",
    ] {
        let r = get(http, path).unwrap();
        assert_eq!(r.status, 404, "{path}");
    }
    assert!(get(http, "/live/cmafonly/ts.m3u8")
        .unwrap()
        .text()
        .contains("disabled"));
    let rendition = server
        .hub()
        .ladder("live", "cmafonly")
        .and_then(|l| l.rendition("src"))
        .expect("rendition");
    assert!(
        rendition.read().ts.is_none(),
        "TS segments were made although hls_ts = false"
    );
}

#[test]
fn hls_js_plays_ts_and_dash_js_plays_the_mpd() {
    tools::browser_dir();
    let (_rt, server) = start(test_config());
    let http = server.http_addr;
    let _ffmpeg = common::publish_and_wait(
        &server,
        "players",
        "h264_aac_640x360.flv",
        -1,
        "/live/players/ts.m3u8",
    );
    let r = common::browser::play(
        &format!("http://{http}/live/players/ts.m3u8"),
        "hls",
        10,
        &[],
    );
    common::browser::assert_played(&r, 640, 360);
    let r = common::browser::play(
        &format!("http://{http}/live/players/index.mpd"),
        "dash",
        10,
        &[],
    );
    common::browser::assert_played(&r, 640, 360);
}

#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ from the samples and a captured publish.

Usage: python3 fuzz/tools/make_seeds.py CAPTURE
CAPTURE holds the client-to-server bytes of a real `ffmpeg -re -i samples/ladder_240p.flv
-c copy -f flv rtmp://...` publish (recorded by a TCP proxy in front of packgate).
"""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
HS = 1 + 2 * 1536


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def flv_tags(path):
    data = open(path, "rb").read()
    pos = struct.unpack(">I", data[5:9])[0] + 4
    while pos + 11 <= len(data):
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        yield kind, ts, data[pos:pos + 11 + size + 4], data[pos + 11:pos + 11 + size]
        pos += 11 + size + 4


def chunk_messages(stream):
    """A minimal chunk-stream reader (enough for one ffmpeg publish)."""
    pos, size, state, out = 0, 128, {}, []
    while pos < len(stream):
        b = stream[pos]
        fmt, csid = b >> 6, b & 0x3F
        pos += 1
        if csid == 0:
            csid = 64 + stream[pos]
            pos += 1
        elif csid == 1:
            csid = 64 + stream[pos] + 256 * stream[pos + 1]
            pos += 2
        st = state.setdefault(csid, {"len": 0, "type": 0, "partial": b""})
        hl = [11, 7, 3, 0][fmt]
        h = stream[pos:pos + hl]
        pos += hl
        if fmt <= 1:
            st["len"] = int.from_bytes(h[3:6], "big")
            st["type"] = h[6]
        if fmt < 3 and int.from_bytes(h[0:3], "big") == 0xFFFFFF:
            pos += 4
        take = min(st["len"] - len(st["partial"]), size)
        if pos + take > len(stream):
            break
        st["partial"] += stream[pos:pos + take]
        pos += take
        if len(st["partial"]) == st["len"]:
            msg = (st["type"], st["partial"])
            st["partial"] = b""
            out.append(msg)
            if msg[0] == 1:
                size = int.from_bytes(msg[1][:4], "big")
    return out


def main():
    capture = open(sys.argv[1], "rb").read()
    chunks = capture[HS:]
    # Start of the chunk stream: connect .. publish, metadata, sequence headers, first frames.
    head = chunks[:4096]

    put("handshake", "ffmpeg_c0c1c2", b"\x00" + capture[:HS] + chunks[:64])
    put("handshake", "ffmpeg_c0c1c2_reads_of_200", b"\xc8" + capture[:HS])
    put("handshake", "simple_c0c1", b"\x00\x03" + bytes(1536))
    put("handshake", "bad_version", b"\x00\x06" + bytes(16))

    put("chunk", "ffmpeg_publish_start", b"\x00" + head)
    put("chunk", "ffmpeg_publish_start_reads_of_7", b"\x07" + head[:2048])
    put("chunk", "ffmpeg_mid_stream", b"\x40" + chunks[20000:22048])

    put("session", "ffmpeg_raw_with_handshake", b"\x00" + capture[:HS] + chunks[:3000])
    put("session", "ffmpeg_after_handshake", b"\x01" + head)
    put("session", "ffmpeg_after_handshake_reads_of_13", b"\x03" + head[:3000])

    n = 0
    for kind, payload in chunk_messages(chunks[:60000]):
        if kind in (18, 20) and n < 8:
            put("amf0", "ffmpeg_type%d_%d" % (kind, n), payload[:1024])
            n += 1
    # A strict array, an ECMA array, a date and a long string, by hand.
    put("amf0", "strict_array", b"\x0a\x00\x00\x00\x02\x00\x3f\xf0" + bytes(6) + b"\x05")
    put("amf0", "ecma_array", b"\x08\x00\x00\x00\x01\x00\x05width\x00\x40\x94" + bytes(6) + b"\x00\x00\x09")
    put("amf0", "date_long_string", b"\x0b" + bytes(10) + b"\x0c\x00\x00\x00\x03abc")

    sample = os.path.join(ROOT, "samples", "ladder_240p.flv")
    tags = list(flv_tags(sample))
    video = [t for t in tags if t[0] == 9]
    audio = [t for t in tags if t[0] == 8]
    put("flv_tag", "avc_sequence_header", b"\x00" + video[0][3])
    put("flv_tag", "aac_sequence_header", b"\x00" + audio[0][3])
    put("flv_tag", "aac_frame", b"\x00" + audio[1][3])
    small = min((t for t in video[1:] if len(t[3]) < 1500), key=lambda t: len(t[3]))
    put("flv_tag", "avc_small_frame", b"\x00" + small[3])
    # Enhanced RTMP: hvc1 sequence start, ModEx + coded frames, multitrack, command, audio.
    put("flv_tag", "ex_hvc1_start", b"\x00\x90hvc1\x01\x02\x03")
    put("flv_tag", "ex_modex_frames", b"\x00\x97\x02\x00\x00\x10\x01av01\x00")
    put("flv_tag", "ex_multitrack", b"\x00\x96\x21av01\x00\x00\x00\x00")
    put("flv_tag", "ex_command", b"\x00\xd0\x01")
    put("flv_tag", "ex_audio_opus", b"\x00\x90Opus\x01")
    stream = b"".join(t[2] for t in tags[:40] if len(t[2]) < 400 or t is video[0])
    put("flv_tag", "tag_sequence", b"\x01" + stream[:4000])
    put("flv_tag", "file_head", b"\x02" + open(sample, "rb").read()[:2000])

    # The SPS and the whole record of each rung; an SPS alone is wrapped by the target.
    for name in ("ladder_240p", "ladder_360p", "h264_aac_1280x720"):
        t = next(flv_tags(os.path.join(ROOT, "samples", name + ".flv")))
        ftags = [x for x in flv_tags(os.path.join(ROOT, "samples", name + ".flv"))]
        vh = next(x for x in ftags if x[0] == 9)[3]
        ah = next(x for x in ftags if x[0] == 8)[3]
        record = vh[5:]
        sps_len = int.from_bytes(record[6:8], "big")
        put("sps", name + "_avcc", record)
        put("sps", name + "_sps", record[8:8 + sps_len])
        put("asc", name + "_asc", ah[2:])
    put("asc", "he_aac_sbr", bytes([0x2B, 0x92, 0x08, 0x00]))
    put("asc", "he_aac_v2_ps", bytes([0xEB, 0x09, 0x88, 0x00]))
    put("asc", "lc_pce", bytes([0x11, 0x80, 0x04, 0xC8, 0x44, 0x00, 0x20, 0x00, 0x00]))
    put("asc", "explicit_rate", bytes([0x17, 0x80, 0x01, 0x5B, 0x88, 0x10]))

    heads = {
        "get_playlist": b"GET /live/show/index.m3u8 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: hls.js\r\nAccept: */*\r\n\r\n",
        "get_ll_pipelined": b"GET /live/show/720p.m3u8?_HLS_msn=12&_HLS_part=3 HTTP/1.1\r\nHost: h\r\n\r\nGET /live/show/seg12.m4s HTTP/1.1\r\nHost: h\r\n\r\n",
        "http10_close": b"GET /metrics HTTP/1.0\r\nConnection: close\r\n\r\n",
        "head_keepalive": b"HEAD /live/show/init.mp4 HTTP/1.1\r\nConnection: keep-alive\r\nRange: bytes=0-99\r\n\r\n",
        "options_cors": b"OPTIONS /live/show/index.mpd HTTP/1.1\r\nOrigin: http://x\r\nAccess-Control-Request-Method: GET\r\n\r\n",
        "post_body": b"POST /api/streams HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "partial": b"GET /live/show/index.m3u8 HTTP/1.1\r\nHost: h\r\n",
    }
    for name, h in heads.items():
        put("http_head", name, b"\x80" + h)

    queries = {
        "msn_part": b"_HLS_msn=12&_HLS_part=3",
        "msn_skip": b"_HLS_msn=7&_HLS_skip=YES",
        "skip_v2": b"_HLS_skip=v2",
        "cache_buster": b"_HLS_msn=4&_=1700000000000&token=abc",
        "part_only": b"_HLS_part=1",
        "bad_msn": b"_HLS_msn=-1",
        "huge": b"_HLS_msn=18446744073709551615&_HLS_part=4294967295",
    }
    for name, q in queries.items():
        put("hls_query", name, q)


main()

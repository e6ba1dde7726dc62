#!/usr/bin/env bash
# RSS of packgate with a DVR window versus the same stream without one, and how fast a
# segment comes back from the DVR disk tier (issue 14's figures; a benchmark, not a test).
#
#   bash benches/dvr_rss.sh [WINDOW_SECS=7200] [MODE=burst|realtime|fast[:SPEED]]
#
# fast:SPEED publishes with packgate-load --retime at SPEED times real time (default 12: a
# 2 h window in about 10 minutes), paced frame by frame like an encoder; PACKGATE_BIN picks
# the server binary (packgate-load is taken from beside it).
# A 2.5 Mbit/s CBR 720p H.264 + AAC clip is published, looped with -c copy, as fast as the
# servers take it (ffmpeg's -readrate 1 with an initial burst of all of it; -readrate N > 1
# does not speed ffmpeg 9 up here) to two servers at once: one with dvr_window = WINDOW,
# one without.
# When the window is full (WINDOW s of media + 60 s), RSS of both is printed, then the time
# of 50 requests for spilled segments (curl's time_total). Needs cargo build --release and
# ffmpeg 9 (pip install imageio-ffmpeg).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
window=${1:-7200}
mode=${2:-burst}
ff=${PACKGATE_FFMPEG:-$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())')}
bin=${PACKGATE_BIN:-$root/target/release/packgate}
work=$(mktemp -d "${TMPDIR:-/tmp}/packgate-dvr-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

clip=${TMPDIR:-/tmp}/packgate_dvr_clip_2500k.flv
if [ ! -f "$clip" ]; then
  "$ff" -hide_banner -v error -nostdin -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset ultrafast \
    -b:v 2400k -minrate 2400k -maxrate 2400k -bufsize 2400k -x264-params nal-hrd=cbr \
    -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 96k -f flv "$clip.tmp"
  mv "$clip.tmp" "$clip"
fi

# serve NAME EXTRA_TOML: starts a server; sets rtmp_NAME, http_NAME, pid_NAME.
serve() {
  local name=$1 extra=$2
  printf '[rtmp]\nlisten = "127.0.0.1:0"\n[http]\nlisten = "127.0.0.1:0"\n%b' "$extra" > "$work/$name.toml"
  RUST_LOG=info "$bin" --config "$work/$name.toml" 2> "$work/$name.log" &
  pids+=($!); eval "pid_$name=$!"
  for _ in $(seq 100); do grep -q http_addr= "$work/$name.log" && break; sleep 0.1; done
  eval "rtmp_$name=$(grep -o 'rtmp_addr=[^ ]*' "$work/$name.log" | cut -d= -f2)"
  eval "http_$name=$(grep -o 'http_addr=[^ ]*' "$work/$name.log" | cut -d= -f2)"
}
serve plain ""
serve dvr "[record]\ndvr_dir = \"$work/dvr\"\n[record.apps.live]\ndvr_window = \"${window}s\"\n"

media=$((window + 60))
if [ "$mode" = realtime ]; then rate=(-re); else rate=(-readrate 1 -readrate_initial_burst "$media"); fi
for name in plain dvr; do
  eval "addr=\$rtmp_$name"
  case $mode in
    fast*)
      # packgate-load --retime: paced like an encoder, SPEED media seconds per second.
      speed=${mode#fast}; speed=${speed#:}
      "$(dirname "$bin")/packgate-load" --rtmp "$addr" --prefix show --duration "$media" \
        --speed "${speed:-12}" --retime "$clip" &
      ;;
    *)
      "$ff" -hide_banner -v error -nostdin "${rate[@]}" -stream_loop -1 -i "$clip" -t "$media" \
        -c copy -f flv "rtmp://$addr/live/show" &
      ;;
  esac
  pids+=($!)
done
rss() { ps -o rss= -p "$1" | tr -d ' '; }
echo "window ${window}s, publishing ${media}s of media"
while kill -0 "${pids[2]}" 2>/dev/null || kill -0 "${pids[3]}" 2>/dev/null; do
  sleep 10
  echo "  RSS plain $(rss "$pid_plain") KiB, dvr $(rss "$pid_dvr") KiB, listed $(curl -s "http://$http_dvr/live/show/src/video.m3u8" | grep -c EXTINF || true) segments, disk $(du -sm "$work/dvr" | cut -f1) MiB"
done
sleep 2
plain=$(rss "$pid_plain"); dvr=$(rss "$pid_dvr")
echo "RSS at the end: plain ${plain} KiB, dvr ${dvr} KiB, difference $(((dvr - plain) / 1024)) MiB"
listed=$(curl -s "http://$http_dvr/live/show/src/video.m3u8")
echo "DVR playlist: $(grep -c EXTINF <<< "$listed") segments, $(wc -c <<< "$listed") bytes; disk tier $(du -sm "$work/dvr" | cut -f1) MiB"
curl -s "http://$http_dvr/metrics" | grep -E '^packgate_dvr_' || true
echo "50 spilled segment reads (s): "
grep -E '^video/[0-9]+\.m4s$' <<< "$listed" | head -n 2000 | shuf -n 50 --random-source=<(yes) | while read -r seg; do
  curl -s -o /dev/null -w '%{time_total}\n' "http://$http_dvr/live/show/src/$seg"
done | sort -n | awk '{a[NR]=$1} END {printf "  min %s median %s p95 %s max %s\n", a[1], a[int(NR/2)+1], a[int(NR*0.95)], a[NR]}'

#!/usr/bin/env bash
# Live-edge latency as the players report it: hls.js (`hls.latency`, lowLatencyMode) and
# dash.js (`getCurrentLiveLatency()`, low-latency settings), median and p95 over a window,
# for each part target. Not a test: the numbers go to README's performance section.
# Usage: bash benches/latency.sh [seconds=60] [part targets="0.2 0.333 0.5"]
# Needs: cargo build --release, ffmpeg 9 (pip install imageio-ffmpeg), Chromium and
# tests/browser/node_modules (bash tests/run.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=${2:-0.2 0.333 0.5}
ff=$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())')
# A continuous source long enough for both players (a looped file jumps its timestamps at each
# loop point, which is the encoder's artefact and not what this measures).
sample=${LATENCY_SAMPLE:-${TMPDIR:-/tmp}/packgate_latency_$((2 * secs + 40))s.flv}
if [ ! -f "$sample" ]; then
  "$ff" -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t $((2 * secs + 40)) -c:v libx264 -preset superfast -bf 2 -b:v 800k -g 60 -keyint_min 60 -sc_threshold 0 \
    -c:a aac -b:a 96k -f flv "$sample"
fi
for pt in $targets; do
  cfg=$(mktemp)
  rtmp_port=$((20000 + RANDOM % 10000)); http_port=$((rtmp_port + 1))
  printf '[rtmp]\nlisten = "127.0.0.1:%s"\n[http]\nlisten = "127.0.0.1:%s"\n[low_latency]\npart_target = %s\n' \
    "$rtmp_port" "$http_port" "$pt" > "$cfg"
  ./target/release/packgate --config "$cfg" > /dev/null 2>&1 &
  pid=$!
  "$ff" -v error -re -i "$sample" -c copy -f flv "rtmp://127.0.0.1:$rtmp_port/live/lat" > /dev/null 2>&1 &
  ffpid=$!
  trap 'kill $ffpid $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$http_port/live/lat/index.m3u8" > /dev/null && break
    sleep 0.2
  done
  for player in ${PLAYERS:-hls dash}; do
    ext=m3u8; [ "$player" = dash ] && ext=mpd
    json=$(node tests/browser/play.mjs --url "http://127.0.0.1:$http_port/live/lat/index.$ext" \
      --seconds "$secs" --player "$player" --low-latency | tail -1)
    python3 -c "
import json, sys
r = json.loads(sys.argv[1])
print(f'part target {sys.argv[2]} s, {sys.argv[3]:4}: latency median {r[\"latencyMedian\"]:.3f} s, p95 {r[\"latencyP95\"]:.3f} s over {r[\"latencySamples\"]} samples, stalls {r[\"stalls\"]}, advanced {r[\"advanced\"]:.1f} s / {r[\"window\"]} s')
" "$json" "$pt" "$player"
  done
  kill $ffpid $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  rm -f "$cfg"
done

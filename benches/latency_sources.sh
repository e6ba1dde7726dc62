#!/usr/bin/env bash
# Live latency per source and per player (issue 9 item 7): each source of
# tests/common/sources.tsv published to a fresh packgate, each player playing it in turn for
# SECONDS in headless Chromium; one markdown row per source and player (median / p95 of the
# latency the player reports every 500 ms, stalls = `waiting` events after playback began).
# PHB=2 in the environment serves PART-HOLD-BACK = 2 x part target (default: the server's).
# Not a test: the numbers go to README's latency section.
# Usage: bash benches/latency_sources.sh [seconds=60] [sources=all] [players="hls hls-rec dash"] [part targets=0.2]
#   players: hls (hls.js defaults), hls-rec (README settings), hls-phb2 (2 x part target), dash
set -uo pipefail
. "$(dirname "$0")/latency_common.sh"
secs=${1:-60}
sources=${2:-all}; [ "$sources" = all ] && sources=$(source_names)
players=${3:-hls hls-rec dash}
targets=${4:-0.2}
trap stop_all EXIT
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$root" log --oneline -1)"
table_head
for pt in $targets; do
  for src in $sources; do
    for player in $players; do
      # A fresh server and publish per run, so every player starts on the same footing.
      start_server "$(ll_toml "$pt")"
      publish_source "$src" $((secs + 40)) "rtmp://127.0.0.1:$rtmp_port/live/${src//./_}"
      wait_ready "/live/${src//./_}/index.m3u8" && play_row "$src" "$player" "$secs" "$pt"
      stop_all
    done
  done
done

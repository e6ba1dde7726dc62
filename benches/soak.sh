#!/usr/bin/env bash
# Soak (issue 9 "Done when"): every source of tests/common/sources.tsv, and the jumpback and
# wrap31 timestamp cases (see latency_common.sh), published for MINUTES
# each and played the whole time by each player; one markdown row per source and player with
# stalls and latency. Not a test (long); run on a quiet machine.
# Usage: bash benches/soak.sh [minutes=10] [sources=all] [players="hls"] [part target=0.2]
#   players as in benches/latency_sources.sh (hls = hls.js defaults, hls-rec, hls-phb2, dash)
# PHB=2 in the environment serves PART-HOLD-BACK = 2 x part target (default: the server's).
# Sources are continuous files of MINUTES + 1 min (cached in $TMPDIR/packgate_sources; about
# 170 MB each at 10 min), except loop15s (looped) and gstreamer (live).
set -uo pipefail
. "$(dirname "$0")/latency_common.sh"
mins=${1:-10}
sources=${2:-all}; [ "$sources" = all ] && sources=$(source_names)
players=${3:-hls}
pt=${4:-0.2}
secs=$((mins * 60))
trap stop_all EXIT
echo "# soak $(date -u +%FT%TZ) ${mins} min per source, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$root" log --oneline -1)"
table_head
for src in $sources; do
  for player in $players; do
    start_server "$(ll_toml "$pt")"
    publish_source "$src" $((secs + 60)) "rtmp://127.0.0.1:$rtmp_port/live/${src//./_}"
    wait_ready "/live/${src//./_}/index.m3u8" && play_row "$src" "$player" "$secs" "$pt"
    stop_all
  done
done

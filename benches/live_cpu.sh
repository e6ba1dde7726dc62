#!/usr/bin/env bash
# Whole-process CPU of packgate for one real-time RTMP publish (sockets, runtime, HTTP
# idle), read from /proc/<pid>/stat. Usage: bash benches/live_cpu.sh [seconds] [outputs]
#   outputs: all (default) | cmaf  — CMAF HLS + TS HLS + DASH, or CMAF HLS only.
# Needs a release build (cargo build --release) and ffmpeg 9 (pip install imageio-ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
outputs=${2:-all}
ff=$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())')
src=${TMPDIR:-/tmp}/packgate_bench_2500k.flv
if [ ! -f "$src" ]; then
  "$ff" -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset veryfast -b:v 2370k -maxrate 2500k -bufsize 2500k -g 60 -keyint_min 60 \
    -sc_threshold 0 -c:a aac -b:a 128k -ac 2 -f flv "$src"
fi
cfg=$(mktemp)
rtmp_port=$((20000 + RANDOM % 10000)); http_port=$((rtmp_port + 1))
printf '[rtmp]\nlisten = "127.0.0.1:%s"\n[http]\nlisten = "127.0.0.1:%s"\n' "$rtmp_port" "$http_port" > "$cfg"
[ "$outputs" = cmaf ] && printf '[outputs]\nhls_ts = false\ndash = false\n' >> "$cfg"
./target/release/packgate --config "$cfg" > /dev/null 2>&1 &
pid=$!
"$ff" -v error -re -stream_loop -1 -i "$src" -c copy -f flv "rtmp://127.0.0.1:$rtmp_port/live/bench" > /dev/null 2>&1 &
ffpid=$!
trap 'kill $ffpid $pid 2>/dev/null; rm -f "$cfg"' EXIT
sleep 6
msgs() { curl -s "127.0.0.1:$http_port/metrics" | awk '/media_messages_total/ {s += $2} END {print s + 0}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); m0=$(msgs); t0=$(date +%s.%N)
sleep "$secs"
c1=$(cpu); m1=$(msgs); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
python3 -c "
hz=$(getconf CLK_TCK); c=($c1-$c0)/hz; t=$t1-$t0; n=$m1-$m0
print(f'outputs=$outputs: {100*c/t:.2f}% of one core over {t:.0f} s, {n} RTMP media messages, {c*1e6/max(n,1):.1f} us CPU per message, RSS {$rss/1024:.1f} MiB')"

# Shared by benches/latency_sources.sh and benches/soak.sh (source it): issue 9's sources from
# tests/common/sources.tsv, a packgate server on free ports, and one player run.
# Needs: cargo build --release, ffmpeg 9 (pip install imageio-ffmpeg), Chromium, node and
# tests/browser/node_modules; gst-launch-1.0 with rtmp2sink for the "gstreamer" source.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
table="$root/tests/common/sources.tsv"
ff=${PACKGATE_FFMPEG:-$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())')}
cache=${TMPDIR:-/tmp}/packgate_sources
mkdir -p "$cache"

# All source names, in table order, then the two timestamp cases ffmpeg cannot send, which
# packgate-load --retime publishes from the clip: "jumpback" (the clock steps back a minute
# every two minutes) and "wrap31" (starts 60 s before 2^31 ms, about 24.86 days, and wraps
# to 0 there as ffmpeg's and OBS's FLV muxers do).
source_names() { grep -v '^#' "$table" | cut -f1 | tr '\n' ' '; echo jumpback wrap31; }

# source_field NAME COLUMN(1-5)
source_field() { grep -v '^#' "$table" | awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }'; }

# make_source NAME SECS: prints the path of the source's FLV (made once, cached).
make_source() {
  local name=$1 secs=$2 loop video rate enc path
  loop=$(source_field "$name" 2); video=$(source_field "$name" 3)
  rate=$(source_field "$name" 4); enc=$(source_field "$name" 5)
  [ "$loop" != "-" ] && secs=$loop
  path="$cache/${name}_${secs}s.flv"
  if [ ! -f "$path" ]; then
    # shellcheck disable=SC2086
    "$ff" -hide_banner -v error -nostdin -y -f lavfi -i "testsrc2=$video" \
      -f lavfi -i "sine=frequency=440:sample_rate=$rate" -t "$secs" $enc -f flv "$path.tmp" >&2
    mv "$path.tmp" "$path"
  fi
  echo "$path"
}

# publish_source NAME SECS URL: starts the publisher in the background; sets $pub_pid.
publish_source() {
  local name=$1 secs=$2 url=$3 loops=0 file
  if [ "$name" = jumpback ] || [ "$name" = wrap31 ]; then
    file=$(make_source clip "$secs")
    local stamps=(--jump-back 60/120)
    [ "$name" = wrap31 ] && stamps=(--start-ms $(((1 << 31) - 60000)) --wrap-bits 31)
    local app=${url%/*} rtmp=${url#rtmp://}
    "$root/target/release/packgate-load" --rtmp "${rtmp%%/*}" --app "${app##*/}" --prefix "${url##*/}" \
      --duration "$secs" --retime "$file" "${stamps[@]}" > /dev/null 2>&1 &
  elif [ "$name" = gstreamer ]; then
    gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
      ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1200 ! h264parse ! queue \
      ! flvmux name=m streamable=true ! rtmp2sink location="$url" \
      audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! m. \
      > /dev/null 2>&1 &
  else
    file=$(make_source "$name" "$secs")
    [ "$(source_field "$name" 2)" != "-" ] && loops=-1
    "$ff" -hide_banner -v error -nostdin -re -stream_loop "$loops" -i "$file" -c copy -f flv "$url" > /dev/null 2>&1 &
  fi
  pub_pid=$!
}

# ll_toml PART_TARGET: the [low_latency] section of a run; PART-HOLD-BACK (in part targets)
# from $PHB when set, else the server's default.
ll_toml() {
  printf '[low_latency]\\npart_target = %s\\n' "$1"
  [ -n "${PHB:-}" ] && printf 'part_hold_back = %s\\n' "$PHB"
  return 0
}

# start_server [EXTRA_TOML]: packgate on free ports; sets $srv_pid $rtmp_port $http_port.
start_server() {
  srv_cfg=$(mktemp)
  rtmp_port=$((20000 + RANDOM % 20000)); http_port=$((rtmp_port + 1))
  printf '[rtmp]\nlisten = "127.0.0.1:%s"\n[http]\nlisten = "127.0.0.1:%s"\n%b' \
    "$rtmp_port" "$http_port" "${1:-}" > "$srv_cfg"
  "$root/target/release/packgate" --config "$srv_cfg" > /dev/null 2>&1 &
  srv_pid=$!
}

stop_all() {
  [ -n "${pub_pid:-}" ] && kill "$pub_pid" 2>/dev/null; wait "${pub_pid:-}" 2>/dev/null
  [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null; wait "${srv_pid:-}" 2>/dev/null
  rm -f "${srv_cfg:-}"
  pub_pid=; srv_pid=
}

# wait_ready PATH: until the server answers 200 for PATH (20 s at most).
wait_ready() {
  for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$http_port$1" > /dev/null && return 0
    sleep 0.2
  done
  echo "not ready: $1" >&2; return 1
}

# player_args PLAYER PART_TARGET: play.mjs arguments for a player setting.
#   hls        hls.js default config (lowLatencyMode on, no catch-up rate): what a new user gets
#   hls-rec    the README's recommendation (lowLatencyMode, maxLiveSyncPlaybackRate 1.5)
#   hls-std    hls.js standard (non-LL) mode: segments only, HOLD-BACK
#   hls-phb2   as hls-rec, aiming at 2 x part target instead of the playlist's PART-HOLD-BACK
#              (3 x): hls.js takes liveSyncDuration as its target latency when it is set
#   dash       dash.js low latency (liveDelay 1 s)
player_args() {
  case $1 in
    hls) echo "--player hls --hls-config {}" ;;
    hls-rec) echo "--player hls --low-latency" ;;
    hls-std) echo "--player hls --hls-config {\"lowLatencyMode\":false}" ;;
    hls-phb2) echo "--player hls --hls-config {\"lowLatencyMode\":true,\"maxLiveSyncPlaybackRate\":1.5,\"liveSyncDuration\":$(python3 -c "print(2*$2)")}" ;;
    dash) echo "--player dash --low-latency" ;;
  esac
}

# play_row SOURCE PLAYER SECS PART_TARGET: plays and prints one markdown table row; with
# PLAY_JSON_DIR set, the player's whole JSON report goes to DIR/SOURCE_PLAYER.json.
play_row() {
  local src=$1 player=$2 secs=$3 pt=$4 ext=m3u8 json
  [ "$player" = dash ] && ext=mpd
  # shellcheck disable=SC2046
  json=$(node "$root/tests/browser/play.mjs" --url "http://127.0.0.1:$http_port/live/${src//./_}/index.$ext" \
    --seconds "$secs" $(player_args "$player" "$pt") | tail -1)
  # The whole report (stall log, latency samples) for a look after the run.
  [ -n "${PLAY_JSON_DIR:-}" ] && printf '%s\n' "$json" > "$PLAY_JSON_DIR/${src}_${player}.json"
  [ -n "${PHB:-}" ] && pt="$pt (PHB ${PHB}x)"
  python3 - "$json" "$src" "$player" "$pt" <<'PY'
import json, sys
try:
    r = json.loads(sys.argv[1])
except Exception:
    print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | player failed | | | |"); sys.exit()
f = lambda v: "-" if v is None else f"{v:.2f}"
errs = sorted(set(r.get("errors", []) + r.get("fatal", [])))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {f(r['latencyMedian'])} | {f(r['latencyP95'])} | {r['stalls']} | {r['advanced']:.1f} / {r['window']} | {' '.join(errs)[:80]} |", flush=True)
PY
}

table_head() {
  echo "| source | player | part target s | latency median s | p95 s | stalls | advanced s / window | player errors |"
  echo "|---|---|---|---|---|---|---|---|"
}

#!/usr/bin/env bash
# packgate against nginx with libnginx-mod-rtmp, same scenarios in one run, with ratios.
#
#   bash benches/compare_nginx.sh [N ...]        # default N: 1 10 50 100 200
#
# For each N: N real-time publishers of a 360p 2 s-GOP H.264/AAC sample (~0.94 Mbit/s, made
# once with ffmpeg 9) from packgate-load; server CPU (process tree, /proc) over a steady
# window; then, with the streams still running, wrk -c100 on a TS segment and on the media
# playlist. Then a 3-rung ladder (nginx: three plain streams) and, packgate only (nginx has
# no LL-HLS), LL_VIEWERS LL-HLS viewers of one ladder. packgate runs with every output on
# (CMAF + LL parts, TS, DASH); nginx with HLS (TS on disk), hls_fragment 2s, one worker.
#
# Environment: WARMUP (s, 10), WINDOW (CPU window, s, 20), WRK_SECS (5), LL_VIEWERS (1000),
# VIEWERS (classic HLS viewers per run, 0), SCENARIOS ("streams ladder ll"), SKIP_NGINX=1,
# OUT (results directory). Needs: cargo build --release; ffmpeg 9 (pip install
# imageio-ffmpeg); nginx + libnginx-mod-rtmp and wrk (apt-get, installed when missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
counts=${*:-1 10 50 100 200}
WARMUP=${WARMUP:-10}; WINDOW=${WINDOW:-20}; WRK_SECS=${WRK_SECS:-5}
LL_VIEWERS=${LL_VIEWERS:-1000}; VIEWERS=${VIEWERS:-0}
SCENARIOS=${SCENARIOS:-streams ladder ll}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/packgate-compare.XXXXXX")}
ff=${PACKGATE_FFMPEG:-$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())')}
cache=${TMPDIR:-/tmp}/packgate_bench
load="$root/target/release/packgate-load"
mkdir -p "$cache" "$OUT"

if [ ! -x "$load" ] || [ ! -x "$root/target/release/packgate" ]; then
  (cd "$root" && cargo build --release --bins)
fi

have_nginx=1
if [ -z "${SKIP_NGINX:-}" ] && { ! command -v nginx > /dev/null || ! ls /usr/lib/nginx/modules/ngx_rtmp_module.so > /dev/null 2>&1; }; then
  echo "installing nginx libnginx-mod-rtmp" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y nginx libnginx-mod-rtmp > /dev/null 2>&1 || true
fi
if [ -n "${SKIP_NGINX:-}" ] || ! ls /usr/lib/nginx/modules/ngx_rtmp_module.so > /dev/null 2>&1; then
  have_nginx=0
  [ -z "${SKIP_NGINX:-}" ] && echo "WARNING: nginx with libnginx-mod-rtmp not available: packgate only" >&2
fi
have_wrk=1
if ! command -v wrk > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk > /dev/null 2>&1 || true
  if ! command -v wrk > /dev/null; then
    have_wrk=0
    echo "WARNING: wrk could not be installed: HTTP rates come from the generator's own viewers (VIEWERS=100)" >&2
    [ "$VIEWERS" = 0 ] && VIEWERS=100
  fi
fi

# sample NAME SIZE VIDEO_BITRATE: a 60 s, 30 fps, 2 s-GOP H.264 + 96k AAC FLV, made once.
sample() {
  local path="$cache/$1.flv"
  if [ ! -f "$path" ]; then
    "$ff" -hide_banner -v error -nostdin -y -f lavfi -i "testsrc2=size=$2:rate=30" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
      -c:v libx264 -preset veryfast -b:v "$3" -maxrate "$3" -bufsize "$3" \
      -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 96k -f flv "$path.tmp" >&2
    mv "$path.tmp" "$path"
  fi
  echo "$path"
}
s360=$(sample bench_360p 640x360 840k)
s240=$(sample bench_240p 426x240 400k)
s720=$(sample bench_720p 1280x720 2500k)
ladder="240p=$s240,360p=$s360,720p=$s720"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

srv_pid=; srv_dir=
start_packgate() {
  srv_dir=$(mktemp -d); rtmp=$(port); http=$(port)
  # Every publisher and viewer comes from 127.0.0.1: lift the per-IP caps (32 RTMP, 1024
  # HTTP by default) and the totals above what the scenarios open.
  printf '[rtmp]\nlisten = "127.0.0.1:%s"\nmax_connections = 100000\nmax_connections_per_ip = 100000\n[http]\nlisten = "127.0.0.1:%s"\nmax_connections = 100000\nmax_connections_per_ip = 100000\n' "$rtmp" "$http" > "$srv_dir/c.toml"
  "$root/target/release/packgate" --config "$srv_dir/c.toml" > "$srv_dir/log" 2>&1 &
  srv_pid=$!
  hls_url='/{app}/{stream}/ts.m3u8'; ll_url='/{app}/{stream}/index.m3u8'; dash_url='/{app}/{stream}/index.mpd'
}
start_nginx() {
  srv_dir=$(mktemp -d); rtmp=$(port); http=$(port)
  mkdir -p "$srv_dir/hls" "$srv_dir/tmp"
  cat > "$srv_dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $srv_dir/nginx.pid;
error_log $srv_dir/error.log warn;
events { worker_connections 30000; }
rtmp {
  server {
    listen 127.0.0.1:$rtmp;
    chunk_size 4096;
    application live { live on; hls on; hls_path $srv_dir/hls; hls_fragment 2s; hls_playlist_length 12s; }
  }
}
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $srv_dir/tmp; proxy_temp_path $srv_dir/tmp; fastcgi_temp_path $srv_dir/tmp;
  uwsgi_temp_path $srv_dir/tmp; scgi_temp_path $srv_dir/tmp;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$http;
    location /hls/ { alias $srv_dir/hls/; add_header Cache-Control no-cache; }
  }
}
EOF
  nginx -p "$srv_dir" -c "$srv_dir/nginx.conf" -e "$srv_dir/error.log" &
  srv_pid=$!
  hls_url='/hls/{rendition}.m3u8'; ll_url=none; dash_url=none
}
stop_server() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null || true
  [ -n "$srv_dir" ] && { cat "$srv_dir/log" "$srv_dir/error.log" > "$OUT/$1.server.log" 2>/dev/null || true; }
  [ -n "$srv_dir" ] && rm -rf "$srv_dir"
  srv_pid=; srv_dir=
}
trap 'stop_server exit' EXIT

# wrk_rate URL: "req/s p99_ms" of wrk -c100 on URL for WRK_SECS.
wrk_rate() {
  wrk -t1 -c100 -d"${WRK_SECS}s" --latency "$1" 2>/dev/null | python3 -c '
import re, sys
t = sys.stdin.read()
rate = re.search(r"Requests/sec:\s+([\d.]+)", t)
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
ms = "-" if not p99 else "%.1f" % (float(p99.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[p99.group(2)])
print(rate.group(1) if rate else "-", ms)
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errs: print("wrk: %s non-2xx responses" % errs.group(1), file=sys.stderr)'
}

# run SERVER TAG [generator args...]: one generator run; wrk after the CPU window.
run() {
  local server=$1 tag=$2; shift 2
  "start_$server"
  sleep 0.5
  local total=$((WARMUP + WINDOW + 2 * WRK_SECS + 4))
  "$load" --rtmp "127.0.0.1:$rtmp" --http "127.0.0.1:$http" --server-pid "$srv_pid" \
    --hls-url "$hls_url" --ll-url "$ll_url" --dash-url "$dash_url" \
    --duration "$total" --warmup "$WARMUP" --window "$WINDOW" --threads 1 "$@" \
    > "$OUT/$server-$tag.txt" 2> "$OUT/$server-$tag.err" &
  local gen=$!
  sleep $((WARMUP + WINDOW + 1))
  local seg="- -" pl="- -"
  if [ "$have_wrk" = 1 ]; then
    local media first
    if [ "$server" = packgate ]; then
      media="http://127.0.0.1:$http/live/load0/src/ts.m3u8"
      [ "$tag" != "n${tag#n}" ] && media="http://127.0.0.1:$http/live/load0/720p/ts.m3u8"
    else
      media="http://127.0.0.1:$http/hls/load0.m3u8"
      [ "$tag" = ladder ] && media="http://127.0.0.1:$http/hls/load0_720p.m3u8"
    fi
    first=$(curl -sf "$media" | grep -v '^#' | grep . | tail -2 | head -1 || true)
    if [ -n "$first" ]; then
      seg=$(wrk_rate "$(dirname "$media")/$first")
    fi
    pl=$(wrk_rate "$media")
  fi
  wait "$gen" || true
  stop_server "$server-$tag"
  echo "$seg $pl" > "$OUT/$server-$tag.wrk"
  tail -1 "$OUT/$server-$tag.txt" > "$OUT/$server-$tag.json"
}

servers=packgate
[ "$have_nginx" = 1 ] && servers="packgate nginx"
for s in $SCENARIOS; do
  case $s in
    streams)
      for n in $counts; do
        for server in $servers; do
          echo "== $server, $n streams" >&2
          run "$server" "n$n" --streams "$n" --sample "$s360" --hls "$VIEWERS" --probe 10
        done
      done ;;
    ladder)
      for server in $servers; do
        echo "== $server, 3-rung ladder" >&2
        run "$server" ladder --streams 1 --ladder "$ladder" --hls "$VIEWERS"
      done ;;
    ll)
      echo "== packgate, $LL_VIEWERS LL-HLS viewers of one ladder" >&2
      run packgate ll --streams 1 --ladder "$ladder" --ll "$LL_VIEWERS" ;;
  esac
done

python3 - "$OUT" "$counts" "$have_nginx" <<'PY'
import json, os, sys
out, counts, have_nginx = sys.argv[1], sys.argv[2].split(), sys.argv[3] == "1"
def load(server, tag):
    try:
        j = json.load(open(f"{out}/{server}-{tag}.json"))
        w = open(f"{out}/{server}-{tag}.wrk").read().split()
        return j, w
    except Exception:
        return None, None
f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
def ratio(a, b):
    try:
        return f"{float(a) / float(b):.2f}"
    except Exception:
        return "-"
print("\n| scenario | nginx CPU %/stream | packgate CPU %/stream | ratio | nginx seg req/s (p99 ms) | packgate seg req/s (p99 ms) | ratio | nginx / packgate playlist req/s | packgate RSS/stream MB | errors nginx / packgate |")
print("|---|---|---|---|---|---|---|---|---|---|")
for tag in [f"n{n}" for n in counts] + ["ladder"]:
    pj, pw = load("packgate", tag)
    nj, nw = load("nginx", tag) if have_nginx else (None, None)
    if pj is None and nj is None:
        continue
    cpu = lambda j: j["server"]["cpu_percent_per_stream"] if j and j.get("server") else None
    pc, nc = cpu(pj), cpu(nj)
    rss = f(pj["server"]["rss_per_stream_bytes"] / 1e6, 1) if pj and pj.get("server") else "-"
    # Without wrk: the generator's own classic HLS viewers (VIEWERS) give the rates.
    def rates(w, j):
        if (not w or w[0] == "-") and j and j["hls"]["viewers"]:
            h = j["hls"]
            return [f"{h['requests_per_sec']:.0f}", f(h["media"]["p99_ms"], 1), "-", "-"]
        return w or ["-"] * 4
    nw, pw = rates(nw, nj), rates(pw, pj)
    name = tag[1:] + " streams" if tag.startswith("n") else "3-rung ladder"
    errs = f"{nj['errors'] if nj else '-'} / {pj['errors'] if pj else '-'}"
    print(f"| {name} | {f(nc)} | {f(pc)} | {ratio(pc, nc)} | {nw[0]} ({nw[1]}) | {pw[0]} ({pw[1]}) | {ratio(pw[0], nw[0])} | {nw[2]} / {pw[2]} | {rss} | {errs} |")
lj, _ = load("packgate", "ll")
if lj:
    k = lj["llhls"]; s = lj.get("server") or {}
    print(f"\nLL-HLS, {k['viewers']} viewers of a 3-rung ladder (packgate): server CPU {f(s.get('cpu_percent'), 1)} % of a core, "
          f"{k['requests_per_sec']:.0f} req/s, part delivery delay p50 {f(k['part_delay']['p50_ms'], 1)} ms p99 {f(k['part_delay']['p99_ms'], 1)} ms "
          f"({k['part_delay']['count']} parts dated), parts {k['parts']}, errors {k['errors']}, RSS {f(s.get('rss_bytes', 0) / 1e6, 1)} MB; "
          f"generator CPU {f(lj.get('generator_cpu_percent'), 1)} %")
print(f"\nraw reports: {out}")
PY

#!/usr/bin/env bash
# CI's smoke run of the benchmarks (issue 11: "exercised by a short smoke run in CI"): the
# micro-benchmarks once each, and compare_nginx.sh at tiny size (1 stream, a few seconds,
# 5 LL-HLS viewers) against nginx with libnginx-mod-rtmp. Checks that every part ran and
# reported, not speed. Needs what compare_nginx.sh needs (tests/run.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
fail() { echo "FAILED: $*" >&2; exit 1; }

out=$(cargo bench --bench hot_paths --bench ingest -- --quick 2>/dev/null)
echo "$out"
for name in "chunk decode" "FLV tag → frame" "fMP4 part write" "TS packetize" "playlist render" \
  "CMAF HLS + TS HLS + DASH" "CMAF HLS only"; do
  grep -q "^$name" <<< "$out" || fail "micro-benchmark '$name' printed no figure"
done

command -v nginx > /dev/null && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] \
  || fail "nginx with libnginx-mod-rtmp is missing: apt-get install nginx libnginx-mod-rtmp (tests/run.sh does)"
command -v wrk > /dev/null || fail "wrk is missing: apt-get install wrk (tests/run.sh does)"
dir=$(mktemp -d "${TMPDIR:-/tmp}/packgate-smoke.XXXXXX")
trap 'rm -rf "$dir"' EXIT
table=$(OUT=$dir WARMUP=2 WINDOW=3 WRK_SECS=1 LL_VIEWERS=5 SCENARIOS="streams ll" \
  bash benches/compare_nginx.sh 1 2> "$dir/stderr") || { cat "$dir/stderr" >&2; fail "compare_nginx.sh"; }
echo "$table"
row=$(grep '^| 1 streams |' <<< "$table") || fail "compare_nginx.sh printed no 1-stream row"
# | 1 streams | nginx CPU | packgate CPU | ratio | nginx seg | packgate seg | ratio | playlists | RSS | errors |
IFS='|' read -r _ _ ncpu pcpu ratio nseg pseg _ _ _ errs _ <<< "$row"
for v in "$ncpu" "$pcpu" "$ratio"; do
  [[ $v =~ [0-9] ]] || fail "a CPU figure is missing in: $row"
done
[[ $nseg =~ ^\ *[0-9] && $pseg =~ ^\ *[0-9] ]] || fail "a segment rate is missing in: $row"
[ "$(tr -d ' ' <<< "$errs")" = "0/0" ] || fail "errors in: $row"
grep -q '^LL-HLS, 5 viewers' <<< "$table" || fail "no LL-HLS viewers line"
grep -q 'errors 0,' <<< "$(grep '^LL-HLS' <<< "$table")" || fail "LL-HLS viewers had errors"
echo "benchmark smoke run: ok"

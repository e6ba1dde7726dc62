#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing (Debian packages,
# ffmpeg 9 from PyPI, npm packages for the browser test), then runs every check and test.
# Usage: bash tests/run.sh            (CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- install what is missing -------------------------------------------------------------
apt_missing=()
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
command -v ffprobe >/dev/null 2>&1 || apt_missing+=(ffmpeg)
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs npm)
# GStreamer publishes with rtmp2sink (plugins-bad), x264enc (ugly) and voaacenc (bad).
if ! gst-inspect-1.0 rtmp2sink >/dev/null 2>&1 || ! gst-inspect-1.0 x264enc >/dev/null 2>&1; then
  apt_missing+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)
fi
# The benchmark smoke run compares with nginx-rtmp and drives HTTP with wrk.
{ command -v nginx >/dev/null 2>&1 && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; } \
  || apt_missing+=(nginx libnginx-mod-rtmp)
command -v wrk >/dev/null 2>&1 || apt_missing+=(wrk)
# Scaling-out tests: Redis as the cluster registry, TLS certificates and HTTP/2 checks.
command -v redis-server >/dev/null 2>&1 || apt_missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
if [ ${#apt_missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${apt_missing[*]}"
  as_root apt-get update -qq || die "apt-get update failed (needed to install ${apt_missing[*]})"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" \
    || die "tests need ${apt_missing[*]}: apt-get install ${apt_missing[*]} failed"
fi

if ! python3 -c 'import imageio_ffmpeg' >/dev/null 2>&1; then
  step "installing ffmpeg 9 (pip install imageio-ffmpeg)"
  python3 -m pip install -q imageio-ffmpeg || die "tests need ffmpeg 9: python3 -m pip install imageio-ffmpeg failed"
fi

# The object-storage test writes to a real S3-protocol server (moto's).
if ! command -v moto_server >/dev/null 2>&1; then
  step "installing an S3-protocol server for the object-storage test (pip install 'moto[server]')"
  python3 -m pip install -q 'moto[server]' \
    || die "the object-storage test needs an S3 server: python3 -m pip install 'moto[server]' failed"
fi

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/hls.js ]; then
  step "installing npm packages for the browser test (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) \
    || die "browser test needs playwright-core and hls.js: (cd tests/browser && npm ci) failed"
fi

PACKGATE_FFMPEG=$(python3 -c 'import imageio_ffmpeg as m; print(m.get_ffmpeg_exe())') \
  || die "imageio-ffmpeg is installed but has no ffmpeg binary"
export PACKGATE_FFMPEG
export PACKGATE_FFPROBE=${PACKGATE_FFPROBE:-$(command -v ffprobe)}
export PACKGATE_NODE=${PACKGATE_NODE:-$(command -v node)}
export PACKGATE_CHROMIUM=/usr/bin/chromium
export PACKGATE_BROWSER_DIR="$root/tests/browser"
echo "ffmpeg: $PACKGATE_FFMPEG"
echo "ffprobe: $PACKGATE_FFPROBE, node: $PACKGATE_NODE, chromium: $PACKGATE_CHROMIUM"

# --- checks and tests ----------------------------------------------------------------------
# One build profile (release) for clippy and tests: the e2e tests need release speed anyway.
step "cargo fmt --check"
cargo fmt --check || die "code is not formatted: run cargo fmt"

step "cargo clippy --release --all-targets -- -D warnings"
cargo clippy --release --all-targets -- -D warnings

step "cargo test --release (unit, integration, end-to-end with ffmpeg and Chromium)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: $passed passed, $failed failed"

# smoke NAME SCRIPT DESCRIPTION: runs one smoke script; a failure fails the run at the end.
smoke() {
  step "$1 smoke run ($2: $3)"
  set +e
  bash "$2"
  local rc=$?
  set -e
  [ "$rc" -eq 0 ] || echo "FAILED: $1 smoke run (bash $2)" >&2
  [ "$status" -ne 0 ] || status=$rc
}
smoke fuzz tests/fuzz_smoke.sh "every cargo-fuzz target for 15 s on its seed corpus"
smoke benchmark benches/smoke.sh "micro-benchmarks once, compare_nginx.sh at 1 stream"
exit "$status"

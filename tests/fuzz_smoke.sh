#!/usr/bin/env bash
# Short fuzz run for CI: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (15) seconds on its
# seed corpus (fuzz/corpus/<target>); any crash, leak or timeout fails. Long runs are manual:
#   cd fuzz && cargo +nightly fuzz run <target> /tmp/<target> corpus/<target> -- -max_total_time=600
# New inputs go to a temporary corpus, so the seeds in the repo stay as they are; a crashing
# input is left in fuzz/artifacts/<target>/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-15}

die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

rustup run nightly rustc --version >/dev/null 2>&1 \
  || die "fuzzing needs nightly Rust: rustup toolchain install nightly"
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked || die "fuzzing needs cargo-fuzz: cargo install cargo-fuzz --locked failed"
fi

cargo +nightly fuzz build || die "cargo +nightly fuzz build failed"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
  printf '\n--- fuzz %s for %ss\n' "$target" "$seconds"
  mkdir -p "$work/$target"
  log="$work/$target.log"
  if cargo +nightly fuzz run "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done|stat::(number_of_executed_units|peak_rss_mb))' "$log" || true
  else
    tail -n 60 "$log"
    failed+=("$target")
  fi
done
[ ${#failed[@]} -eq 0 ] || die "fuzz targets crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
echo "fuzz smoke: every target ran ${seconds}s without a crash"

#!/usr/bin/env bash
# Builds the adapter fuzz targets with coverage instrumentation and runs each for a fixed time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 300 s, every target)
#
# Works on the stable toolchain without cargo-fuzz: libFuzzer comes from the libfuzzer-sys
# crate and the instrumentation flags are the ones cargo-fuzz passes (without a sanitizer: the
# adapters are safe Rust, so what is looked for is a panic, an abort, a timeout, memory
# blow-up or a broken invariant of fuzz/src/lib.rs). Where cargo-fuzz is installed,
# `cargo fuzz run <target>` from the repository root works as well.
#
# Seeds come from fuzz/seeds/<target>; the growing corpus and any crash go under
# target/fuzz/<target> (not committed). Exit status is non-zero when a target found a crash.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/../target/fuzz-build}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (they are not linked
# with libFuzzer), as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
failed=0
for t in "${targets[@]}"; do
  out="$(pwd)/../target/fuzz/$t"
  mkdir -p "$out/corpus" "$out/artifacts"
  echo "== $t: ${seconds}s"
  if ! "$CARGO_TARGET_DIR/$host/release/$t" "$out/corpus" "seeds/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$out/artifacts/" -print_final_stats=1 2> "$out/log.txt"; then
    echo "!! $t found a crash: see $out/artifacts and $out/log.txt"
    failed=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$out/log.txt" || true
  grep -E "^#[0-9]+ +DONE" "$out/log.txt" | tail -n 1 || true
done
exit "$failed"

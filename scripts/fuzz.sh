#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, AddressSanitizer + UBSan) and runs each for a
# bounded time, from a seed corpus of valid inputs (the example configs; a valid mfsim output).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 300)]
# A crash leaves its input in build-fuzz/crashes/<target>/; copy it to tests/fuzz/regressions/
# <target>/ once fixed, where ctest (fuzz.regressions) replays it in the ordinary build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
cmake --preset fuzz -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build --preset fuzz -j2
work=build-fuzz/corpus
mkdir -p "$work/fuzz_config" "$work/fuzz_h5md_reader" build-fuzz/crashes/fuzz_config \
  build-fuzz/crashes/fuzz_h5md_reader
cp simulations/configs/*.toml "$work/fuzz_config/"
# Seeds of the reader: a valid file (mode byte 1: the bytes are the file) and structured recipes.
if [ -x build/simulations/mfsim ]; then
  tmp=$(mktemp -d)
  printf '[model]\nwidth = 8\n[data]\ndim = 3\nn_train = 4\nn_test = 2\n[flow]\nsteps = 2\n[diagnostics]\nkl = ["transport"]\n' >"$tmp/seed.toml"
  build/simulations/mfsim run "$tmp/seed.toml" -q -o "$tmp/seed.h5" >/dev/null
  { printf '\001'; cat "$tmp/seed.h5"; } >"$work/fuzz_h5md_reader/valid_file"
  rm -rf "$tmp"
fi
head -c 256 /dev/zero | tr '\0' '\002' >"$work/fuzz_h5md_reader/structured"
for target in fuzz_config fuzz_h5md_reader; do
  echo "== $target: $seconds s"
  (cd build-fuzz/crashes/$target &&
    ASAN_OPTIONS=detect_leaks=0 ../../tests/fuzz/$target -max_total_time="$seconds" \
      -max_len=65536 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
      "../../corpus/$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)" || true)
done
echo "crash inputs (if any):"; ls -l build-fuzz/crashes/*/ 2>/dev/null | grep -v '^total' || true

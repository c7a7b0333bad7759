#!/usr/bin/env bash
# The GPU check (docs/gpu.md): on a machine with an NVIDIA GPU, runs mfsim's test suite in double
# and in float and the step and diagnostic benchmarks at the sizes of docs/performance.md, in under
# 10 minutes, and writes a summary and the benchmarks' JSON to OUTDIR.
#
#   scripts/gpu_check.sh OUTDIR --build-dir DIR [--build-dir-float DIR]
#   scripts/gpu_check.sh OUTDIR --kokkos PREFIX [--arch sm_90] [--jobs N]
#   scripts/gpu_check.sh OUTDIR --build-dir DIR [--build-dir-float DIR] --build-only --pack FILE
#
# --build-dir: existing CUDA build folders (double; float optional, else the float tests are
#   skipped and the summary says so). --kokkos: a Kokkos CUDA install prefix (with
#   bin/nvcc_wrapper); the script configures and builds OUTDIR/build-cuda and OUTDIR/build-cuda-float
#   from this checkout first (not counted in the 10 minutes: nvcc needs about 45 min each on two
#   idle cores, hours on busy ones; build where there are cores, run where there is a GPU).
# --build-only: build (or check the build folders) and stop before anything needs a GPU.
# --pack FILE: with --build-only, also write FILE (.tar.xz) with what running the check needs
#   from the build folders (programs, libraries, the ctest files; no object files), to unpack in
#   the repository root of a copy of this checkout on the GPU machine (tar xf FILE) before
#   running the check there with the same --build-dir folders.
# A build folder made at another path (a copy of the checkout elsewhere) is relocated first: the
# old folder and checkout paths in its ctest files become the current ones. The install tests
# (they configure a consumer against the build machine's Kokkos) are left out.
# Exit status: 0 when every step passed, 1 when a test or benchmark failed, 2 for bad arguments
# or a missing GPU/build.
set -uo pipefail

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "gpu_check: $*" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
out="" build="" build_float="" kokkos="" arch="sm_90" jobs=2 build_only=0 pack=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build-dir) [[ $# -ge 2 ]] || die "--build-dir needs a folder"; build=$2; shift 2 ;;
    --build-dir-float) [[ $# -ge 2 ]] || die "--build-dir-float needs a folder"; build_float=$2; shift 2 ;;
    --kokkos) [[ $# -ge 2 ]] || die "--kokkos needs a Kokkos install prefix"; kokkos=$2; shift 2 ;;
    --arch) [[ $# -ge 2 ]] || die "--arch needs an architecture such as sm_90"; arch=$2; shift 2 ;;
    --jobs) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --pack) [[ $# -ge 2 ]] || die "--pack needs a file name"; pack=$2; shift 2 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $out ]] || die "one OUTDIR only (got '$out' and '$1')"; out=$1; shift ;;
  esac
done
[[ -n $out ]] || { usage >&2; die "OUTDIR is missing"; }
[[ -n $build || -n $kokkos ]] || die "give --build-dir DIR (an existing CUDA build) or --kokkos PREFIX"
[[ -z $build || -z $kokkos ]] || die "--build-dir and --kokkos exclude each other"
[[ $arch =~ ^sm_[0-9]+a?$ ]] || die "--arch must look like sm_90 (got '$arch')"
[[ -z $pack || $build_only == 1 ]] || die "--pack goes with --build-only (pack here, run there)"
[[ -z $pack || $pack == *.tar.xz ]] || die "--pack needs a .tar.xz file name (got '$pack')"
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)
summary=$out/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

# The build folders: checked, or made from the Kokkos install.
cuda_build_ok() {  # a configured build whose compiler is nvcc_wrapper and whose Kokkos has CUDA
  [[ -f $1/CMakeCache.txt ]] && grep -q '^CMAKE_CXX_COMPILER:.*nvcc_wrapper' "$1/CMakeCache.txt"
}
configure() {  # folder precision
  local compiler=$kokkos/bin/nvcc_wrapper
  cmake -S "$repo" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" \
    -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_FLAGS="-arch=$arch" \
    -DMFSIM_REQUIRE_KOKKOS_DEVICE=CUDA -DMFSIM_PRECISION="$2" -DMFSIM_ENABLE_MPI=OFF \
    -DMFSIM_BUILD_PYTHON=OFF \
    -DPython3_EXECUTABLE=/usr/bin/python3 \
    ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER}
}
if [[ -n $kokkos ]]; then
  [[ -x $kokkos/bin/nvcc_wrapper ]] || die "$kokkos/bin/nvcc_wrapper not found: not a Kokkos CUDA install"
  build=$out/build-cuda build_float=$out/build-cuda-float
  for pair in "$build double" "$build_float float"; do
    set -- $pair
    note "== build $2: $1"
    start=$(date +%s)
    { configure "$1" "$2" && cmake --build "$1" -j "$jobs"; } > "$out/build-$2.log" 2>&1 \
      || die "the $2 build failed: see $out/build-$2.log"
    note "built in $(( $(date +%s) - start )) s"
  done
fi
cuda_build_ok "$build" || die "$build is not a CUDA build of mfsim (no CMakeCache.txt with nvcc_wrapper)"
[[ -z $build_float ]] || cuda_build_ok "$build_float" || die "$build_float is not a CUDA build"
build=$(cd "$build" && pwd)
[[ -z $build_float ]] || build_float=$(cd "$build_float" && pwd)

# A folder built at another path: its ctest files name the old folder and checkout.
relocate() {  # folder
  local old_build old_repo
  old_build=$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$1/CMakeCache.txt")
  old_repo=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt")
  [[ -n $old_build && -n $old_repo ]] || die "$1/CMakeCache.txt names no build or source folder"
  [[ $old_build != "$1" || $old_repo != "$repo" ]] || return 0
  note "relocating $1 (built as $old_build from $old_repo)"
  find "$1" \( -name CTestTestfile.cmake -o -name '*_tests.cmake' -o -name '*_include.cmake' \) \
    -not -path '*/CMakeFiles/*' -print0 |
    xargs -0 -r sed -i -e "s|$old_build\([/\"]\)|$1\1|g" -e "s|$old_repo\([/\"]\)|$repo\1|g"
  sed -i -e "s|^CMAKE_CACHEFILE_DIR:INTERNAL=.*|CMAKE_CACHEFILE_DIR:INTERNAL=$1|" \
    -e "s|^CMAKE_HOME_DIRECTORY:INTERNAL=.*|CMAKE_HOME_DIRECTORY:INTERNAL=$repo|" "$1/CMakeCache.txt"
}
for b in $build $build_float; do relocate "$b"; done
for b in $build $build_float; do
  for t in simulations/mfsim tests/mfsim_tests benchmarks/bench_two_layer_step \
           benchmarks/bench_resnet_step benchmarks/bench_diagnostics; do
    [[ -x $b/$t ]] || die "$b/$t is missing: build every target first (cmake --build $b)"
  done
done
if [[ $build_only == 1 ]]; then
  note "build-only: $build ${build_float:-(no float build)} ready; nothing run"
  if [[ -n $pack ]]; then
    # Paths relative to the checkout, so that the pack unpacks into a copy of it anywhere.
    for b in $build $build_float; do
      [[ $b == "$repo"/* ]] || die "--pack needs build folders inside the checkout ($b is not)"
    done
    (cd "$repo" && for b in $build $build_float; do
       find "${b#"$repo"/}" -type f -not -path '*/CMakeFiles/*' -not -path '*/python-build-venv/*' \
         \( -perm -u+x -o -name '*.so*' -o -name '*.cmake' -o -name '*.py' -o -name '*.tcl' \
            -o -name CMakeCache.txt \) -not -name '*.o'
     done | tar -cJf "$pack" -T -) || die "could not write $pack"
    note "packed $(du -h "$pack" | cut -f1) into $pack: unpack it in the checkout's root there"
  fi
  exit 0
fi

command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1 \
  || die "no NVIDIA GPU here (nvidia-smi -L failed): run this on a GPU machine"

# From here on: the 10-minute part.
status=0
check_start=$(date +%s)
{
  echo "mfsim GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  grep -E '^(Kokkos_DIR|CMAKE_CXX_FLAGS|MFSIM_PRECISION):' "$build/CMakeCache.txt"
} >> "$summary"
step() {  # name seconds command...: runs with a time limit, records the outcome
  local name=$1 limit=$2
  shift 2
  local start rc
  start=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  note "$name: $([[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)") in $(( $(date +%s) - start )) s"
  [[ $rc == 0 ]] || status=1
}
# Tests: 4 at a time (processes share the GPU; the machine's cores run the host side).
step ctest-double 200 ctest --test-dir "$build" --output-on-failure -j 4 -E '^install\.'
grep -E 'tests passed|tests failed' "$out/ctest-double.log" >> "$summary"
if [[ -n $build_float ]]; then
  step ctest-float 200 ctest --test-dir "$build_float" --output-on-failure -j 4 -E '^install\.'
  grep -E 'tests passed|tests failed' "$out/ctest-float.log" >> "$summary"
else
  note "ctest-float: skipped (no float build given)"
fi
# Benchmarks at the reference sizes of docs/performance.md, 3 repetitions each, JSON per program.
bench() {  # name build program filter
  step "$1" 60 "$2/benchmarks/$3" --benchmark_filter="$4" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$out/$1.json" \
    --benchmark_out_format=json
}
bench two_layer_step-double "$build" bench_two_layer_step '^BM_TwoLayerEulerStep/n:1000/m:10000/d:16/'
[[ -z $build_float ]] || bench two_layer_step-float "$build_float" bench_two_layer_step \
  '^BM_TwoLayerEulerStep/n:1000/m:10000/d:16/'
bench resnet_step-double "$build" bench_resnet_step '^BM_ResNetEulerStep/n:200/L:16/M:256/K:1024/d:8'
bench diagnostics-double "$build" bench_diagnostics \
  '^BM_(EulerStep|GramAccumulate|KlKnn)/n:(500/m:10000/d:10|1000/m:10000/d:16)'
for j in "$out"/*.json; do
  [[ -f $j ]] || continue
  /usr/bin/python3 - "$j" >> "$summary" <<'EOF'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") == "median":
        extra = {k: v for k, v in b.items() if k.endswith("/s") or k in ("pair_updates",)}
        print(f"  {b['run_name']}: median {b['real_time']:.4g} {b['time_unit']} {extra or ''}")
EOF
done
note "total check time $(( $(date +%s) - check_start )) s; exit status $status"
exit $status

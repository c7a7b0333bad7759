#!/usr/bin/env bash
# nvcc's front end over every translation unit of a configured CUDA build (docs/gpu.md): each
# compile command of BUILD_DIR/compile_commands.json runs with the device side stopped after its
# syntax and semantic checks (nvcc -fdevice-syntax-only) and the host side at -O0, so that the
# errors the CUDA port can have (extended-lambda rules, host-only calls in kernels, views and
# layouts) show in a fraction of a full build's time. Nothing is linked and no object is kept:
# a full build (cmake --build BUILD_DIR) is still what proves that every target links.
#
#   scripts/cuda_syntax_check.sh BUILD_DIR [--jobs N] [--filter REGEX]
#
# --filter: only the sources whose path matches REGEX (grep -E). The library's sources go first,
# then the program, the tests, the benchmarks and the generated header checks. Logs and the
# summary go to BUILD_DIR/syntax-check/. Exit status: 0 when every unit passed, 1 when one failed,
# 2 for bad arguments.
set -uo pipefail

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "cuda_syntax_check: $*" >&2; exit 2; }

build="" jobs=2 filter=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --jobs) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    --filter) [[ $# -ge 2 ]] || die "--filter needs a regular expression"; filter=$2; shift 2 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $build ]] || die "one BUILD_DIR only"; build=$1; shift ;;
  esac
done
[[ -n $build ]] || { usage >&2; die "BUILD_DIR is missing"; }
[[ -f $build/compile_commands.json ]] || die "$build/compile_commands.json not found: configure it first"
grep -q '^CMAKE_CXX_COMPILER:.*nvcc_wrapper' "$build/CMakeCache.txt" 2> /dev/null \
  || die "$build is not configured with nvcc_wrapper (cmake --preset cuda)"
build=$(cd "$build" && pwd)
out=$build/syntax-check
rm -rf "$out" && mkdir -p "$out/log" || die "cannot create $out"

# One line per unit: "<directory>\t<command>\t<source>", in the order above; nanobind's own
# sources (a dependency of the Python module) are left out.
/usr/bin/python3 - "$build/compile_commands.json" "$filter" > "$out/units.tsv" <<'EOF' || exit 2
import json, re, sys
units = [u for u in json.load(open(sys.argv[1])) if "/python-build-venv/" not in u["file"]]
if sys.argv[2]:
    units = [u for u in units if re.search(sys.argv[2], u["file"])]
rank = lambda f: next((i for i, part in enumerate(("/src/", "/simulations/", "/tests/",
                       "/benchmarks/", "/python/")) if part in f and "/headers" not in f), 5)
for u in sorted(units, key=lambda u: (rank(u["file"]), u["file"])):
    print(u["directory"], u["command"], u["file"], sep="\t")
EOF
[[ -s $out/units.tsv ]] || die "no translation unit to check"

check_unit() {  # directory command source
  local dir=$1 cmd=$2 src=$3 name nvcc start rc
  name=$(echo "${src#"$repo"/}" | tr '/' '_')
  # nvcc_wrapper translates the command; -O0 (host) replaces the build's optimisation flags and
  # the object goes to a scratch file.
  cmd=$(echo "$cmd" | sed -E 's/ -O[0-3s]( |$)/ /g; s| -o [^ ]+ | -o '"$out"'/unit.o.'"$$"' |')
  nvcc=$(cd "$dir" && eval "$cmd -O0 --nvcc-wrapper-show" | grep -v '^nvcc_wrapper - ')
  start=$(date +%s)
  (cd "$dir" && eval "$nvcc -fdevice-syntax-only") > "$out/log/$name.log" 2>&1
  rc=$?
  rm -f "$out/unit.o.$$"
  printf '%s %4ss %s\n' "$([[ $rc == 0 ]] && echo pass || echo FAIL)" "$(( $(date +%s) - start ))" \
    "${src#"$repo"/}" | tee -a "$out/summary.txt"
}
export -f check_unit
export out repo=$(cd "$(dirname "$0")/.." && pwd)
tr '\t' '\0' < "$out/units.tsv" | tr '\n' '\0' |
  xargs -0 -n 3 -P "$jobs" bash -c 'check_unit "$@"' _
failed=$(grep -c '^FAIL' "$out/summary.txt")
warnings=$(grep -l 'warning' "$out"/log/*.log 2> /dev/null | wc -l)
echo "cuda_syntax_check: $(wc -l < "$out/summary.txt") units, $failed failed, $warnings with warnings (logs in $out/log)"
[[ $failed == 0 ]]

#!/usr/bin/env bash
# `pip install .` as the README gives it, from a clean clone of the repository's HEAD into a new
# virtual environment (PyPI reached for the build tools and numpy, h5py, scipy, matplotlib), then
# the module's tests against the installed package. Prints the install's wall time.
#   pip_install.sh REPO WORKDIR PYTHON [PIP_ARGS...]
# PIP_ARGS are CMake settings for the wheel (--config-settings=cmake.define.NAME=VALUE): ctest
# passes the kernel flags of the build whose mfsim binary the tests compare with, so that the
# bitwise comparisons run instead of skipping.
set -euo pipefail
repo=$1 work=$2 python=$3
shift 3
rm -rf "$work" && mkdir -p "$work"
git clone -q "$repo" "$work/mfsim"
cd "$work/mfsim"
start=$(date +%s)
"$python" -m venv .venv
.venv/bin/pip install -q . "$@"
echo "pip_install: python3 -m venv .venv && .venv/bin/pip install . $* took $(( $(date +%s) - start )) s"
.venv/bin/pip install -q pytest
# Away from the sources, so that the installed package is what the tests import.
cd "$work"
MPLBACKEND=Agg "$work/mfsim/.venv/bin/python" -m pytest -q -rs -p no:cacheprovider \
  "$work/mfsim/tests/python/module"
"$work/mfsim/.venv/bin/mfsim-analysis" --help > /dev/null
echo "pip_install: the installed package passed"

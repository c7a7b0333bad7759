#!/usr/bin/env bash
# Installs every Debian package that mfsim's build, tests, benchmarks and analysis need.
# Idempotent and non-interactive; stops at the first failure.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config clang-format
  libtrilinos-kokkos-dev libopenblas-dev
  libhdf5-dev hdf5-tools libeigen3-dev libspectra-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtomlplusplus-dev libfmt-dev
  libopenmpi-dev openmpi-bin
  python3-h5py python3-numpy python3-matplotlib python3-scipy python3-pytest
  python3-venv python3-pip python3-setuptools  # pip install ./analysis into a venv (its test)
  python3-dev  # the Python module (pip install ., the release preset): Python's headers
  python3-sklearn  # its bundled real data sets (simulations/data/export_sklearn.py); no download
  python3-tqdm  # the Python module's progress bar, tested with tqdm itself
  qemu-user  # the portable build's kernel clones tested on emulated older CPUs (isa_clones.*)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"

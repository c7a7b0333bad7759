#!/usr/bin/env bash
# Installs the optional peers of benchmarks/run_peers.py (PyTorch, JAX, KeOps) into a virtual
# environment, .venv-peers/ at the repository root (git-ignored), with pinned versions. Nothing in
# the build or the core tests needs it.
#
#   scripts/setup_peers.sh [VENV]      # default: .venv-peers
#
# PyTorch comes from PyPI, whose Linux torch wheel is the CUDA build: with its dependencies
# (triton and some twenty nvidia-* CUDA libraries, which it loads at import even on a machine
# without a GPU) the venv is about 6 GB, 4.2 GB of it torch and the CUDA libraries; on this
# machine the whole script took under 2 minutes. torch leaves some of its dependencies' versions
# open (triton ~=, cuda-bindings <14, sympy >=...): they are pinned below to what was tested.
# It runs on the CPU here.
# pykeops imports torch when it is present, so torch must import for KeOps to work too. The venv
# sees Debian's packages (--system-site-packages) but gets its own numpy (JAX needs numpy >= 2);
# Debian's h5py is built against numpy 1.x, so the peers read their inputs from .npy files, never
# HDF5.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-peers}"

JAX=0.10.2
KEOPS=2.3
TORCH=2.15.0

[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" "jax[cpu]==$JAX" "jaxlib==$JAX" "numpy==2.4.6" "ml_dtypes==0.7.0" "opt_einsum==3.4.0"
"${pip[@]}" "torch==$TORCH" "triton==3.9.0" "cuda-toolkit==13.2.2" "cuda-bindings==13.5.0" \
  "cuda-pathfinder==1.9.1" "nvidia-cudnn-cu13==9.26.0.51" "nvidia-cusparselt-cu13==0.8.1" \
  "nvidia-nccl-cu13==2.30.7" "nvidia-nvshmem-cu13==3.7.2" "nvidia-cublas==13.4.1.3" \
  "nvidia-cuda-cupti==13.2.86" "nvidia-cuda-nvrtc==13.2.86" "nvidia-cuda-runtime==13.2.86" \
  "nvidia-cufft==12.2.0.57" "nvidia-cufile==1.17.1.22" "nvidia-cusolver==12.2.0.11" \
  "nvidia-cusparse==12.7.10.12" "nvidia-nvjitlink==13.5.37" "nvidia-nvtx==13.2.86" \
  "nvidia-cuda-cccl==13.3.5.0.6" "sympy==1.14.0" "mpmath==1.3.0" "networkx==3.6.1" \
  "jinja2==3.1.6" "MarkupSafe==3.0.4" "filelock==4.3.2" "fsspec==2026.9.0" \
  "typing-extensions==4.16.0" "setuptools==84.2.1"
"${pip[@]}" "pykeops==$KEOPS" "keopscore==$KEOPS" "pybind11==3.1.0"
"$venv/bin/python" - <<'PY'
import jax, numpy, pykeops, torch
print("numpy", numpy.__version__, "| jax", jax.__version__, "| torch", torch.__version__,
      "| pykeops", pykeops.__version__)
PY

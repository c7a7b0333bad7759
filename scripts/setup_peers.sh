#!/usr/bin/env bash
# Installs the optional peers of benchmarks/run_peers.py (PyTorch, JAX, KeOps) into a virtual
# environment, .venv-peers/ at the repository root (git-ignored), with pinned versions. Nothing in
# the build or the core tests needs it.
#
#   scripts/setup_peers.sh [VENV]      # default: .venv-peers
#
# PyTorch is NOT installed: PyPI's Linux wheel (the only one reachable here) declares some twenty
# nvidia-* CUDA packages (several GB); installed with --no-deps, `import torch` fails
# (torch 2.15.0: "ImportError: libcufile.so.0: cannot open shared object file"), and pykeops then
# fails to import too, since it imports torch when it is present. See docs/peers.md. The venv sees Debian's packages
# (--system-site-packages) but gets its own numpy (JAX needs numpy >= 2); Debian's h5py is built
# against numpy 1.x, so the peers read their inputs from .npy files, never HDF5.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-peers}"

JAX=0.10.2
KEOPS=2.3
TORCH=2.15.0

[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" "jax[cpu]==$JAX" "jaxlib==$JAX" "numpy==2.4.6" "ml_dtypes==0.7.0" "opt_einsum==3.4.0"
"${pip[@]}" "torch==$TORCH"
"${pip[@]}" "pykeops==$KEOPS" "keopscore==$KEOPS" "pybind11==3.1.0"
"$venv/bin/python" - <<'PY'
import jax, numpy, pykeops, torch
print("numpy", numpy.__version__, "| jax", jax.__version__, "| torch", torch.__version__,
      "| pykeops", pykeops.__version__)
PY

"""Fixtures of the Python module's tests: the module built here (PYTHONPATH, set by ctest to
<build>/python; or an installed mfsim), the mfsim binary of the same build (MFSIM_EXECUTABLE) and
small configs both run."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "simulations" / "configs" / "two_layer_meanfield.toml"

# A run of a fraction of a second (the analysis tests' SMALL), the diagnostics that cost little on.
SMALL = {
    "model.width": 64, "data.n_train": 20, "data.n_test": 50, "data.dim": 3,
    "init.antithetic": False, "flow.integrator": "heun", "flow.dt": 0.05, "flow.t_end": 2.0,
    "output.observe_every": 5, "output.snapshot_every": 10,
    "diagnostics.gram": False, "diagnostics.kl": [],
}


def mfsim_executable() -> Path:
    path = Path(os.environ.get("MFSIM_EXECUTABLE", REPO / "build" / "simulations" / "mfsim"))
    if not path.is_file():
        pytest.fail(f"mfsim binary not found at {path}: build it, or set MFSIM_EXECUTABLE")
    return path


def cli(*args, check=True, cwd=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(mfsim_executable()), *map(str, args)], capture_output=True, text=True,
                       timeout=600, cwd=cwd)
    if check:
        assert r.returncode == 0, f"mfsim {' '.join(map(str, args))}: {r.stderr}"
    return r


def set_args(settings: dict) -> list[str]:
    """The CLI's --set arguments for the settings the Python side takes as a dict."""
    import mfsim
    out = []
    for item in mfsim._overrides(settings):
        out += ["--set", item]
    return out


@pytest.fixture
def small_config():
    import mfsim
    return mfsim.Config.from_toml(CONFIG).with_overrides(SMALL)

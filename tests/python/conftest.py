"""Fixtures: the mfsim binary (MFSIM_EXECUTABLE, else build/simulations/mfsim) and runs it writes.

Every test here reads files that the real binary wrote during the test run. The analysis package
comes from PYTHONPATH (ctest sets it to analysis/; by hand: PYTHONPATH=analysis /usr/bin/python3
-m pytest tests/python) or from an install; the test modules import this file's helpers as
`conftest` (pytest puts this folder on the path).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONFIG = REPO / "simulations" / "configs" / "two_layer_meanfield.toml"

# A run of a fraction of a second: 40 Heun steps of 64 particles on 20 points in d = 3, without
# the diagnostics (the tests of what they add use future_layout.py, or switch them on).
SMALL = {
    "model.width": 64, "data.n_train": 20, "data.n_test": 50, "data.dim": 3,
    "init.antithetic": "false", "flow.integrator": '"heun"', "flow.dt": 0.05, "flow.t_end": 2.0,
    "output.observe_every": 5, "output.snapshot_every": 10,
    "diagnostics.gram": "false", "diagnostics.kl": "[]", "diagnostics.path_norm": "false",
    "diagnostics.path_length": "false",
}


def mfsim_executable() -> Path:
    path = Path(os.environ.get("MFSIM_EXECUTABLE", REPO / "build" / "simulations" / "mfsim"))
    if not path.is_file():
        pytest.fail(f"mfsim binary not found at {path}: build it, or set MFSIM_EXECUTABLE")
    return path


def config_command(config: Path, out: Path, *settings: str) -> list[str]:
    """The binary's run of `config` into `out`, each "key=value" of settings passed as --set."""
    command = [str(mfsim_executable()), "run", str(config), "-o", str(out), "--force", "-q"]
    for setting in settings:
        command += ["--set", setting]
    return command


def mfsim_command(out: Path, **overrides) -> list[str]:
    settings = {**SMALL, **{k.replace("__", "."): v for k, v in overrides.items()}}
    return config_command(CONFIG, out, *(f"{key}={value}" for key, value in settings.items()))


def run_command(command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Runs an mfsim command line; unless check is False, it must exit 0."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"mfsim failed ({result.returncode}): {result.stderr}"
    return result


def run_mfsim(out: Path, **overrides) -> Path:
    """Runs the binary with SMALL updated by overrides (model__width=128 sets model.width)."""
    run_command(mfsim_command(out, **overrides))
    return out


def run_config(toml: str, out: Path, *settings: str, check: bool = True) -> subprocess.CompletedProcess:
    """Writes the configuration `toml` beside `out` (same name, .toml) and runs the binary on it
    into `out` with settings ("key=value", each a --set); unless check is False, it must exit 0."""
    config = out.with_suffix(".toml")
    config.write_text(toml)
    return run_command(config_command(config, out, *settings), check)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    return run_mfsim(tmp_path_factory.mktemp("small") / "small.h5")


@pytest.fixture(scope="session")
def width_runs(tmp_path_factory) -> list[Path]:
    """Widths 32, 64, 128, two initialisation seeds each."""
    folder = tmp_path_factory.mktemp("widths")
    return [run_mfsim(folder / f"m{m}_s{s}.h5", model__width=m, init__seed=s)
            for m in (32, 64, 128) for s in (1, 2)]


@pytest.fixture
def future_run(small_run, tmp_path) -> Path:
    """A real run plus what the diagnostics and ResNet branches add (see future_layout.py)."""
    from future_layout import add_future_layout

    path = tmp_path / "future.h5"
    path.write_bytes(small_run.read_bytes())
    add_future_layout(path)
    return path


def run_cli_here(*args) -> subprocess.CompletedProcess:
    """The command line's main() in this interpreter (fast): its exit code, stdout and stderr."""
    import contextlib
    import io

    from mfsim_analysis.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python3 -m mfsim_analysis ARGS` in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "analysis"), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "mfsim_analysis", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)

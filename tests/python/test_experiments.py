"""The scripted experiments, in their --quick size, with the mfsim binary under test."""

import json
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from conftest import REPO, mfsim_executable, run_cli_here

EXPERIMENTS = REPO / "simulations" / "experiments"


def run_experiment(name, out, *args):
    env = {**os.environ, "MFSIM_EXECUTABLE": str(mfsim_executable()), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(EXPERIMENTS / f"{name}.py"), "--out", str(out), "--quick", *args],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_propagation_of_chaos_quick(tmp_path):
    """V1: the spread over seeds of f and of the loss falls like m^(−1/2)."""
    result = run_experiment("propagation_of_chaos", tmp_path)
    report = json.loads((tmp_path / "propagation_of_chaos.json").read_text())
    widths = np.array(report["widths"])
    assert list(widths) == [32, 64, 128, 256, 512] and report["seeds"] == 12
    assert len(list((tmp_path / "runs").glob("*.h5"))) == 60
    image = matplotlib.image.imread(tmp_path / "propagation_of_chaos.png")
    assert image.shape[1] > 600 and np.ptp(image) > 0
    for t, r in report["results"].items():
        assert -0.75 < r["fit_f"]["slope"] < -0.25, (t, r["fit_f"])
        assert r["fit_f"]["ci"][0] < r["fit_f"]["slope"] < r["fit_f"]["ci"][1]
        assert -0.9 < r["fit_loss"]["slope"] < -0.1, (t, r["fit_loss"])
    # At t = 0 the particles are i.i.d.: √m · spread of f is the central-limit constant at every width.
    scaled = np.array(report["results"]["0.0"]["std_f"]) * np.sqrt(widths)
    assert abs(np.exp(np.mean(np.log(scaled))) / report["clt_sqrt_m_std_f"] - 1) < 0.25
    assert "slope of std f" in result.stdout
    # The CLI's sweep over the same runs gives the experiment's slope of the loss spread.
    sweep = run_cli_here("sweep", *sorted((tmp_path / "runs").glob("*.h5")), "--x", "model.width",
                         "--y", "t=2:loss", "--stat", "std", "--json")
    assert sweep.returncode == 0, sweep.stderr
    fit = json.loads(sweep.stdout)["fits"]["t=2:loss"]
    assert fit["slope"] == pytest.approx(report["results"]["2.0"]["fit_loss"]["slope"], rel=1e-9)

    # --reuse keeps complete runs: nothing is run again.
    again = run_experiment("propagation_of_chaos", tmp_path, "--reuse")
    assert again.stdout.startswith("0 runs in")
    assert json.loads((tmp_path / "propagation_of_chaos.json").read_text())["results"] == report["results"]

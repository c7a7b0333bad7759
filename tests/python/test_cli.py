"""The command line (python3 -m mfsim_analysis) on files written by the mfsim binary."""

import json
import os

import h5py
import matplotlib.image
import numpy as np
import pytest
from conftest import REPO, run_cli, run_cli_here, run_mfsim
from scipy import stats

from mfsim_analysis import fit_power_law, open_run
from mfsim_analysis.plots import dashboard, overlay, particle_view, run_labels


def _png_ok(path):
    image = matplotlib.image.imread(path)
    return image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and np.ptp(image) > 0


def test_summary_table(small_run):
    result = run_cli("summary", small_run)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    loss_line = next(line for line in lines if line.startswith("loss "))
    with open_run(small_run) as run:
        final = run.observables["loss"].final
    assert loss_line.split()[1:4] == ["9", "40", "2"] and float(loss_line.split()[-1]) == pytest.approx(final, rel=1e-5)
    assert any(line.split() == ["model.width", "64"] for line in lines)
    assert any(line.split()[:3] == ["two_layer", "5", "64"] for line in lines)


def test_summary_json(small_run):
    result = run_cli_here("summary", small_run, "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    with open_run(small_run) as run:
        assert s["observables"]["loss"]["final"] == run.observables["loss"].final
        assert s["observables"]["loss"]["rows"] == 9
    assert s["config"]["model"]["width"] == 64 and s["model"] == "two_layer"
    assert s["particles"]["two_layer"]["frames"] == 5 and s["lambda0"] is None


def test_plot_one_and_several_runs(width_runs, tmp_path):
    result = run_cli("plot", *width_runs[:3], "-o", tmp_path, "--dpi", 50)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["overlay.png"] + [f"{p.stem}.{kind}.png" for p in width_runs[:3]
                                              for kind in ("dashboard", "two_layer")])
    assert sorted(result.stdout.split()) == [str(tmp_path / n) for n in names]
    assert all(_png_ok(tmp_path / n) for n in names)


def test_overlay_labels_name_what_differs(width_runs):
    runs = [open_run(p) for p in width_runs[:3]]
    assert run_labels(runs) == ["width=32, seed=1", "width=32, seed=2", "width=64, seed=1"]
    fig = overlay(runs)
    assert fig.panels == ["loss"]
    assert len(fig.axes[0].get_lines()) == 6  # training and test loss of each run


def test_dashboard_panels_for_every_known_observable(future_run, tmp_path):
    with open_run(future_run) as run:
        fig = dashboard(run)
        assert fig.panels == ["loss", "gram", "gram_spectrum", "gram_ratio", "kl", "norms", "weighted_norm",
                              "w2", "identity", "other:some_new_observable"]
        loss_ax, gram_ax = fig.axes[0], fig.axes[1]
        assert loss_ax.get_yscale() == "log" and gram_ax.get_yscale() == "log"
        # The λ₀ reference is drawn at ntk_gram_scale · λ₀ = 2 · 0.05.
        flat = [line for line in gram_ax.get_lines() if np.ptp(line.get_ydata()) == 0]
        assert [line.get_ydata()[0] for line in flat] == [pytest.approx(0.1)]
        kl_labels = [line.get_label() for line in fig.axes[fig.panels.index("kl")].get_lines()]
        assert "KL blocks, transport" in kl_labels and "KL head, k-NN" in kl_labels
    result = run_cli_here("plot", future_run, "-o", tmp_path, "--dpi", 40)
    assert result.returncode == 0, result.stderr
    for group in ("dashboard", "two_layer", "resnet_blocks", "resnet_head"):
        assert _png_ok(tmp_path / f"future.{group}.png")


def test_dashboard_of_a_real_diagnostics_run(tmp_path):
    """What the binary's diagnostics write is what the dashboard draws."""
    path = run_mfsim(tmp_path / "diagnostics.h5", diagnostics__gram="true", diagnostics__gram_spectrum="true",
                     diagnostics__kl='["transport", "knn"]', diagnostics__knn_k=3,
                     diagnostics__path_norm="true", diagnostics__path_length="true")
    with open_run(path) as run:
        with h5py.File(path, "r", locking=False) as f:
            assert run.lambda0 == pytest.approx(float(f["parameters"].attrs["ntk_lambda0"]))
        assert run.ntk_gram_scale == pytest.approx(1.0)
        assert run.particles["two_layer"].frame(-1).log_density.shape == (64,)
        fig = dashboard(run)
        assert fig.panels == ["loss", "gram", "gram_spectrum", "gram_ratio", "kl", "norms", "w2", "identity"]
    result = run_cli_here("plot", path, "-o", tmp_path, "--dpi", 40)
    assert result.returncode == 0, result.stderr
    assert _png_ok(tmp_path / "diagnostics.dashboard.png")


def test_particle_views_use_column_names(future_run):
    with open_run(future_run) as run:
        titles = lambda fig: [ax.get_title() for ax in fig.axes]  # noqa: E731
        blocks = particle_view(run, "resnet_blocks", frames=3)
        assert {"|u| per layer", "|w| per layer", "b per layer"} <= set(titles(blocks))
        assert blocks.axes[0].get_xlabel() == "|u|" and blocks.axes[0].get_ylabel() == "|w|"
        head = particle_view(run, "resnet_head", frames=2)
        assert head.axes[0].get_xlabel() == "a" and head.axes[0].get_ylabel() == "|v|"
        chosen = particle_view(run, "two_layer", frames=2, coords=("w_1", "b"))
        assert (chosen.axes[0].get_xlabel(), chosen.axes[0].get_ylabel()) == ("w_1", "b")
        # The movement panel: RMS distance of the particles from where they started.
        g = run.particles["two_layer"]
        fig = particle_view(run, "two_layer", frames=2, movement_frames=100)
        moved = next(ax for ax in fig.axes if ax.get_title().startswith("movement")).get_lines()[0]
        expect = np.sqrt(np.mean(np.sum((g.frame(-1).value - g.frame(0).value) ** 2, axis=1)))
        assert moved.get_ydata()[-1] == pytest.approx(expect) and moved.get_ydata()[0] == 0


def test_sweep_table_fit_and_plot(width_runs, tmp_path):
    result = run_cli("sweep", *width_runs, "--x", "model.width", "--y", "final:loss", "--y", "t=1:loss",
                     "--fit", "power", "-o", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert [r["x"] for r in s["rows"]] == [32, 32, 64, 64, 128, 128]
    finals = {}
    for path in width_runs:
        with open_run(path) as run:
            finals[str(path)] = (run.observables["loss"].final, run.observables["loss"].at_time(1.0))
    for row in s["rows"]:
        assert (row["final:loss"], row["t=1:loss"]) == finals[row["file"]]
    fit = fit_power_law([r["x"] for r in s["rows"]], [r["final:loss"] for r in s["rows"]])
    assert s["fits"]["final:loss"]["slope"] == pytest.approx(fit.slope)
    assert _png_ok(s["plot"])

    table = run_cli_here("sweep", *width_runs, "--x", "model.width", "--y", "final:loss", "--stat", "std",
                         "--fit", "power")
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()[1:4]]
    for (m, std, count), width in zip(rows, (32, 64, 128)):
        values = [v[0] for p, v in finals.items() if f"/m{width}_" in p]
        assert (int(m), int(count)) == (width, 2)
        assert float(std) == pytest.approx(np.std(values, ddof=1), rel=1e-5)
    assert table.stdout.splitlines()[4].startswith("fit std(final:loss) ~ model.width^slope: slope ")


def test_power_law_fit_and_its_interval():
    x = np.array([64, 128, 256, 512, 1024, 2048, 4096.0])
    exact = fit_power_law(x, 3.0 * x**-0.5)
    assert exact.slope == pytest.approx(-0.5, abs=1e-12) and exact.r2 == pytest.approx(1.0)
    assert exact(100.0) == pytest.approx(0.3)
    # The interval is slope ± t_{0.975, n−2}·se, se² = (Σ residual² / (n − 2)) / Σ (log x − mean)²:
    rng = np.random.default_rng(1)
    y = 3.0 * x**-0.5 * np.exp(0.2 * rng.normal(size=x.size))
    fit = fit_power_law(x, y)
    lx, ly = np.log10(x), np.log10(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    se = np.sqrt(np.sum((ly - slope * lx - intercept) ** 2) / (x.size - 2) / np.sum((lx - lx.mean()) ** 2))
    half = stats.t.ppf(0.975, x.size - 2) * se
    assert fit.slope == pytest.approx(slope) and fit.stderr == pytest.approx(se)
    assert fit.ci == (pytest.approx(slope - half), pytest.approx(slope + half))
    # ... so it covers the true slope in about 95% of repeated experiments.
    hits = 0
    for _ in range(2000):
        f = fit_power_law(x, 3.0 * x**-0.5 * np.exp(0.2 * rng.normal(size=x.size)))
        hits += f.ci[0] <= -0.5 <= f.ci[1]
    assert 0.93 < hits / 2000 < 0.97
    with pytest.raises(ValueError, match="2 distinct positive x"):
        fit_power_law([1, 1, -2], [1, 2, 3])


def _one_line_error(result, *fragments):
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("mfsim_analysis")
    assert ": error: " in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_refuses_a_file_that_is_not_mfsim_output(small_run, tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    text = tmp_path / "run.h5"
    text.write_text("not hdf5")
    for command in ("summary", "plot", "sweep"):
        extra = {"summary": [], "plot": ["-o", tmp_path / "p"], "sweep": ["--x", "model.width", "--y", "final:loss"]}
        _one_line_error(run_cli_here(command, plain, *extra[command]), str(plain), "not an mfsim H5MD file")
    _one_line_error(run_cli("summary", text), str(text), "not an HDF5 file")
    missing = run_cli_here("plot", small_run, tmp_path / "missing.h5", "-o", tmp_path / "q")
    _one_line_error(missing, "missing.h5: no such file")
    assert not (tmp_path / "p").exists()


def test_bad_arguments_are_one_line_errors(small_run, tmp_path):
    _one_line_error(run_cli_here("sweep", small_run, "--x", "model.width", "--y", "final:nope"), "no observable 'nope'")
    _one_line_error(run_cli_here("sweep", small_run, "--x", "model.nope", "--y", "final:loss"), "model.nope")
    _one_line_error(run_cli_here("sweep", small_run, "--x", "model.width", "--y", "t=soon:loss"), "t=T needs a number")
    _one_line_error(run_cli_here("plot", small_run, "--coords", "a", "-o", tmp_path), "--coords needs two names")
    _one_line_error(run_cli_here("plot", small_run, "--coords", "a,zz", "-o", tmp_path), "no column 'zz'")
    _one_line_error(run_cli("frobnicate", small_run), "invalid choice")
    _one_line_error(run_cli_here("summary"), "required")


def test_console_script_is_the_module_main(small_run):
    """analysis/pyproject.toml's `mfsim-analysis` entry point is the main() that
    `python3 -m mfsim_analysis` runs."""
    import importlib
    import tomllib

    from mfsim_analysis.cli import main

    project = tomllib.loads((REPO / "analysis" / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["mfsim-analysis"].partition(":")
    assert getattr(importlib.import_module(module), function) is main
    result = run_cli("summary", small_run, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["model"]["width"] == 64


def test_pip_install_gives_the_console_script(small_run, tmp_path):
    """`pip install ./analysis` into a venv (offline, on the system's numpy, h5py, scipy and
    matplotlib) installs a working `mfsim-analysis`, which needs no PYTHONPATH."""
    import importlib.util
    import shutil
    import subprocess
    import sys

    if not (importlib.util.find_spec("pip") and importlib.util.find_spec("setuptools")):
        pytest.skip("pip and setuptools are needed to install the package")
    source = shutil.copytree(REPO / "analysis", tmp_path / "analysis",
                             ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                              "--no-index", "--disable-pip-version-check", "-q", source],
                             capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stderr
    script = venv / "bin" / "mfsim-analysis"
    assert subprocess.run([script, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path).returncode == 0
    result = subprocess.run([script, "summary", small_run, "--json"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["model"]["width"] == 64


def test_dashboard_of_a_langevin_run(tmp_path):
    """A noisy, weight-decayed run: the free-energy gap on a log axis (F − F_∞, F_∞ the mean of
    the last quarter), its terms, the Gibbs gap, the entropy and the temperature."""
    from mfsim_analysis.plots import stationary_value

    path = run_mfsim(tmp_path / "langevin.h5", data__dim=1, flow__integrator="euler", flow__temperature=0.02,
                     flow__weight_decay=0.5, flow__steps=200, diagnostics__knn_k=3, diagnostics__every=20,
                     diagnostics__knn_every=20)
    with open_run(path) as run:
        f = run.observables["free_energy"]
        fig = dashboard(run)
        assert {"free_energy", "free_energy_terms", "gibbs", "entropy", "temperature"} <= set(fig.panels)
        gap_ax = next(ax for ax in fig.axes if ax.get_title().startswith("Free energy gap"))
        assert gap_ax.get_yscale() == "log"
        drawn = gap_ax.get_lines()[0].get_ydata()
        np.testing.assert_allclose(drawn, f.value - stationary_value(f.time, f.value))
        assert stationary_value([0, 1, 2, 3], [4, 3, 2, 1]) == pytest.approx(1.0)
        gibbs_ax = next(ax for ax in fig.axes if ax.get_title().startswith("Distance to the proximal"))
        assert gibbs_ax.get_yscale() == "log"

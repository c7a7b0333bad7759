"""Sweeps that do not mislead: t=T past a run's end, fits only on request (with CI and R²), one y
axis per quantity, ticks at the grid values, short file names, the few-runs warning; and
`launch --link`."""

import json

import numpy as np
import pytest
from conftest import CONFIG, run_cli_here
from test_curves import check_figure_structure

from mfsim_analysis import fit_power_law, open_run
from mfsim_analysis.launch import Plan
from mfsim_analysis.sweep import PastEnd, plot_sweep, sweep


def test_a_time_past_the_end_is_an_error_naming_the_run(width_runs):
    runs = [open_run(p) for p in width_runs]
    with pytest.raises(PastEnd, match=rf"{width_runs[0]}: t=40:loss is past the run's end .* t = 2\b"):
        sweep(runs, "model.width", ["t=40:loss"])
    result = run_cli_here("sweep", *width_runs, "--x", "model.width", "--y", "t=40:loss")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "past the run's end" in result.stderr
    assert sweep(runs, "model.width", ["t=2:loss"]).rows  # the last observation itself is fine
    # --past-end exclude: the runs that end earlier are left out, each named in a warning.
    longer = run_cli_here("sweep", *width_runs, "--x", "model.width", "--y", "t=40:loss", "--past-end", "exclude")
    assert longer.returncode == 2 and "no run is left" in longer.stderr
    s = sweep(runs[:2], "model.width", ["final:loss"])
    assert s.warnings == [] and len(s.rows) == 2


def test_past_end_exclude_keeps_the_runs_that_reach_t(width_runs, tmp_path):
    from conftest import run_mfsim

    long_run = run_mfsim(tmp_path / "long.h5", model__width=32, init__seed=3, flow__t_end=3.0)
    result = run_cli_here("sweep", *width_runs, long_run, "--x", "model.width", "--y", "t=3:loss",
                          "--past-end", "exclude", "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert [r["file"] for r in s["rows"]] == [str(long_run)]
    with open_run(long_run) as run:
        assert s["rows"][0]["t=3:loss"] == run.observables["loss"].final
    assert len(s["warnings"]) == len(width_runs) and all("past the run's end" in w for w in s["warnings"])
    assert result.stderr.count("warning: left out") == len(width_runs)


def test_no_fit_unless_asked_and_then_with_ci_and_r2(width_runs, tmp_path):
    runs = [open_run(p) for p in width_runs]
    plain = sweep(runs, "model.width", ["final:loss"], stat="mean")
    assert plain.fits == {} and plain.fit_errors == {}
    fig = check_figure_structure(plot_sweep(plain))
    assert not any("fit" in ln.get_label() for ax in fig.axes for ln in ax.get_lines())
    fitted = sweep(runs, "model.width", ["final:loss"], stat="mean", fit=True)
    expect = fit_power_law([r["x"] for r in fitted.rows], [r["final:loss"] for r in fitted.rows])
    assert fitted.fits["final:loss"].slope == pytest.approx(expect.slope)
    fig = check_figure_structure(plot_sweep(fitted), fits_allowed=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    f = fitted.fits["final:loss"]
    assert f"fit: slope {f.slope:+.2f} [{f.ci[0]:+.2f}, {f.ci[1]:+.2f}], R² {f.r2:.2f}" in labels
    table = run_cli_here("sweep", *width_runs, "--x", "model.width", "--y", "final:loss", "--stat", "mean")
    assert table.returncode == 0 and "fit" not in table.stdout


def test_one_axis_per_quantity_grid_ticks_and_few_runs_warning(width_runs, tmp_path):
    runs = [open_run(p) for p in width_runs]
    s = sweep(runs, "model.width", ["t=1:loss", "final:test_loss"], stat="mean")
    assert s.warnings == ["error bars from fewer than 3 runs at model.width = 32: 2, 64: 2, 128: 2"]
    fig = check_figure_structure(plot_sweep(s))
    data_axes = [ax for ax in fig.axes if ax.get_lines()]
    assert [ax.get_ylabel() for ax in data_axes] == ["mean(t=1:loss)", "mean(final:test_loss)"]
    ticks = [t.get_text() for t in data_axes[-1].get_xticklabels()]
    assert ticks == ["32", "64", "128"]
    assert "warning: error bars from fewer than 3 runs" in fig._suptitle.get_text()
    for ax in data_axes:  # the whole label on one line
        assert "\n" not in ax.get_ylabel()
    # Single runs (no error bars): no warning.
    assert not sweep(runs, "model.width", ["final:loss"]).warnings
    result = run_cli_here("sweep", *width_runs, "--x", "model.width", "--y", "t=1:loss", "--y", "final:test_loss",
                          "--stat", "mean", "-o", tmp_path)
    assert result.returncode == 0 and (tmp_path / "sweep_loss_test_loss_vs_width.png").is_file()
    assert "warning: error bars from fewer than 3 runs" in result.stderr


def test_hues_share_colours_by_value_and_are_shifted_apart(width_runs):
    runs = [open_run(p) for p in width_runs]
    s = sweep(runs, "model.width", ["final:loss"], hue="init.seed")
    fig = plot_sweep(s)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("init.seed")]
    assert len(lines) == 2 and lines[0].get_color() != lines[1].get_color()
    x0, x1 = lines[0].get_xdata(), lines[1].get_xdata()
    assert np.all(x0 < x1) and np.allclose(np.sqrt(x0 * x1), [32, 64, 128])  # symmetric about the grid


def test_launch_link_ties_a_key_to_a_grid_key(tmp_path):
    plan = Plan.grid(CONFIG, {"model.width": [8, 16]}, seeds=2, link={"model.head_width": "model.width"},
                     out=tmp_path)
    assert [(r.overrides["model.width"], r.overrides["model.head_width"]) for r in plan.runs] == \
        [(8, 8), (8, 8), (16, 16), (16, 16)]
    assert [r.path.name for r in plan.runs] == ["width=8_seed=1.h5", "width=8_seed=2.h5", "width=16_seed=1.h5",
                                                "width=16_seed=2.h5"]
    dry = run_cli_here("launch", CONFIG, "--grid", "model.width=8,16", "--link", "model.head_width=model.width",
                       "-o", tmp_path, "--dry-run")
    assert dry.returncode == 0 and "model.width=16 model.head_width=16" in dry.stdout
    for link, fragment in (("model.head_width=model.depth", "is not a --grid key"),
                           ("model.width=model.width", "also set by --grid"),
                           ("head_width", "expected SECTION.KEY=SECTION.GRID_KEY")):
        bad = run_cli_here("launch", CONFIG, "--grid", "model.width=8,16", "--link", link, "-o", tmp_path / "x",
                           "--dry-run")
        assert bad.returncode == 2 and fragment in bad.stderr and bad.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()

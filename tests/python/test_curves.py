"""`curves`: seed-averaged time courses, checked against means and bands computed here from the
files with h5py and numpy, and the figure's structure (labels, legend inside the figure, readable
log ticks, the few-seeds warning)."""

import json
import re

import h5py
import numpy as np
import pytest
from conftest import run_cli_here, run_mfsim
from scipy import stats

from mfsim_analysis import curves
from mfsim_analysis.ticks import log_ticks


def _loss(path, name="loss"):
    with h5py.File(path, "r") as f:
        return f[f"observables/{name}/time"][:], f[f"observables/{name}/value"][:]


def _config_key(path, key, value):
    """Rewrites `key = ...` in the copy's resolved config (the section's first such line)."""
    section, name = key.split(".")
    with h5py.File(path, "r+") as f:
        text = f["parameters"].attrs["config_resolved"]
        head, sep, rest = text.partition(f"[{section}]\n")
        rest = re.sub(rf"^{name} = .*$", f"{name} = {value}", rest, count=1, flags=re.M)
        f["parameters"].attrs["config_resolved"] = head + sep + rest


def _synthetic(small_run, folder, width, seed, times, values):
    """A copy of a real run whose loss is the given series and whose model.width is `width`."""
    path = folder / f"w{width}_s{seed}.h5"
    path.write_bytes(small_run.read_bytes())
    _config_key(path, "model.width", width)
    with h5py.File(path, "r+") as f:
        f.attrs["committed_step"] = np.int64(10**9)
        for part in ("step", "time", "value"):
            del f[f"observables/loss/{part}"]
        f["observables/loss/step"] = np.arange(len(times), dtype=np.int64)
        f["observables/loss/time"] = np.asarray(times, dtype=float)
        f["observables/loss/value"] = np.asarray(values, dtype=float)
    return path


@pytest.mark.parametrize("band", ["se", "ci95", "range"])
def test_means_and_bands_of_real_runs(width_runs, band):
    c = curves(width_runs, ["loss", "test_loss"], "model.width", band=band)
    assert [g.value for g in c.groups] == [32, 64, 128] and [g.runs for g in c.groups] == [2, 2, 2]
    for g in c.groups:
        files = [p for p in width_runs if f"/m{g.value}_" in str(p)]
        assert sorted(g.files) == sorted(map(str, files))
        for name in ("loss", "test_loss"):
            series = [_loss(p, name) for p in files]
            v = np.stack([s[1] for s in series])
            np.testing.assert_array_equal(g.time, series[0][0])
            np.testing.assert_allclose(g.mean[name], (v[0] + v[1]) / 2, rtol=1e-14)
            if band == "range":
                lo, hi = np.minimum(v[0], v[1]), np.maximum(v[0], v[1])
            else:
                # Two runs: s = |v0 − v1|/√2, s/√n = |v0 − v1|/2; t_{0.975, 1} = 12.706...
                half = np.abs(v[0] - v[1]) / 2 * (stats.t.ppf(0.975, 1) if band == "ci95" else 1)
                lo, hi = g.mean[name] - half, g.mean[name] + half
            np.testing.assert_allclose(g.lo[name], lo, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(g.hi[name], hi, rtol=1e-12, atol=1e-15)
    assert c.warnings == ["bands from fewer than 3 seeds: model.width = 32 (2), 64 (2), 128 (2)"]


def test_runs_observed_at_different_times_share_a_grid(small_run, tmp_path):
    # Linear series: interpolation is exact, so the mean is known in closed form at any time.
    t_a, t_b, t_c = np.linspace(0, 4, 9), np.linspace(0, 3, 7), np.linspace(0.5, 4, 8)
    slopes, offsets = (1.0, 2.0, 4.0), (3.0, 1.0, 2.0)
    files = [_synthetic(small_run, tmp_path, 8, s, t, o + k * t)
             for s, (t, k, o) in enumerate(zip((t_a, t_b, t_c), slopes, offsets))]
    c = curves(files, "loss", "width", band="range")
    (g,) = c.groups
    assert g.value == 8 and g.runs == 3
    np.testing.assert_allclose(g.time, np.unique(np.concatenate([t[(t >= 0.5) & (t <= 3)] for t in (t_a, t_b, t_c)])))
    np.testing.assert_allclose(g.mean["loss"], np.mean(offsets) + np.mean(slopes) * g.time, rtol=1e-13)
    per_run = np.stack([o + k * g.time for k, o in zip(slopes, offsets)])
    np.testing.assert_allclose(g.lo["loss"], per_run.min(axis=0), rtol=1e-13)
    np.testing.assert_allclose(g.hi["loss"], per_run.max(axis=0), rtol=1e-13)
    assert any("the curve stops at 3" in w for w in c.warnings)


def test_time_scale_by_beta_squared(tmp_path):
    files = [run_mfsim(tmp_path / f"b{b}.h5", model__beta=b, flow__t_end=0.5) for b in (1, 4)]
    c = curves(files, "loss", "model.beta", time_scale="beta^2")
    assert [g.value for g in c.groups] == [1.0, 4.0]
    for g, b, path in zip(c.groups, (1, 4), files):
        t, v = _loss(path)
        np.testing.assert_allclose(g.time, t * b**2, rtol=1e-15)
        np.testing.assert_array_equal(g.mean["loss"], v)
        assert np.all(np.isnan(g.lo["loss"]))  # one run: no band
    assert curves(files, "loss", "model.beta", time_scale="model.beta**2").groups[1].time[-1] == pytest.approx(8.0)


def _visible_labels(ax, which):
    lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
    labels = ax.get_yticklabels() if which == "y" else ax.get_xticklabels()
    pos = ax.get_yticks() if which == "y" else ax.get_xticks()
    return [lab.get_text() for lab, p in zip(labels, pos)
            if lab.get_text() and lab.get_visible() and min(lo, hi) <= p <= max(lo, hi)]


def _labels_shown(ax, which):
    """False for the x axis of a panel whose tick labels are hidden (a shared axis above another)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    return any(t.label1.get_visible() for t in axis.get_major_ticks())


def check_figure_structure(fig, *, fits_allowed=False):
    """Every data axis labelled; the legend inside the figure and off the data; ≥ 3 tick labels
    on each log axis; no fitted line unless asked."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    data_axes = [ax for ax in fig.axes if ax.get_lines() or ax.collections]
    assert data_axes and _labels_shown(data_axes[-1], "x")
    for ax in data_axes:
        assert ax.get_ylabel().strip()
        if ax.xaxis.get_label_position() and ax.get_xlabel():
            assert "\n" not in ax.get_xlabel()
        for which in ("x", "y"):
            if (ax.get_xscale() if which == "x" else ax.get_yscale()) == "log" and _labels_shown(ax, which):
                assert len(_visible_labels(ax, which)) >= 3, (which, _visible_labels(ax, which))
        if not fits_allowed:
            assert not [ln for ln in ax.get_lines() if ln.get_label().startswith("fit")]
    assert data_axes[-1].get_xlabel().strip()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends
    for legend in legends:
        lb = legend.get_window_extent(renderer)
        assert box.x0 - 1 <= lb.x0 and lb.x1 <= box.x1 + 1 and box.y0 - 1 <= lb.y0 and lb.y1 <= box.y1 + 1
        for ax in data_axes:
            assert not ax.get_window_extent(renderer).overlaps(lb)  # outside the data
    return fig


def test_figure_structure_and_few_seed_warning(width_runs, small_run, tmp_path):
    import matplotlib.pyplot as plt

    c = curves(width_runs, ["loss", "test_loss"], "model.width", band="ci95")
    fig = check_figure_structure(c.plot(xscale="log"))
    texts = [t.get_text() for t in fig.texts] + [fig._suptitle.get_text() if fig._suptitle else ""]
    assert any("fewer than 3 seeds" in t for t in texts)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["32  (2 seeds (few))", "64  (2 seeds (few))", "128  (2 seeds (few))"]
    colours = [ln.get_color() for ln in fig.axes[0].get_lines()]
    assert len({tuple(np.round(np.asarray(matplotlib_rgba(col)), 6)) for col in colours}) == 3
    plt.close(fig)
    # Three seeds a group: no warning.
    files = [_synthetic(small_run, tmp_path, w, s, np.linspace(0, 1, 5), np.exp(-np.linspace(0, 1, 5)) * (s + w))
             for w in (10, 20) for s in (1, 2, 3)]
    c3 = curves(files, "loss", "width")
    assert c3.warnings == []
    fig3 = check_figure_structure(c3.plot())
    assert not any("fewer" in t.get_text() for t in fig3.texts) and not fig3._suptitle
    plt.close(fig3)


def matplotlib_rgba(colour):
    from matplotlib.colors import to_rgba

    return to_rgba(colour)


def test_log_ticks_are_at_least_three():
    for lo, hi in ((256, 4096), (0.3, 0.9), (0.31, 0.33), (1e-6, 1.0), (1e-12, 1e3), (5, 7)):
        ticks = log_ticks(lo, hi)
        assert len(ticks) >= 3 and all(lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9) for t in ticks), (lo, hi, ticks)
        assert len(ticks) <= 10
    assert log_ticks(256, 4096) == [300, 1000, 3000]
    assert log_ticks(256, 1024) == [300, 500, 1000]


def test_curves_command(width_runs, tmp_path):
    out = tmp_path / "figs"
    result = run_cli_here("curves", *width_runs, "--y", "loss", "--group", "model.width", "--band", "range",
                          "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plot"] == str(out / "curves_loss_by_width.png") and (out / "curves_loss_by_width.png").is_file()
    assert [g["runs"] for g in data["groups"]] == [2, 2, 2]
    assert "warning: bands from fewer than 3 seeds" in result.stderr
    g = data["groups"][0]
    v = np.stack([_loss(p)[1] for p in width_runs if "/m32_" in str(p)])
    np.testing.assert_allclose(g["lo"]["loss"], v.min(axis=0))


def test_curves_bad_input_is_one_line(width_runs, tmp_path):
    for args, fragment in (((*width_runs, "--y", "nope", "--group", "model.width"), "no observable 'nope'"),
                           ((*width_runs, "--y", "loss", "--group", "model.nope"), "model.nope"),
                           ((*width_runs, "--y", "loss", "--group", "width", "--band", "sd"), "invalid choice"),
                           ((*width_runs, "--y", "loss", "--group", "width", "--time-scale", "gamma^2"), "gamma")):
        result = run_cli_here("curves", *args, "-o", tmp_path / "x")
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
        assert not (tmp_path / "x").exists()


def test_unreliable_estimates_are_dashed_and_announced(small_run, tmp_path):
    files = []
    for s in (1, 2, 3):
        path = _synthetic(small_run, tmp_path, 8, s, np.linspace(0, 2, 5), np.linspace(1, 2, 5) * s)
        with h5py.File(path, "r+") as f:
            g = f["observables"].create_group("loss_reliable")
            g["step"], g["time"] = np.arange(5, dtype=np.int64), np.linspace(0, 2, 5)
            g["value"] = np.array([1, 1, 1, 1, 0.0 if s == 2 else 1.0])  # run 2's last row unreliable
        files.append(path)
    c = curves(files, "loss", "width")
    np.testing.assert_array_equal(c.groups[0].reliable["loss"], [True, True, True, True, False])
    assert any("flagged unreliable by some run at 1 of 5 times" in w for w in c.warnings)
    fig = c.plot()
    dashed = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and np.isfinite(dashed[0].get_ydata()[-1])
    assert "dashed: unreliable" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_overlay_time_scale_and_the_time_hint(tmp_path):
    from mfsim_analysis import open_run
    from mfsim_analysis.plots import overlay

    files = [run_mfsim(tmp_path / f"b{b}.h5", model__beta=b, flow__t_end=0.5) for b in (1, 4)]
    runs = [open_run(p) for p in files]
    fig = overlay(runs, time_scale="beta^2")
    ax = fig.axes[fig.panels.index("loss")]
    assert ax.get_xlabel() == "t · beta^2"
    ends = sorted(ln.get_xdata()[-1] for ln in ax.get_lines())
    assert ends[0] == pytest.approx(0.5) and ends[-1] == pytest.approx(8.0)
    result = run_cli_here("sweep", *files, "--x", "time", "--y", "loss")
    assert result.returncode == 2 and "against flow time: mfsim-analysis curves" in result.stderr

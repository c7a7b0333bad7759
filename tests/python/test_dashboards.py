"""Dashboards that do not mislead: the bound (A12) on the loss axes only within a decade of the
loss, movement only from 3 snapshots, notes off the data, per-layer observables as heat maps."""

import h5py
import numpy as np
from conftest import run_mfsim

from mfsim_analysis import open_run
from mfsim_analysis.plots import dashboard, particle_view


def _with_bound(small_run, path, factor):
    path.write_bytes(small_run.read_bytes())
    with h5py.File(path, "r+") as f:
        loss = f["observables/loss"]
        g = f["observables"].create_group("loss_bound")
        for part in ("step", "time"):
            g[part] = loss[part][:]
        g["value"] = loss["value"][:] * factor
    return path


def test_the_bound_shares_the_loss_axes_only_near_the_loss(small_run, tmp_path):
    for factor, apart in ((3.0, False), (1e3, True)):
        with open_run(_with_bound(small_run, tmp_path / f"b{factor:g}.h5", factor)) as run:
            fig = dashboard(run)
            loss_lines = [ln.get_label() for ln in fig.axes[fig.panels.index("loss")].get_lines()]
            assert any(label.startswith("bound") for label in loss_lines) != apart
            assert ("bound" in fig.panels) == apart
            if apart:
                ratio = fig.axes[fig.panels.index("bound")].get_lines()[0].get_ydata()
                np.testing.assert_allclose(ratio, factor)


def test_movement_needs_three_snapshots(tmp_path):
    two = run_mfsim(tmp_path / "two.h5", output__snapshot_every=1000)
    with open_run(two) as run:
        assert len(run.particles["two_layer"]) == 2
        fig = particle_view(run, "two_layer", frames=2)
        ax = next(a for a in fig.axes if a.get_title().startswith("movement"))
        assert not ax.get_lines() and "needs ≥ 3" in ax.texts[0].get_text()
    three = run_mfsim(tmp_path / "three.h5", output__snapshot_every=20)
    with open_run(three) as run:
        assert len(run.particles["two_layer"]) == 3
        fig = particle_view(run, "two_layer", frames=2)
        ax = next(a for a in fig.axes if a.get_title().startswith("movement"))
        assert len(ax.get_lines()[0].get_xdata()) == 3


def test_the_rademacher_note_sits_in_the_legend(tmp_path):
    tanh = run_mfsim(tmp_path / "tanh.h5", diagnostics__path_norm="true")
    with open_run(tanh) as run:
        fig = dashboard(run)
        ax = fig.axes[fig.panels.index("norms")]
        assert not ax.texts  # nothing written over the curves
        assert "Rademacher bound not drawn" in ax.get_legend().get_title().get_text()


def test_per_layer_observables_are_heat_maps(tmp_path):
    path = run_mfsim(tmp_path / "resnet.h5", model__kind='"resnet"', model__depth=3, model__width=16,
                     model__head_width=16, model__activation='"tanh"', diagnostics__kl='["transport"]')
    with open_run(path) as run:
        fig = dashboard(run)
        panel = "layers:kl_blocks_transport_layers"
        assert panel in fig.panels
        ax = fig.axes[fig.panels.index(panel)]
        (mesh,) = ax.collections
        value = run.observables["kl_blocks_transport_layers"].value
        np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(value.T.shape), value.T)
        assert ax.get_ylabel() == "layer l" and ax.get_xlabel() == "flow time t"
        kl = fig.axes[fig.panels.index("kl")]
        assert not any("layer" in ln.get_label() for ln in kl.get_lines())


def test_overlay_of_many_runs_has_one_legend_beside_the_panels(width_runs):
    from mfsim_analysis.plots import overlay, run_colours

    for count in (3, 12, 25):
        colours = [str(c) for c in run_colours(count)]
        assert len(set(colours)) == count  # no colour repeats
    runs = [open_run(p) for p in width_runs]
    fig = overlay(runs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "width=32, seed=1", "width=32, seed=2", "width=64, seed=1", "width=64, seed=2", "width=128, seed=1",
        "width=128, seed=2"]
    box, lb = fig.bbox, legend.get_window_extent(renderer)
    assert box.x0 <= lb.x0 and lb.x1 <= box.x1 and box.y0 <= lb.y0 and lb.y1 <= box.y1
    for ax in fig.axes:
        assert not ax.get_window_extent(renderer).overlaps(lb)
        assert ax.get_window_extent(renderer).height > 100  # no panel squeezed flat
    loss = fig.axes[fig.panels.index("loss")]
    assert loss.get_yscale() == "log"
    labels = [t.get_text() for t in loss.get_yticklabels() if t.get_text()]
    lo, hi = loss.get_ylim()
    assert len([p for p in loss.get_yticks() if lo <= p <= hi]) >= 3 and len(labels) >= 3
    # the panel's own legend names the line styles only (training, test), not the runs
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["training loss", "test loss"]


def test_many_layers_get_bands_not_error_bars(tmp_path):
    path = run_mfsim(tmp_path / "deep.h5", model__kind='"resnet"', model__depth=16, model__width=4,
                     model__head_width=8, init__antithetic="false")
    with open_run(path) as run:
        fig = particle_view(run, "resnet_blocks", frames=2)
        layer_panels = [ax for ax in fig.axes if ax.get_title().endswith("per layer") and ax.get_xlabel() == "layer l"]
        assert layer_panels
        for ax in layer_panels:
            if ax.get_title().startswith("movement"):
                continue
            assert not ax.containers and ax.collections  # a line and a ±std band per time, no error bars

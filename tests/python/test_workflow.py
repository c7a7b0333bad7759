"""The researcher workflow: the sweep launcher, sweep post-processing, numeric /parameters, the kNN bias
observables and the corrected Rademacher bound, on files the mfsim binary writes."""

import json

import h5py
import numpy as np
import pytest
from conftest import SMALL, run_cli_here, run_mfsim
from scipy import spatial, special

from mfsim_analysis import open_run
from mfsim_analysis.plots import dashboard, particle_view


def _sets():
    return [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    from conftest import CONFIG

    out = tmp_path_factory.mktemp("launch")
    args = ["launch", CONFIG, "--grid", "model.width=32,64,128", "--seeds", "2", *_sets(),
            "--set", "diagnostics.gram=true", "-o", out, "-q"]
    result = run_cli_here(*args)
    assert result.returncode == 0, result.stderr
    return out, args


def test_launch_runs_the_grid_writes_an_index_and_skips_what_is_up_to_date(launched):
    out, args = launched
    index = json.loads((out / "index.json").read_text())
    assert [r["status"] for r in index["runs"]] == ["ran"] * 6
    for r in index["runs"]:
        with h5py.File(out / r["file"], "r") as f:  # the file's own config, read independently
            config = f["parameters"].attrs["config_resolved"]
        assert f"width = {r['overrides']['model.width']}" in config
        assert f"seed = {r['overrides']['init.seed']}" in config
    again = run_cli_here(*args)
    assert again.returncode == 0 and "0 ran, 6 skipped" in again.stdout
    # a changed config (not only the end time) reruns
    changed = run_cli_here(*[a if a != "flow.dt=0.05" else "flow.dt=0.04" for a in args])
    assert changed.returncode == 0 and "6 ran, 0 skipped" in changed.stdout
    run_cli_here(*args)  # back to the original files for the other tests


def test_a_missing_mfsim_given_is_an_error_not_a_fallback(tmp_path):
    """--mfsim PATH that does not exist is refused (one line, exit 2), even though
    $MFSIM_EXECUTABLE names a binary: the experiments share this finder."""
    from conftest import CONFIG

    result = run_cli_here("launch", CONFIG, "--grid", "model.width=32", *_sets(), "-o", tmp_path,
                          "--mfsim", tmp_path / "no-such-mfsim", "-q")
    assert result.returncode == 2 and "no mfsim binary at" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_sweep_expressions_error_bars_and_slope(launched):
    out, _ = launched
    result = run_cli_here("sweep", out, "--x", "model.width", "--y", "test_loss-loss", "--y",
                          "final:loss/ntk_lambda0", "--stat", "mean", "--fit", "power", "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    by_width = {}
    for path in sorted((out / "runs").glob("*.h5")):
        with h5py.File(path, "r") as f:
            width = int(path.name.split("_")[0].split("=")[1])
            loss, test = f["observables/loss/value"][-1], f["observables/test_loss/value"][-1]
            lam0 = f["parameters"].attrs["ntk_lambda0"]
            assert isinstance(lam0, (float, np.floating))  # a numeric attribute, not text
            by_width.setdefault(width, []).append((test - loss, loss / lam0))
    for row in s["rows"]:
        v = np.array(by_width[row["x"]])
        assert row["test_loss-loss"] == pytest.approx(v[:, 0].mean(), rel=1e-12)
        sem = v[:, 0].std(ddof=1) / np.sqrt(len(v))
        assert row["test_loss-loss:hi"] - row["test_loss-loss"] == pytest.approx(sem, rel=1e-9)
        assert row["final:loss/ntk_lambda0"] == pytest.approx(v[:, 1].mean(), rel=1e-12)
    fit = s["fits"]["final:loss/ntk_lambda0"]
    lx = np.log10([r["x"] for r in s["rows"]])
    ly = np.log10([r["final:loss/ntk_lambda0"] for r in s["rows"]])
    assert fit["slope"] == pytest.approx(np.polyfit(lx, ly, 1)[0])
    boot = run_cli_here("sweep", out, "--x", "model.width", "--y", "loss", "--stat", "mean", "--err", "bootstrap",
                        "--hue", "init.seed", "--fit", "power", "--json")
    assert boot.returncode == 0, boot.stderr
    b = json.loads(boot.stdout)
    assert {r["hue"] for r in b["rows"]} == {1, 2} and len(b["fits"]) == 2


def test_sweep_plot_has_labels_error_bars_and_slope(launched, tmp_path):
    import matplotlib.image

    out, _ = launched
    result = run_cli_here("sweep", out, "--x", "model.width", "--y", "t=1:loss", "--stat", "mean", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    png = next(tmp_path.glob("sweep_*.png"))
    assert matplotlib.image.imread(png).shape[0] > 100


def test_knn_observables_error_bars_flags_and_warning(tmp_path):
    import subprocess

    from conftest import mfsim_command

    from mfsim_analysis import plots

    path = tmp_path / "knn.h5"
    command = mfsim_command(path, diagnostics__kl='["knn", "transport"]', diagnostics__knn_k=3,
                            model__activation='"softplus"')
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # 64 particles in D = 5: every kNN estimate is flagged, and announced once on stderr
    for name in ("kl_knn", "kl_knn_corrected", "kl_knn_two_sample"):
        assert result.stderr.count(f"warning: {name} = ") == 1, result.stderr
    with open_run(path) as run:
        o = run.observables
        bias, knn, corrected = (o[k].value for k in ("kl_knn_bias_t0", "kl_knn", "kl_knn_corrected"))
        assert np.all(bias == bias[0]) and bias[0] == pytest.approx(knn[0], rel=1e-12)
        np.testing.assert_allclose(corrected, knn - bias[0], rtol=0, atol=1e-14)
        for name in ("kl_knn", "kl_knn_corrected", "kl_knn_two_sample", "kl_transport"):
            assert np.all(np.isin(o[f"{name}_reliable"].value, (0.0, 1.0)))
            assert np.all(o[f"{name}_stderr"].value > 0) or name == "kl_transport"
        assert np.all(o["kl_knn_reliable"].value == 0)
        # Kozachenko–Leonenko on frame 0, whitened by the initial stds, recomputed with scipy, and
        # its standard error: the spread of the per-particle terms over √n
        g = run.particles["two_layer"]
        x = g.frame(0).value / g.init_std
        n, d, k = x.shape[0], x.shape[1], 3
        eps = spatial.cKDTree(x).query(x, k + 1)[0][:, k]
        log_vd = d / 2 * np.log(np.pi) - special.gammaln(d / 2 + 1)
        h = special.digamma(n) - special.digamma(k) + log_vd + d * np.mean(np.log(eps))
        expect = -h + d / 2 * np.log(2 * np.pi) + np.mean(np.sum(x**2, axis=1)) / 2
        assert bias[0] == pytest.approx(expect, rel=1e-9)
        terms = np.sum(x**2, axis=1) / 2 - d * np.log(eps)
        assert o["kl_knn_stderr"].value[0] == pytest.approx(np.std(terms, ddof=1) / np.sqrt(n), rel=1e-9)
        # The dashboard draws the unreliable kNN curves dashed and grey
        fig = plots.dashboard(run)
        dashed_grey = [line for ax in fig.axes for line in ax.get_lines()
                       if line.get_linestyle() == "--" and line.get_color() == "0.6"]
        assert dashed_grey
        assert not any(line.get_label().startswith("kl_knn_stderr") for ax in fig.axes for line in ax.get_lines())


def test_rademacher_bound_is_positive_for_one_input_coordinate(tmp_path):
    path = run_mfsim(tmp_path / "d1.h5", data__dim=1, model__bias="false", model__activation='"relu"',
                     diagnostics__path_norm="true")
    with open_run(path) as run:
        p1 = run.observables["path_norm_l1"].final
        n = run.data.x_train.shape[0]
        bound = run.observables["rademacher_bound"].final
        assert bound > 0 and bound == pytest.approx(2 * p1 * np.sqrt(2 * np.log(2) / n), rel=1e-12)


def test_rademacher_drawn_only_for_relu(tmp_path):
    tanh = run_mfsim(tmp_path / "tanh.h5", diagnostics__path_norm="true")
    relu = run_mfsim(tmp_path / "relu.h5", diagnostics__path_norm="true", model__activation='"relu"')
    for path, drawn in ((tanh, False), (relu, True)):
        with open_run(path) as run:
            fig = dashboard(run)
            ax = fig.axes[fig.panels.index("norms")]
            labels = [line.get_label() for line in ax.get_lines()]
            assert any(label.startswith("Rademacher") for label in labels) == drawn


def test_resnet_dashboard_and_particle_views(tmp_path):
    path = run_mfsim(tmp_path / "resnet.h5", model__kind='"resnet"', model__depth=2, model__width=16,
                     model__head_width=32, diagnostics__kl='["transport", "knn"]', diagnostics__knn_k=3,
                     diagnostics__gram="true", diagnostics__path_norm="true", init__antithetic="true")
    with open_run(path) as run:
        fig = dashboard(run)
        title = fig._suptitle.get_text()
        assert all(part in title for part in ("L=2", "M=16", "K=32", "α=", "β="))
        weighted = fig.axes[fig.panels.index("weighted_norm")]
        assert weighted.get_yscale() == "log"
        norms = fig.axes[fig.panels.index("norms")]
        assert not any(line.get_label().startswith("path_norm_weighted") for line in norms.get_lines())
        kl = fig.axes[fig.panels.index("kl")]
        values = np.concatenate([line.get_ydata() for line in kl.get_lines()])
        assert kl.get_yscale() == ("symlog" if np.any(values < 0) else "log")
        legend = kl.get_legend()
        fig.canvas.draw()
        assert legend.get_window_extent().x0 >= kl.get_window_extent().x1  # outside the data
        styles = {line.get_label(): line.get_linestyle() for line in kl.get_lines()}
        # 8 particles per layer: every kNN estimate is flagged, drawn dashed grey as "unreliable"
        assert styles["KL blocks, transport"] == styles["KL head, transport"] != styles["KL blocks, k-NN (unreliable)"]
        assert styles["KL blocks, k-NN (unreliable)"] == "--"
        ratio = fig.axes[fig.panels.index("gram_ratio")].get_lines()[0].get_ydata()
        lam = run.observables["gram_lambda_min"].value
        np.testing.assert_allclose(ratio, lam / (run.ntk_gram_scale * run.lambda0))
        gram = fig.axes[fig.panels.index("gram")]
        ls = {line.get_label(): line.get_linestyle() for line in gram.get_lines()}
        assert len({ls["λ_min(G)"], ls["λ_max(G)"], next(v for k, v in ls.items() if k.startswith("β²λ₀"))}) == 3
        blocks = particle_view(run, "resnet_blocks", frames=2)
        assert any(ax.get_ylabel() == "layer l" for ax in blocks.axes)  # the colour bar
        texts = [t.get_text() for t in blocks.texts]
        assert any("clipped to the 0.5–99.5 percentiles" in t for t in texts)
        legend = blocks.axes[0].get_legend()
        assert legend is not None and "antithetic twin (u → −u)" in [t.get_text() for t in legend.get_texts()]
        everything = particle_view(run, "resnet_blocks", frames=2, clip=False)
        assert not any("clipped" in t.get_text() for t in everything.texts)

"""model.outputs = c > 1 (MATH.md §1.5) end to end: class labels through `mfsim data import`, runs
of the cross-entropy and of the square loss on one-hot targets, and the losses, accuracies and
margins they wrote recomputed in numpy from the stored particles; the runs whose labels do not
fit the loss and model.outputs are refused with exit 2 and one line naming the key; the analysis
package's figures of such runs, their labels and the data they draw."""

import subprocess

import h5py
import numpy as np
import pytest
from scipy.special import erf
from conftest import mfsim_command, mfsim_executable

from mfsim_analysis import curves, open_run, predict
from mfsim_analysis.plots import dashboard, overlay, particle_view

CLASSES = 3


def mfsim(*args):
    return subprocess.run([str(mfsim_executable()), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """60 points in R^4 labelled 0, 1, 2 by the argmax of a linear teacher (labels in column 4)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    y = np.argmax(x @ rng.normal(size=(4, CLASSES)), axis=1)
    path = tmp_path_factory.mktemp("multiclass") / "table.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,c,d,label", comments="")
    return path


def import_file(table, out, *options):
    r = mfsim("data", "import", table, "-o", out, "--test-fraction", "0.25", "--normalize-to-sphere",
              "--force", *options)
    assert r.returncode == 0, r.stderr
    return out


def run(tmp_path, name, data, loss, outputs, **extra):
    out = tmp_path / f"{name}.h5"
    overrides = dict(data__kind='"file"', data__path=f'"{data}"', model__loss=f'"{loss}"',
                     model__outputs=outputs, model__activation='"tanh"', model__beta=3.0,
                     output__snapshot_every=40, output__observe_every=40, flow__steps=40,
                     diagnostics__path_norm='true')
    overrides.update(extra)
    r = subprocess.run(mfsim_command(out, **overrides), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def outputs_of(f, theta, x):
    """f(x) = (β/m) Σ_k a_k tanh(w_k·x + b_k), a_k ∈ R^c: (n, c)."""
    c = int(f["parameters"].attrs["config_resolved"].split("outputs = ")[1].split("\n")[0])
    beta = float(f["parameters"].attrs["config_resolved"].split("beta = ")[1].split("\n")[0])
    a, w, b = theta[:, :c], theta[:, c:-1], theta[:, -1]
    return beta / len(theta) * np.tanh(x @ w.T + b) @ a


def test_class_labels_are_imported_as_indices(table, tmp_path):
    data = import_file(table, tmp_path / "d.h5")
    with h5py.File(data, "r") as f:
        assert f["data"].attrs["classes"] == CLASSES
        assert set(np.unique(f["data/train/y"][()])) == {0.0, 1.0, 2.0}
        assert str(f["parameters"].attrs["import_classes"]) == "3"
    chosen = import_file(table, tmp_path / "two.h5", "--classes", "2,0")
    with h5py.File(chosen, "r") as f:
        assert f["data"].attrs["classes"] == 2
        assert set(np.unique(f["data/train/y"][()])) == {0.0, 1.0}  # 2 -> 0, 0 -> 1
        assert f["parameters"].attrs["import_classes"] == "2 -> 0, 0 -> 1"
        n = len(f["data/train/y"]) + len(f["data/test/y"])
    raw = np.loadtxt(table, delimiter=",", skiprows=1)
    assert n == np.sum(raw[:, -1] != 1)
    hot = import_file(table, tmp_path / "hot.h5", "--one-hot")
    with h5py.File(hot, "r") as f, h5py.File(data, "r") as g:
        y = f["data/train/y"][()]
        assert y.shape == (45, CLASSES) and np.all(y.sum(axis=1) == 1)
        np.testing.assert_array_equal(np.argmax(y, axis=1), g["data/train/y"][()])


@pytest.mark.parametrize("loss", ["cross_entropy", "square"])
def test_run_recomputed_in_numpy(table, tmp_path, loss):
    data = import_file(table, tmp_path / "d.h5", *(["--one-hot"] if loss == "square" else []))
    path = run(tmp_path, loss, data, loss, CLASSES)
    with h5py.File(path, "r") as f:
        x, y = f["data/train/x"][()], f["data/train/y"][()]
        xt, yt = f["data/test/x"][()], f["data/test/y"][()]
        group = f["particles/two_layer/position"]
        obs = f["observables"]
        columns = [n.decode() if isinstance(n, bytes) else str(n) for n in group["value"].attrs["columns"]]
        assert columns == ["a_1", "a_2", "a_3", "w_1", "w_2", "w_3", "w_4", "b"]
        for frame, row in ((0, 0), (-1, -1)):
            theta = group["value"][frame]
            ft, fs = outputs_of(f, theta, x), outputs_of(f, theta, xt)

            def loss_of(fo, yo):
                if loss == "square":
                    return 0.5 * np.mean(np.sum((fo - yo) ** 2, axis=1))
                top = fo.max(axis=1)
                lse = top + np.log(np.exp(fo - top[:, None]).sum(axis=1))
                return np.mean(lse - fo[np.arange(len(fo)), yo.astype(int)])

            labels, test_labels = (np.argmax(y, axis=1), np.argmax(yt, axis=1)) if loss == "square" else (y, yt)
            assert loss_of(ft, y) == pytest.approx(obs["loss/value"][row], rel=1e-12)
            assert loss_of(fs, yt) == pytest.approx(obs["test_loss/value"][row], rel=1e-12)
            assert np.mean(np.argmax(ft, axis=1) == labels) == obs["train_accuracy/value"][row]
            assert np.mean(np.argmax(fs, axis=1) == test_labels) == obs["test_accuracy/value"][row]
            own = ft[np.arange(len(ft)), labels.astype(int)]
            others = np.where(np.eye(CLASSES, dtype=bool)[labels.astype(int)], -np.inf, ft).max(axis=1)
            margin = np.min(own - others)
            assert margin == pytest.approx(obs["margin/value"][row], rel=1e-12, abs=1e-14)
            beta = 3.0
            a, w = theta[:, :CLASSES], theta[:, CLASSES:]
            p2 = beta * np.mean(np.linalg.norm(a, axis=1) * np.linalg.norm(w, axis=1))
            assert margin / p2 == pytest.approx(obs["normalised_margin/value"][row], rel=1e-12, abs=1e-14)
            assert p2 == pytest.approx(obs["path_norm_l2/value"][row], rel=1e-12)
        assert obs["train_accuracy/value"][-1] > 0.5
    with open_run(path) as r:  # the analysis package's f(x): (n, c)
        np.testing.assert_allclose(predict(r, xt, -1), fs, rtol=1e-12, atol=1e-15)
    with h5py.File(path, "r") as f:
        scaling = f["parameters"].attrs["flow_scaling"]
        assert ("log sum_j exp" in scaling) == (loss == "cross_entropy")


def resnet_outputs_of(f, blocks, head, x):
    """Model B's f(x) = (β/K) Σ_k a_k erf(v_k·z_L), z_L from the tanh blocks (MATH.md §3.9): (n, c)."""
    config = f["parameters"].attrs["config_resolved"]
    value = lambda key: config.split(f"\n{key} = ")[1].split("\n")[0]
    c, depth, alpha, beta = int(value("outputs")), int(value("depth")), float(value("alpha")), float(value("beta"))
    d = x.shape[1]
    layers = blocks.reshape(depth, -1, 2 * d + 1)
    z = x.copy()
    for layer in layers:
        u, w, b = layer[:, :d], layer[:, d:2 * d], layer[:, 2 * d]
        z = z + alpha / (depth * len(layer)) * np.tanh(z @ w.T + b) @ u
    a, v = head[:, :c], head[:, c:]
    return beta / len(head) * erf(z @ v.T) @ a


@pytest.mark.parametrize("loss", ["cross_entropy", "square"])
def test_resnet_run_recomputed_in_numpy(table, tmp_path, loss):
    """Model B with c = 3: the stored particles' losses, accuracies and margin in numpy (1e-12),
    the head's coordinates a_1 … a_3, the dissipation identity, and a trained accuracy."""
    data = import_file(table, tmp_path / "d.h5", *(["--one-hot"] if loss == "square" else []))
    path = run(tmp_path, "resnet_" + loss, data, loss, CLASSES, model__kind='"resnet"', model__depth=3,
               model__width=16, model__head_width=64, model__head_activation='"erf"', flow__steps=200,
               output__observe_every=50, output__snapshot_every=200, diagnostics__gram="true")
    with h5py.File(path, "r") as f:
        x, y = f["data/train/x"][()], f["data/train/y"][()]
        xt, yt = f["data/test/x"][()], f["data/test/y"][()]
        head_group = f["particles/resnet_head/position"]
        columns = [n.decode() if isinstance(n, bytes) else str(n) for n in head_group["value"].attrs["columns"]]
        assert columns == ["a_1", "a_2", "a_3", "v_1", "v_2", "v_3", "v_4"]
        obs = f["observables"]
        labels, test_labels = (np.argmax(y, axis=1), np.argmax(yt, axis=1)) if loss == "square" else (y, yt)
        for frame, row in ((0, 0), (-1, -1)):
            blocks, head = f["particles/resnet_blocks/position/value"][frame], head_group["value"][frame]
            ft, fs = resnet_outputs_of(f, blocks, head, x), resnet_outputs_of(f, blocks, head, xt)
            if loss == "square":
                train_loss = 0.5 * np.mean(np.sum((ft - y) ** 2, axis=1))
            else:
                top = ft.max(axis=1)
                lse = top + np.log(np.exp(ft - top[:, None]).sum(axis=1))
                train_loss = np.mean(lse - ft[np.arange(len(ft)), y.astype(int)])
            assert train_loss == pytest.approx(obs["loss/value"][row], rel=1e-12)
            assert np.mean(np.argmax(ft, axis=1) == labels) == obs["train_accuracy/value"][row]
            assert np.mean(np.argmax(fs, axis=1) == test_labels) == obs["test_accuracy/value"][row]
            own = ft[np.arange(len(ft)), labels.astype(int)]
            others = np.where(np.eye(CLASSES, dtype=bool)[labels.astype(int)], -np.inf, ft).max(axis=1)
            assert np.min(own - others) == pytest.approx(obs["margin/value"][row], rel=1e-12, abs=1e-14)
        # (A11) with r ∈ R^{nc}: dL/dt = −rᵀGr/n² against the particles' speeds, at rounding level.
        assert np.max(np.abs(obs["energy_identity_error/value"][()])) < 1e-12
        assert obs["gram_lambda_min/value"][-1] > 0
        assert obs["train_accuracy/value"][-1] >= 0.8, obs["train_accuracy/value"][()]
        assert obs["loss/value"][-1] < obs["loss/value"][0]
        scaling = f["parameters"].attrs["flow_scaling"]
        assert "a_k in R^3" in scaling and ("log sum_j exp" in scaling) == (loss == "cross_entropy")
    with open_run(path) as r:  # the analysis package's f(x): (n, c), its title and head view
        np.testing.assert_allclose(predict(r, xt, -1), fs, rtol=1e-12, atol=1e-15)
        assert f"c=3 outputs, {loss} loss" in dashboard(r)._suptitle.get_text()
        view = particle_view(r, "resnet_head", frames=2).axes[0]  # the first frame's panel
        assert (view.get_xlabel(), view.get_ylabel()) == ("|a|", "|v|")
        points = np.concatenate([c.get_offsets() for c in view.collections])
        first = r.particles["resnet_head"].frame(0).value
        expected = np.column_stack([np.linalg.norm(first[:, :CLASSES], axis=1),
                                    np.linalg.norm(first[:, CLASSES:], axis=1)])
        np.testing.assert_allclose(np.sort(points, axis=0), np.sort(expected, axis=0), rtol=1e-12)


@pytest.mark.parametrize("options, overrides, key", [
    ([], dict(model__loss='"square"', model__outputs=1), "model.loss = \"cross_entropy\""),
    ([], dict(model__loss='"cross_entropy"', model__outputs=4), "set model.outputs = 3"),
    (["--one-hot"], dict(model__loss='"square"', model__outputs=2), "set model.outputs = 3"),
    (["--one-hot"], dict(model__loss='"cross_entropy"', model__outputs=3), "import without --one-hot"),
    ([], dict(model__loss='"cross_entropy"', model__outputs=1), "model.outputs"),
    ([], dict(model__loss='"logistic"', model__outputs=3), "model.outputs"),
    ([], dict(model__kind='"resnet"', model__loss='"cross_entropy"', model__outputs=4), "set model.outputs = 3"),
])
def test_labels_that_do_not_fit_are_refused(table, tmp_path, options, overrides, key):
    data = import_file(table, tmp_path / "d.h5", *options)
    out = tmp_path / "refused.h5"
    settings = dict(data__kind='"file"', data__path=f'"{data}"', **overrides)
    r = subprocess.run(mfsim_command(out, **settings), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and key in r.stderr, r.stderr
    assert not out.exists()


def test_synthetic_data_with_several_outputs_is_refused(tmp_path):
    out = tmp_path / "refused.h5"
    r = subprocess.run(mfsim_command(out, model__outputs=3), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "set model.outputs = 1" in r.stderr and not out.exists(), r.stderr


def test_npy_without_labels_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 3)))
    r = mfsim("data", "import", tmp_path / "x.npy", "-o", tmp_path / "d.h5")
    assert r.returncode == 2 and "--labels" in r.stderr and not (tmp_path / "d.h5").exists(), r.stderr
    r = mfsim("data", "import", tmp_path / "x.npy", "-o", tmp_path / "d.h5", "--label-column", "2")
    assert r.returncode == 0, r.stderr


def test_figures_of_several_outputs_draw_the_files_data_with_multiclass_labels(table, tmp_path):
    """Dashboard, overlay, particle view and curves of c = 3 runs: the curves drawn are the file's
    observables, the labels are those of argmax accuracy and the multi-class margin (not the
    sign of a scalar output), the normalised margin has axes of its own, and the particle view's
    |a| is the Euclidean norm of the output weights a_1 … a_c, with antithetic twins a → −a."""
    data = import_file(table, tmp_path / "d.h5")
    paths = [run(tmp_path, f"s{seed}", data, "cross_entropy", CLASSES, init__seed=seed, init__antithetic="true",
                 output__observe_every=10, output__snapshot_every=20) for seed in (1, 2)]
    runs = [open_run(p) for p in paths]
    assert runs[0].outputs == CLASSES
    fig = dashboard(runs[0])
    assert "c=3 outputs, cross_entropy loss" in fig._suptitle.get_text()
    for panel, names, label in (("accuracy", ["train_accuracy", "test_accuracy"], "arg\\max"),
                                ("margin", ["margin"], "max_{j \\neq y_i}"),
                                ("normalised_margin", ["normalised_margin"], "P₂")):
        ax = fig.axes[fig.panels.index(panel)]
        assert label in ax.get_ylabel(), ax.get_ylabel()
        lines = ax.get_lines()
        assert len(lines) == len(names)
        for line, name in zip(lines, names):
            obs = runs[0].observables[name]
            np.testing.assert_array_equal(line.get_xdata(), obs.time)
            np.testing.assert_array_equal(line.get_ydata(), obs.value)
    assert "sign" not in fig.axes[fig.panels.index("accuracy")].get_ylabel()
    both = overlay(runs)
    ax = both.axes[both.panels.index("margin")]
    assert "max_{j" in ax.get_ylabel()
    drawn = [line.get_ydata() for line in ax.get_lines()]
    for r in runs:
        assert any(np.array_equal(d, r.observables["margin"].value) for d in drawn)
    view = particle_view(runs[0], "two_layer", frames=2)
    scatter = view.axes[0]
    assert scatter.get_xlabel() == "|a|" and scatter.get_ylabel() == "|w|"
    frame = runs[0].particles["two_layer"].frame(0)
    a, w = frame.value[:, :CLASSES], frame.value[:, CLASSES:CLASSES + 4]
    points = np.concatenate([c.get_offsets() for c in scatter.collections])
    expected = np.column_stack([np.linalg.norm(a, axis=1), np.linalg.norm(w, axis=1)])
    np.testing.assert_allclose(np.sort(points, axis=0), np.sort(expected, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(a[1::2], -a[::2])  # the twins the legend names
    legend = [t.get_text() for t in scatter.get_legend().get_texts()]
    assert "antithetic twin (a → −a)" in legend, legend
    c = curves(runs, ["margin", "test_accuracy"], "init.seed")
    assert c.outputs == CLASSES
    figure = c.plot()
    assert "max_{j" in figure.axes[0].get_ylabel()
    np.testing.assert_array_equal(c.groups[0].mean["margin"], runs[0].observables["margin"].value)

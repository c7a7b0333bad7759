"""The library (open_run) on files written by the mfsim binary."""

import shutil

import h5py
import numpy as np
import pytest
from conftest import SMALL, run_mfsim

from mfsim_analysis import NotAnMfsimFile, open_run, predict
from mfsim_analysis.network import activation


def test_config_parameters_and_metadata(small_run):
    with open_run(small_run) as run:
        assert run.model == "two_layer"
        assert run.get("model.width") == 64 and run.config["data"]["dim"] == 3
        assert run.get("flow.integrator") == "heun"
        assert run.get("init.antithetic") is False
        assert run.get("raw_learning_rate") == pytest.approx(64 * 0.05)  # a /parameters attribute
        assert run.get("no.such_key", None) is None
        with pytest.raises(KeyError, match="no.such_key"):
            run.get("no.such_key")
        assert run.mfsim_version and "[model]" in run.config_text
        assert run.lambda0 is None and run.ntk_gram_scale == 1.0  # β²


def test_lambda0_under_other_names(small_run, tmp_path):
    """λ₀ kept as a dataset or under another name is found too; without a scale, the line is β²λ₀."""
    for where in ("attribute", "dataset"):
        path = tmp_path / f"{where}.h5"
        shutil.copy(small_run, path)
        with h5py.File(path, "r+") as f:
            if where == "attribute":
                f["parameters"].attrs["lambda_0"] = 0.25
            else:
                f["parameters"].create_dataset("lambda0", data=0.25)
        with open_run(path) as run:
            assert run.lambda0 == 0.25 and run.ntk_gram_scale == 1.0


def test_rows_after_the_commit_marker_are_not_counted(small_run, tmp_path):
    """A run killed after its rows reached the disk but before the marker that commits them: only
    committed rows count, so every frame read has its observation rows."""
    path = tmp_path / "killed.h5"
    shutil.copy(small_run, path)
    with h5py.File(path, "r+") as f:
        assert f.attrs["committed_step"] == 40  # the writer committed its last step
        f.attrs.modify("committed_step", 22)
    with open_run(path) as run:
        np.testing.assert_array_equal(run.observables["loss"].step, [0, 5, 10, 15, 20])
        g = run.particles["two_layer"]
        assert len(g) == 3 and g.frame(-1).step == 20


def test_observables_are_step_time_value_arrays(small_run):
    with open_run(small_run) as run:
        assert {"loss", "test_loss"} <= set(run.observables)
        loss = run.observables["loss"]
        np.testing.assert_array_equal(loss.step, np.arange(0, 41, 5))
        np.testing.assert_allclose(loss.time, 0.05 * loss.step, rtol=1e-12)
        assert loss.value.shape == (9,) and np.all(np.isfinite(loss.value))
        assert loss.final == loss.value[-1] < loss.initial
        assert loss.at_time(1.02) == loss.value[4]  # the row at t = 1.0
        with pytest.raises(KeyError, match="no observable 'nope'"):
            run.observables["nope"]


def test_particle_frames_match_the_file(small_run):
    with open_run(small_run) as run, h5py.File(small_run, "r", locking=False) as f:
        g = run.particles["two_layer"]
        raw = f["particles/two_layer/position/value"]
        assert (len(g), g.n_particles, g.dim) == (5, 64, 5)
        assert g.columns == ("a", "w_1", "w_2", "w_3", "b")
        np.testing.assert_array_equal(g.step, [0, 10, 20, 30, 40])
        last = g.frame(-1)
        assert (last.index, last.step, last.time) == (4, 40, pytest.approx(2.0))
        np.testing.assert_array_equal(last.value, raw[4])
        np.testing.assert_array_equal(last["a"], raw[4][:, 0])
        np.testing.assert_array_equal(last.block("w"), raw[4][:, 1:4])
        np.testing.assert_allclose(last["|w|"], np.linalg.norm(raw[4][:, 1:4], axis=1))
        assert last.layers().shape == (1, 64, 5)
        assert g.frame_at_time(0.9).index == 2
        assert [fr.step for fr in g] == [0, 10, 20, 30, 40]
        with pytest.raises(IndexError):
            g.frame(5)
        with pytest.raises(KeyError, match="no column"):
            last["z"]


def test_frames_are_read_one_at_a_time(small_run):
    """A frame read touches that frame's row only, never the whole [T][N][D] dataset."""
    with open_run(small_run) as run:
        g = run.particles["two_layer"]
        source, reads = g._source, []
        original = source.read

        def recording_read(name, selection=()):
            reads.append((name, selection))
            return original(name, selection)

        source.read = recording_read
        for _ in g:
            pass
        g.frame(-2)
        assert reads == [("particles/two_layer/position/value", i) for i in (0, 1, 2, 3, 4, 3)]


def test_data_is_the_training_and_test_sets(small_run):
    with open_run(small_run) as run:
        d = run.data
        assert d.x_train.shape == (20, 3) and d.y_train.shape == (20,)
        assert d.x_test.shape == (50, 3) and d.y_test.shape == (50,)
        rtol = 1e-12 if run.parameters.get("precision", "double") == "double" else 1e-6
        np.testing.assert_allclose(np.linalg.norm(d.x_train, axis=1), 1.0, rtol=rtol)  # the sphere


def test_numpy_network_reproduces_the_losses_mfsim_wrote(small_run):
    """f recomputed in numpy from stored particles gives the training and test losses of the file
    (first and last frames, which are also observation rows)."""
    with open_run(small_run) as run:
        d = run.data
        # A float build computed the losses in single precision (numpy recomputes them in double).
        rel = 1e-12 if run.parameters.get("precision", "double") == "double" else 1e-5
        for frame, row in ((0, 0), (-1, -1)):
            f_train = predict(run, d.x_train, frame)
            f_test = predict(run, d.x_test, frame)
            assert 0.5 * np.mean((f_train - d.y_train) ** 2) == pytest.approx(
                run.observables["loss"].value[row], rel=rel)
            assert 0.5 * np.mean((f_test - d.y_test) ** 2) == pytest.approx(
                run.observables["test_loss"].value[row], rel=rel)


def test_activations_match_their_definitions():
    u = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(activation("relu")(u), np.where(u > 0, u, 0))
    np.testing.assert_allclose(activation("sigmoid")(u), 1 / (1 + np.exp(-u)))
    np.testing.assert_allclose(activation("softplus", 4.0)(u), np.log1p(np.exp(4 * u)) / 4, rtol=1e-12)
    from math import erf

    np.testing.assert_allclose(activation("gelu")(u), [x * 0.5 * (1 + erf(x / 2**0.5)) for x in u])
    np.testing.assert_allclose(activation("linear")(u), u)
    np.testing.assert_allclose(activation("quadratic")(u), u * u)
    # He_3 = u³ − 3u, He_2 = u² − 1: 0.5 + 2 He_2 − He_3.
    np.testing.assert_allclose(activation("hermite", hermite=[0.5, 0, 2, -1])(u),
                               0.5 + 2 * (u**2 - 1) - (u**3 - 3 * u), rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="hermite_coefficients"):
        activation("hermite")
    with pytest.raises(ValueError, match="unknown activation"):
        activation("swish")


def _append(dataset, value):
    dataset.resize(dataset.shape[0] + 1, axis=0)
    dataset[-1] = value


@pytest.mark.parametrize("marker", ["committed", "none"])  # a file with the commit marker, an older one without
@pytest.mark.parametrize("element, extended, step", [
    ("observables/loss", ("value",), 45),                     # mfsim appends value, time, step
    ("observables/loss", ("value", "time"), 45),
    ("observables/loss", ("step", "time"), 45),               # any missing series holds the row back
    ("observables/loss", ("value", "time", "step"), 0),       # step row still the fill value
    ("particles/two_layer/position", ("value",), 50),
    ("particles/two_layer/position", ("value", "time"), 50),
    ("particles/two_layer/position", ("time", "step"), 50),
    ("particles/two_layer/position", ("value", "time", "step"), 0),
])
def test_a_partly_written_row_or_frame_is_not_counted(small_run, tmp_path, element, extended, step, marker):
    """What a reader can see while mfsim appends a row: some of its series, not yet all."""
    path = tmp_path / "partial.h5"
    shutil.copy(small_run, path)
    with h5py.File(path, "r+") as f:
        if marker == "none":
            del f.attrs["committed_step"]
        for name in extended:
            dataset = f[f"{element}/{name}"]
            _append(dataset, {"step": step, "time": 2.5}.get(name, np.zeros(dataset.shape[1:])))
    with open_run(path) as run:
        assert len(run.observables["loss"]) == 9
        assert len(run.particles["two_layer"]) == 5
        assert run.particles["two_layer"].frame(-1).step == 40
    # The same file with the row completed (and committed) counts it: the test above is not vacuous.
    with h5py.File(path, "r+") as f:
        for name in {"value", "time", "step"} - set(extended):
            dataset = f[f"{element}/{name}"]
            _append(dataset, {"step": 45, "time": 2.5}.get(name, np.zeros(dataset.shape[1:])))
        if marker == "committed":
            f.attrs.modify("committed_step", 50)
    if step != 0:
        with open_run(path) as run:
            assert len(run.observables["loss"]) + len(run.particles["two_layer"]) == 9 + 5 + 1


def test_refuses_what_is_not_an_mfsim_file(small_run, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    other = tmp_path / "other.h5"
    shutil.copy(small_run, other)
    with h5py.File(other, "r+") as f:
        f["h5md/creator"].attrs["name"] = "lammps"
    cases = {
        text: "not an HDF5 file",
        plain: r"not an mfsim H5MD file \(no /h5md group",
        other: r"not an mfsim H5MD file \(creator is 'lammps'",
        tmp_path / "missing.h5": "no such file",
        tmp_path: "is a directory",
    }
    for path, message in cases.items():
        with pytest.raises(NotAnMfsimFile, match=message) as error:
            open_run(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_future_layout_lambda0_and_resnet_groups(future_run):
    with open_run(future_run) as run:
        assert run.lambda0 == pytest.approx(0.05) and run.ntk_gram_scale == pytest.approx(2.0)
        assert run.observables["gram_spectrum"].value.shape == (9, 20)
        blocks = run.particles["resnet_blocks"]
        assert blocks.slices == 4 and blocks.columns[:2] == ("u_1", "u_2")
        frame = blocks.frame(-1)
        layers = frame.layers()
        assert layers.shape == (4, 8, 7)
        np.testing.assert_array_equal(layers[2, 3], frame.value[2 * 8 + 3])  # row l*M + j
        assert frame["|u|"].shape == (32,)
        assert run.particles["resnet_head"].frame(0).block("v").shape == (16, 3)


def test_small_config_is_what_the_fixture_asked_for(small_run):
    with open_run(small_run) as run:
        flat = run.flat_config()
        for key, value in SMALL.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert flat[key] == value, key


def test_numpy_resnet_reproduces_the_losses_mfsim_wrote(tmp_path):
    """Model B: f recomputed in numpy (forward pass through the stored blocks, then the head) gives
    the training and test losses of the file, at the first and the last frames."""
    path = run_mfsim(tmp_path / "resnet.h5", model__kind='"resnet"', model__depth=4, model__width=8,
                     model__head_width=32, model__alpha=2.0, model__beta=1.5, model__head_activation='"erf"')
    with open_run(path) as run:
        assert run.model == "resnet"
        d = run.data
        rel = 1e-12 if run.parameters.get("precision", "double") == "double" else 1e-5
        for frame, row in ((0, 0), (-1, -1)):
            f_train, f_test = predict(run, d.x_train, frame), predict(run, d.x_test, frame)
            assert 0.5 * np.mean((f_train - d.y_train) ** 2) == pytest.approx(
                run.observables["loss"].value[row], rel=rel)
            assert 0.5 * np.mean((f_test - d.y_test) ** 2) == pytest.approx(
                run.observables["test_loss"].value[row], rel=rel)
        with pytest.raises(ValueError, match="frame index"):
            predict(run, d.x_test, run.particles["resnet_head"].frame(0))


@pytest.mark.parametrize("model", ["two_layer", "resnet"])
def test_logistic_run_recomputed_in_numpy(tmp_path, model):
    """model.loss = "logistic": the training and test losses, the accuracies, the margin and (model
    A) the normalised margin the binary wrote are recomputed in numpy from the stored particles."""
    extra = dict(model__kind=f'"{model}"', model__depth=3, model__head_width=32) if model == "resnet" else {}
    path = run_mfsim(tmp_path / "logistic.h5", model__loss='"logistic"', data__teacher_width=4,
                     flow__steps=40, output__snapshot_every=40, output__observe_every=40, **extra)
    with open_run(path) as run:
        d = run.data
        assert set(np.unique(d.y_train)) <= {-1.0, 1.0} and len(np.unique(d.y_train)) == 2
        rel = 1e-12 if run.parameters.get("precision", "double") == "double" else 1e-5
        obs = run.observables
        for frame, row in ((0, 0), (-1, -1)):
            f_train, f_test = predict(run, d.x_train, frame), predict(run, d.x_test, frame)
            assert np.mean(np.logaddexp(0, -d.y_train * f_train)) == pytest.approx(obs["loss"].value[row], rel=rel)
            assert np.mean(np.logaddexp(0, -d.y_test * f_test)) == pytest.approx(obs["test_loss"].value[row], rel=rel)
            assert np.mean(d.y_train * f_train > 0) == obs["train_accuracy"].value[row]
            assert np.mean(d.y_test * f_test > 0) == obs["test_accuracy"].value[row]
            margin = np.min(d.y_train * f_train)
            assert margin == pytest.approx(obs["margin"].value[row], rel=rel, abs=1e-14)
            if model == "two_layer":
                theta = run.particles["two_layer"].frame(frame).value
                p2 = float(run.get("model.beta")) * np.mean(np.abs(theta[:, 0]) * np.linalg.norm(theta[:, 1:], axis=1))
                assert margin / p2 == pytest.approx(obs["normalised_margin"].value[row], rel=rel, abs=1e-14)
        assert "loss_bound" not in obs  # (A12) is a bound of the square loss only
        assert obs["train_accuracy"].value[-1] > obs["train_accuracy"].value[0] or obs["train_accuracy"].value[0] == 1


def test_logistic_margin_grows_on_separable_data(tmp_path):
    """Chizat–Bach: on linearly separable data (labels sign(tanh(w*·x)) = sign(w*·x)) the ReLU
    network under the logistic loss fits every label and its normalised margin keeps increasing
    towards a plateau (the implicit bias towards max-margin)."""
    path = run_mfsim(tmp_path / "separable.h5", model__loss='"logistic"', model__activation='"relu"',
                     model__width=512, data__teacher_activation='"tanh"', data__n_train=20, data__dim=3,
                     flow__integrator='"euler"', flow__dt=0.1, flow__t_end=200.0, output__observe_every=100)
    with open_run(path) as run:
        margin, accuracy = run.observables["normalised_margin"], run.observables["train_accuracy"]
        assert accuracy.value[-1] == 1.0
        late = margin.value[margin.time >= 50]
        assert late[0] > 0 and np.all(np.diff(late) > 0), late
        gains = np.diff(late)
        assert gains[-1] < gains[0]  # slowing down: towards a plateau

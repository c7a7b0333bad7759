"""The Python module's contract: configs, data, errors as exceptions, zero-copy particles, the
callback, the analysis reader and package."""

import ctypes
import os
import sys

import h5py
import numpy as np
import pytest

import mfsim
from conftest import CONFIG, SMALL, cli


def cli_error(*sets):
    """The CLI's one-line message for `mfsim run CONFIG --set ...`."""
    args = []
    for s in sets:
        args += ["--set", s]
    r = cli("run", CONFIG, "-o", "/nonexistent/never.h5", *args, check=False)
    assert r.returncode == 2
    return r.stderr.strip().removeprefix("mfsim: ").removeprefix("error: ")


def test_config_sources_agree():
    from_file = mfsim.Config.from_toml(CONFIG).with_overrides({"model.width": 128})
    nested = mfsim.Config.from_toml(CONFIG).with_overrides({"model": {"width": 128}})
    assert from_file.resolved == nested.resolved
    assert from_file["model.width"] == 128
    assert mfsim.Config({"model.width": 3, "flow": {"dt": 0.5}})["flow.dt"] == 0.5
    # Overrides stack, the last one wins; the original is unchanged.
    base = mfsim.Config({"model.width": 3})
    assert base.with_overrides({"model.width": 5})["model.width"] == 5 and base["model.width"] == 3


@pytest.mark.parametrize("settings, cli_set", [
    ({"model.widht": 3}, "model.widht=3"),
    ({"model.width": 0}, "model.width=0"),
    ({"flow.dt": -1.0}, "flow.dt=-1.0"),
    ({"model.activation": "nope"}, 'model.activation="nope"'),
])
def test_bad_config_is_a_value_error_with_the_cli_message(settings, cli_set):
    with pytest.raises(ValueError) as e:
        mfsim.Config.from_toml(CONFIG).with_overrides(settings)
    message = str(e.value)
    assert "\n" not in message
    assert message in cli_error(cli_set)


def test_bad_data_is_a_value_error(small_config):
    x, y = np.ones((10, 3)), np.ones(10)
    for args, text in [
        ((np.where(np.eye(10, 3) > 0, np.nan, x), y), "x_train[0, 0] = nan"),
        ((x, y[:9]), "x_train has 10 rows but y_train has 9"),
        ((x[:, :, None], y), "must be 2-D"),
        ((x, y, np.ones((4, 2)), np.ones(4)), "x_test has dimension 2"),
        ((x, np.full(10, np.inf)), "y_train[0] = inf"),
        ((x[:0], y[:0]), "0 rows"),
    ]:
        with pytest.raises(ValueError, match=None) as e:
            mfsim.Data(*args)
        assert text in str(e.value), str(e.value)
    logistic = small_config.with_overrides({"model.loss": "logistic"})
    with pytest.raises(ValueError, match=r"y_train\[0\] = 1.5 but model.loss = \"logistic\""):
        mfsim.Simulation(logistic, mfsim.Data(x, np.full(10, 1.5)))


def test_nothing_written_when_refused(small_config, tmp_path):
    existing = tmp_path / "existing.h5"
    existing.write_bytes(b"precious")
    sim = mfsim.Simulation(small_config)
    with pytest.raises(ValueError, match="output.path"):
        sim.run(output=existing, progress=False)
    assert existing.read_bytes() == b"precious"
    assert sim.step_index == 0  # the refused run did not move the state
    # A config that fails validation, with an output path: nothing is created.
    target = tmp_path / "new" / "run.h5"
    with pytest.raises(ValueError):
        mfsim.Simulation(small_config.with_overrides({"model.width": -1})).run(output=target)
    assert not (tmp_path / "new").exists()
    sim.run(output=existing, overwrite=True, progress=False)
    assert h5py.is_hdf5(existing)


def test_blow_up_raises_and_keeps_the_last_finite_state(small_config, tmp_path):
    config = small_config.with_overrides({"flow.dt": 1000.0, "model.beta": 50.0, "flow.t_end": 1e300,
                                          "flow.steps": 1000, "flow.integrator": "euler",
                                          "output.snapshot_every": 1000})
    sim = mfsim.Simulation(config)
    out = tmp_path / "blown.h5"
    with pytest.raises(mfsim.NonFiniteError, match="became non-finite"):
        sim.run(output=out, progress=False)
    assert isinstance(mfsim.NonFiniteError("x"), RuntimeError)
    assert np.isfinite(sim.particles()).all()
    with h5py.File(out, "r") as f:
        positions = f["particles/two_layer/position"]
        assert positions["step"][-1] == sim.step_index
        assert np.array_equal(positions["value"][-1], sim.particles())


def test_particles_are_a_read_only_view_that_follows_the_state(small_config):
    sim = mfsim.Simulation(small_config)
    view = sim.particles("two_layer")
    before = view.copy()
    assert np.shares_memory(view, sim.particles("two_layer"))
    assert view.__array_interface__["data"][0] == sim.particles().__array_interface__["data"][0]
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0] = 1.0
    assert view.shape == (64, len(sim.columns("two_layer")))
    sim.step(3)
    assert not np.array_equal(view, before)  # the view sees the state move, no copy involved
    assert np.array_equal(view, sim.particles())
    with pytest.raises(KeyError, match="two_layer"):
        sim.particles("nope")
    del sim
    assert np.isfinite(view).all()  # the view keeps the simulation alive


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("dtype_code", ctypes.c_uint8), ("dtype_bits", ctypes.c_uint8),
                ("dtype_lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class ManagedTensorVersioned(ctypes.Structure):  # DLPack 1.0's DLManagedTensorVersioned
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


def capsule_contents(capsule, name: bytes, struct):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    assert get_name(capsule) == name
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return struct.from_address(get(capsule, name))


def test_particles_through_dlpack_without_a_copy(small_config):
    sim = mfsim.Simulation(small_config)
    state = sim.particles()
    exported = sim.particles_dlpack()
    assert exported.__dlpack_device__() == (1, 0)  # kDLCPU
    # numpy takes the DLPack capsule as a view of the state's memory, which follows the flow.
    taken = np.from_dlpack(exported)
    assert address(taken) == address(state) and taken.shape == state.shape
    assert taken.dtype == np.float64
    sim.step(2)
    assert np.array_equal(taken, sim.particles())
    # A versioned capsule (DLPack >= 1.0) points at the state and is marked read-only; an older
    # consumer's unversioned capsule points at it too, without that flag (none exists there).
    capsules = [exported.__dlpack__(max_version=(1, 0)), exported.__dlpack__()]  # kept alive
    versioned = capsule_contents(capsules[0], b"dltensor_versioned", ManagedTensorVersioned)
    assert (versioned.major, versioned.minor) >= (1, 0)
    assert versioned.flags & 1  # DLPACK_FLAG_BITMASK_READ_ONLY
    tensor = versioned.dl_tensor
    assert tensor.data + tensor.byte_offset == address(state)
    assert (tensor.ndim, tensor.shape[0], tensor.shape[1]) == (2, *state.shape)
    assert (tensor.dtype_code, tensor.dtype_bits, tensor.dtype_lanes) == (2, 64, 1)  # kDLFloat
    plain = capsule_contents(capsules[1], b"dltensor", DLTensor)
    assert plain.data + plain.byte_offset == address(state)
    # The buffer protocol gives numpy a read-only view of the same memory.
    viewed = np.asarray(exported)
    assert address(viewed) == address(state) and not viewed.flags.writeable
    # The export keeps the simulation alive.
    del sim, state
    assert np.isfinite(taken).all() and np.isfinite(np.from_dlpack(exported)).all()


def test_particles_into_torch_without_a_copy(small_config):
    torch = pytest.importorskip("torch")
    sim = mfsim.Simulation(small_config)
    tensor = torch.from_dlpack(sim.particles_dlpack())
    assert tensor.data_ptr() == address(sim.particles())
    assert tensor.dtype == torch.float64 and tuple(tensor.shape) == sim.particles().shape
    sim.step(1)
    assert np.array_equal(tensor.numpy(), sim.particles())


def test_particles_copy_is_a_writable_snapshot(small_config):
    sim = mfsim.Simulation(small_config)
    snapshot = sim.particles(copy=True)
    assert snapshot.flags.writeable and not np.shares_memory(snapshot, sim.particles())
    assert np.array_equal(snapshot, sim.particles())
    snapshot[0, 0] += 1.0
    sim.step(2)
    assert not np.array_equal(snapshot, sim.particles())


def test_callback_stops_the_run_at_its_own_step(small_config, tmp_path):
    points = []

    def record(point):
        points.append(point)
        return point["step"] < 9

    sim = mfsim.Simulation(small_config)
    out = tmp_path / "stopped.h5"
    result = sim.run(output=out, callback=record, every=3, progress=False)
    # Step 9 is off output.observe_every = 5 and snapshot_every = 10: the loss observer has not
    # seen it when the callback is called, and observes it once the callback's False made it the
    # last point; the callback is not called again.
    assert [p["step"] for p in points] == [0, 3, 6, 9]
    assert "loss" not in points[-1]["observables"]
    assert result.stopped_by == "callback" and result.step == 9 == sim.step_index
    assert sim.time == pytest.approx(9 * 0.05, rel=1e-15)
    loss = result.observables["loss"]
    assert list(loss.steps) == [0, 5, 9] and loss.values[-1] == points[-1]["loss"] == result.loss
    with h5py.File(out, "r") as f:
        positions = f["particles/two_layer/position"]
        assert list(positions["step"][()]) == [0, 9]
        assert np.array_equal(positions["value"][-1], sim.particles())
        assert list(f["observables/loss/step"][()]) == [0, 5, 9]
        assert f["observables/loss/value"][-1] == points[-1]["loss"]


def test_progress_draws_a_tqdm_bar(small_config, monkeypatch):
    tqdm_auto = pytest.importorskip("tqdm.auto")
    bars = []

    class RecordingBar(tqdm_auto.tqdm):  # tqdm itself, recording what it is asked to draw
        def __init__(self, *args, **kwargs):
            self.drawn, self.closed = [], False
            bars.append(self)
            super().__init__(*args, **kwargs)

        def refresh(self, *args, **kwargs):
            postfix = self.postfix.split(", ") if self.postfix else []
            self.drawn.append((self.n, dict(kv.split("=") for kv in postfix)))
            return super().refresh(*args, **kwargs)

        def close(self):
            self.closed = True
            return super().close()

    monkeypatch.setattr(tqdm_auto, "tqdm", RecordingBar)
    sim = mfsim.Simulation(small_config)
    result = sim.run(progress=True)
    assert len(bars) == 1 and bars[0].closed and bars[0].unit == "step"
    steps = [n for n, _ in bars[0].drawn]
    assert steps == sorted(steps) and steps[-1] == result.steps_run == 40
    last = bars[0].drawn[-1][1]
    assert float(last["t"]) == pytest.approx(result.time, rel=1e-3)
    assert float(last["loss"]) == pytest.approx(result.loss, rel=1e-3)
    # None draws the bar where tqdm is installed; False never does.
    sim.run(progress=None)
    assert len(bars) == 2 and bars[1].closed
    sim.run(progress=False)
    assert len(bars) == 2


def test_progress_true_without_tqdm_is_a_value_error(small_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # what an environment without tqdm sees
    sim = mfsim.Simulation(small_config)
    with pytest.raises(ValueError, match="progress=True needs tqdm"):
        sim.run(progress=True)
    assert sim.run(progress=None).steps_run == 40 and sim.step_index == 40


def test_callback_exception_propagates(small_config):
    def fail(point):
        if point["step"] > 0:
            raise ZeroDivisionError("from the callback")

    sim = mfsim.Simulation(small_config)
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        sim.run(callback=fail, every=5, progress=False)
    assert sim.step_index == 5  # the run ended at the point that raised


def test_predict_and_evaluate_agree_with_the_loss(small_config):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(25, 3))
    y = np.tanh(x[:, 0])
    sim = mfsim.Simulation(small_config, mfsim.Data(x, y, x[:5], y[:5]))
    sim.run(progress=False)
    f = sim.predict(x)
    loss = sim.evaluate()
    assert loss["loss"] == pytest.approx(0.5 * np.mean((f - y) ** 2), rel=1e-12)
    assert loss["test_loss"] == pytest.approx(0.5 * np.mean((f[:5] - y[:5]) ** 2), rel=1e-12)
    with pytest.raises(ValueError, match="columns"):
        sim.predict(np.ones((2, 4)))


def test_class_labels_from_numpy_with_cross_entropy(small_config):
    # Three classes by the argmax of a linear teacher; predict gives the (n, c) outputs, whose
    # softmax cross-entropy is the loss, and labels that do not fit the loss are refused.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3))
    y = np.argmax(x @ rng.normal(size=(3, 3)), axis=1).astype(float)
    config = small_config.with_overrides({"model.loss": "cross_entropy", "model.outputs": 3})
    sim = mfsim.Simulation(config, mfsim.Data(x, y))
    sim.run(progress=False)
    f = sim.predict(x)
    assert f.shape == (30, 3)
    shifted = f - f.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -np.mean(log_softmax[np.arange(30), y.astype(int)])
    assert sim.evaluate()["loss"] == pytest.approx(expected, rel=1e-12)
    # The messages name the arrays given, as the CLI's name the data file's datasets.
    with pytest.raises(ValueError) as refused:
        mfsim.Simulation(config, mfsim.Data(x, np.full(30, 0.5)))
    assert str(refused.value) == (
        'y_train[0] = 0.5 but model.loss = "cross_entropy" with model.outputs = 3 needs class '
        'labels 0 ... 2 (set model.outputs to the number of classes)')
    y_test = y[:10].copy()
    y_test[4] = 3.0
    with pytest.raises(ValueError, match=r"^y_test\[4\] = 3 but model.loss"):
        mfsim.Simulation(config, mfsim.Data(x, y, x[:10], y_test))
    square = small_config.with_overrides({"model.outputs": 3})
    with pytest.raises(ValueError) as refused:
        mfsim.Simulation(square, mfsim.Data(x, y))
    assert str(refused.value) == (
        "model.outputs = 3: y_train holds 1 target a sample: set model.outputs = 1")


def test_analysis_is_an_attribute_loaded_on_first_use():
    import subprocess
    import sys
    probe = ("import sys, mfsim; assert 'mfsim_analysis' not in sys.modules; "
             "import mfsim_analysis; assert mfsim.analysis is mfsim_analysis")
    subprocess.run([sys.executable, "-c", probe], check=True, env=os.environ)


def test_open_and_the_analysis_package(small_config, tmp_path):
    import mfsim.analysis
    import mfsim_analysis

    assert mfsim.analysis is mfsim_analysis
    out = tmp_path / "a.h5"
    result = mfsim.Simulation(small_config).run(output=out, progress=False)
    with mfsim.open(out) as run:
        assert np.array_equal(run.observables["loss"].value, result.observables["loss"].values)
        assert run.config["model"]["width"] == 64


def test_run_continues_and_resnet_groups():
    config = mfsim.Config({"model.kind": "resnet", "model.width": 16, "model.depth": 2,
                           "data.n_train": 10, "data.n_test": 5, "data.dim": 3, "flow.steps": 4,
                           "diagnostics.kl": [], "diagnostics.gram": False})
    sim = mfsim.Simulation(config)
    assert len(sim.groups) >= 2
    first = sim.run(progress=False)
    second = sim.run(progress=False)
    assert (first.step, second.step) == (4, 8)
    assert second.observables["loss"].steps[0] == 4
    for g in sim.groups:
        assert np.isfinite(sim.particles(g)).all()

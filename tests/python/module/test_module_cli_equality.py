"""Same numbers as the CLI: a Simulation from numpy arrays equals, bitwise, the CLI's run on the
same data written by `mfsim data import`, and run(output=...) writes the file the CLI writes."""

import h5py
import numpy as np
import pytest

import mfsim
from conftest import CONFIG, SMALL, cli, set_args


@pytest.fixture(scope="module")
def same_kernels(tmp_path_factory):
    """Bitwise equality needs a module and a binary compiled alike: a CMake build's pair, or a
    wheel built with the binary's kernel flags (ctest's pip_install passes them); the portable
    kernels of a plain `pip install .` beside a -march=native binary differ in the last bits."""
    out = tmp_path_factory.mktemp("isa") / "isa.h5"
    cli("run", CONFIG, "-o", out, "-q", "--set", "flow.steps=0", "--set", "flow.t_end=1e300",
        *set_args({"model.width": 4, "data.n_train": 2, "data.n_test": 0}))
    with h5py.File(out, "r") as f:
        binary = str(f["parameters"].attrs["kernel_isa"])
    if binary != mfsim.backend()["kernel_isa"]:
        pytest.skip(f"the binary's kernels ({binary}) are not the module's "
                    f"({mfsim.backend()['kernel_isa']})")

# Attributes that differ between two runs of the same config by design.
VARYING = {"created", "config_source", "wall_time", "hostname", "date", "pid"}


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def attributes(path, group="parameters"):
    with h5py.File(path, "r") as f:
        return {k: v for k, v in f[group].attrs.items()}


def assert_same_arrays(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs"


def test_output_file_is_the_cli_file(tmp_path, monkeypatch, same_kernels):
    """Both write run.h5 in a folder of their own (the path is part of the stored config)."""
    settings = {**SMALL, "diagnostics.gram": True}
    (tmp_path / "cli").mkdir()
    (tmp_path / "py").mkdir()
    cli_file, py_file = tmp_path / "cli" / "run.h5", tmp_path / "py" / "run.h5"
    cli("run", CONFIG, "-o", "run.h5", "-q", *set_args(settings), cwd=tmp_path / "cli")
    monkeypatch.chdir(tmp_path / "py")
    sim = mfsim.Simulation(mfsim.Config.from_toml(CONFIG).with_overrides(settings))
    result = sim.run(output="run.h5", progress=False)
    assert_same_arrays(datasets(cli_file), datasets(py_file))
    a, b = attributes(cli_file), attributes(py_file)
    assert sorted(a) == sorted(b)
    for key in a:
        if key not in VARYING:
            assert str(a[key]) == str(b[key]), key
    # The rows handed back from memory are the file's.
    with h5py.File(py_file, "r") as f:
        for name, series in result.observables.items():
            assert np.array_equal(series.values, f[f"observables/{name}/value"][()]), name
            assert np.array_equal(series.steps, f[f"observables/{name}/step"][()]), name
            assert np.array_equal(series.times, f[f"observables/{name}/time"][()]), name
        last = f["particles/two_layer/position/value"][-1]
    assert np.array_equal(sim.particles("two_layer"), last)


def test_numpy_data_is_the_imported_file(tmp_path, same_kernels):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    y = np.sin(x @ np.array([1.0, -0.5, 0.25, 2.0])) + 0.1 * rng.normal(size=40)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    data_file = tmp_path / "data.h5"
    cli("data", "import", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-o", data_file,
        "--test-fraction", "0.25", "--seed", "4")
    with h5py.File(data_file, "r") as f:
        arrays = [f[f"data/{part}/{xy}"][()] for part in ("train", "test") for xy in ("x", "y")]
    settings = {**SMALL, "data.kind": "file"}
    out = tmp_path / "cli.h5"
    cli("run", CONFIG, "-o", out, "-q", *set_args(settings), "--set", f"data.path=\"{data_file}\"")
    del settings["data.kind"]
    data = mfsim.Data(arrays[0], arrays[1], arrays[2], arrays[3])
    sim = mfsim.Simulation(mfsim.Config.from_toml(CONFIG).with_overrides(settings), data)
    result = sim.run(progress=False)
    with h5py.File(out, "r") as f:
        assert set(result.observables) == set(f["observables"])
        for name, series in result.observables.items():
            assert series.values.tobytes() == f[f"observables/{name}/value"][()].tobytes(), name
        assert sim.particles().tobytes() == f["particles/two_layer/position/value"][-1].tobytes()


def test_float32_and_fortran_order_give_the_same_run(small_config):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 3)).astype(np.float32)
    y = rng.normal(size=30).astype(np.float32)
    runs = []
    for xs in (x, x.astype(np.float64), np.asfortranarray(x)):
        sim = mfsim.Simulation(small_config, mfsim.Data(xs, y, xs[:5], y[:5]))
        runs.append(sim.run(progress=False).observables["loss"].values)
    assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes()


def test_steps_then_run_equal_one_run(small_config):
    """step(n) then run() continues as one run would: the same particles, bitwise."""
    whole = mfsim.Simulation(small_config)
    whole.run(progress=False)
    parts = mfsim.Simulation(small_config)
    assert parts.step(7) == 7 and parts.step_index == 7
    assert parts.time == 7 * 0.05
    result = parts.run(progress=False)
    assert result.step == whole.step_index == 40 and parts.time == whole.time == 2.0
    assert parts.particles().tobytes() == whole.particles().tobytes()
    # The loss the run reports at its last point is evaluate()'s.
    assert parts.evaluate()["loss"] == result.loss

"""Runs at 1, 2 and 4 threads of a threaded Kokkos backend (OpenMP, Threads) agree: particle
trajectories bit for bit, reduced observables to 1e-13 of max(|value|, 1) (relative above 1,
absolute below: KL estimates are differences of O(1) logarithms, identity errors are rounding-level
numbers themselves).

Every pair kernel gives each output to one thread and sums it in a fixed order, so the particles
cannot depend on the thread count; only the parallel_reduce of the observables (losses, Gram
spectra, kNN sums) combine per-thread partial sums, in an order that does. Skipped on Serial and
GPU builds, where there is no thread count to vary.
"""

import os
import subprocess

import h5py
import numpy as np
import pytest

from conftest import mfsim_command

THREADS = (1, 2, 4)
OBSERVABLE_RTOL = 1e-13
# The diagnostics that reduce over samples or particles in parallel, on top of the small run.
DIAGNOSTICS = {"diagnostics.gram": "true", "diagnostics.kl": '["transport", "knn"]',
               "diagnostics.path_norm": "true", "init.antithetic": "true"}
MODELS = {
    "two_layer": {},
    "resnet": {"model.kind": '"resnet"', "model.depth": 4, "model.width": 16,
               "model.head_width": 32},
}


def run(out, threads, overrides):
    """Runs mfsim; `threads` None: Kokkos' default (and no Kokkos option, which Debian's Kokkos
    3.4 would reject: --kokkos-num-threads is Kokkos 4's spelling)."""
    command = mfsim_command(out, **{k.replace(".", "__"): v for k, v in overrides.items()})
    if threads is not None:
        command.append(f"--kokkos-num-threads={threads}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mfsim failed ({result.returncode}): {result.stderr}"
    return out


def datasets(path):
    """Every dataset of the file by name, read into memory."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.update({name: item[()]})
                     if isinstance(item, h5py.Dataset) else None)
        parameters = dict(f["parameters"].attrs)
    return found, parameters


def backend_name(parameters):
    """/parameters/backend as text (h5py may hand back bytes)."""
    backend = parameters["backend"]
    return backend.decode() if isinstance(backend, bytes) else str(backend)


@pytest.mark.parametrize("model", MODELS)
def test_trajectories_do_not_depend_on_the_thread_count(model, tmp_path):
    overrides = {**DIAGNOSTICS, **MODELS[model]}
    _, parameters = datasets(run(tmp_path / "default.h5", None, {**MODELS[model]}))
    backend = backend_name(parameters)
    if backend not in ("OpenMP", "Threads"):
        pytest.skip(f"backend {backend}: no thread count to vary")
    reference, parameters = datasets(run(tmp_path / "t1.h5", 1, overrides))
    assert int(parameters["threads"]) == 1
    for threads in THREADS[1:]:
        other, other_parameters = datasets(run(tmp_path / f"t{threads}.h5", threads, overrides))
        assert int(other_parameters["threads"]) == threads
        assert other.keys() == reference.keys()
        for name, value in reference.items():
            if not np.issubdtype(np.asarray(value).dtype, np.floating):
                np.testing.assert_array_equal(other[name], value, err_msg=name)
            elif name.startswith(("particles/", "data/")) or name.endswith(("/step", "/time")):
                # Bit for bit: the same floats, NaN where NaN.
                assert np.array_equal(other[name], value, equal_nan=True), (
                    f"{name} differs at {threads} threads by "
                    f"{np.nanmax(np.abs(other[name] - value))}")
            else:
                # Relative to the observable's scale, and absolute below 1: the kNN KL estimates
                # are differences of O(1) logarithms, the relative errors of exact identities
                # (energy_identity_error) are rounding-level numbers themselves.
                scale = max(np.nanmax(np.abs(value), initial=0.0), 1.0)
                np.testing.assert_allclose(other[name], value, rtol=OBSERVABLE_RTOL,
                                           atol=OBSERVABLE_RTOL * scale,
                                           equal_nan=True, err_msg=f"{name} at {threads} threads")


def test_a_run_uses_every_core_by_default(tmp_path):
    """Without OMP_NUM_THREADS, KOKKOS_NUM_THREADS or --kokkos-num-threads, a threaded backend runs
    on every core the process may use (OpenMP by its runtime's default, Threads by mfsim's)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "KOKKOS_NUM_THREADS")}
    out = tmp_path / "default.h5"
    result = subprocess.run(mfsim_command(out), capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"mfsim failed ({result.returncode}): {result.stderr}"
    _, parameters = datasets(out)
    backend = backend_name(parameters)
    if backend not in ("OpenMP", "Threads"):
        pytest.skip(f"backend {backend}: one thread by construction")
    assert int(parameters["threads"]) == len(os.sched_getaffinity(0))

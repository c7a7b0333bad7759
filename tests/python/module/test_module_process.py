"""The module in a process: the GIL released while the kernels run, Ctrl-C as KeyboardInterrupt
with a complete file, Kokkos' lifetime, no leak over many simulations."""

import _thread
import subprocess
import sys
import textwrap
import threading

import h5py
import numpy as np
import pytest

import mfsim

ENDLESS = {"flow.steps": 10**12, "flow.t_end": 1e300, "output.snapshot_every": 10**6,
           "output.observe_every": 10**6}


def test_gil_released_and_ctrl_c_leaves_a_complete_file(small_config, tmp_path):
    """A second thread counts while run() runs a flow that only Ctrl-C ends: without the GIL
    released it would never count, the interrupt would never come, and the test would hang."""
    started, counted = threading.Event(), []

    def second_thread():
        started.wait()
        for i in range(1000):
            counted.append(i)
        _thread.interrupt_main()  # what Ctrl-C does

    worker = threading.Thread(target=second_thread, daemon=True)
    worker.start()
    sim = mfsim.Simulation(small_config.with_overrides(ENDLESS))
    out = tmp_path / "interrupted.h5"
    with pytest.raises(KeyboardInterrupt):
        sim.run(output=out, callback=lambda point: started.set(), every=10**9, progress=False)
    worker.join()
    assert len(counted) == 1000
    # The run ends at the point being observed when the interrupt is seen, which may be the
    # first (the callback's) on a loaded machine; the file ends on that point.
    with mfsim.open(out) as run:  # complete: the reader takes the last committed point
        assert run.observables["loss"].step[-1] == sim.step_index
        frame = run.particles["two_layer"].frame(-1)
        assert frame.step == sim.step_index
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["particles/two_layer/position/value"][-1], sim.particles())
    # The simulation goes on from there.
    sim.step(2)


def test_ctrl_c_during_step(small_config):
    """step() of endless steps ends only by Ctrl-C: without it the test would hang. The interrupt
    may come before the first step on a loaded machine (0 steps taken)."""
    sim = mfsim.Simulation(small_config)
    started = threading.Event()

    def interrupt():
        started.wait()
        _thread.interrupt_main()

    worker = threading.Thread(target=interrupt, daemon=True)
    worker.start()
    started.set()
    with pytest.raises(KeyboardInterrupt):
        sim.step(10**12)
    worker.join()
    taken = sim.step_index
    assert 0 <= taken < 10**12 and np.isfinite(sim.particles()).all()
    assert sim.time == pytest.approx(taken * 0.05, rel=1e-12, abs=0)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=600)


def test_kokkos_starts_once_and_ends_at_exit_with_live_simulations():
    r = python("""
        import mfsim, numpy as np
        mfsim.initialize(num_threads=1)
        info = mfsim.backend()
        sim = mfsim.Simulation({"model.width": 8, "data.n_train": 5, "data.n_test": 2,
                                "data.dim": 2, "flow.steps": 3})
        view = sim.particles()
        data = mfsim.Data(np.ones((3, 2)), np.ones(3))
        sim.run(progress=False)
        try:
            mfsim.initialize(num_threads=info["threads"] + 1)
        except RuntimeError as e:
            print("refused:", e)
        print("ok", info["backend"])
        """)
    assert r.returncode == 0, r.stderr
    assert "refused: mfsim.initialize: Kokkos already runs with" in r.stdout
    assert "ok" in r.stdout
    assert "Kokkos" not in r.stderr  # no View outlived Kokkos::finalize


def test_no_leak_over_200_simulations():
    """Each construction allocates about 10 MB (width 20000 in d = 16); a leak of one would add
    2 GB over 200."""
    r = python("""
        import resource, mfsim, numpy as np
        def rss_mb():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
        config = mfsim.Config({"model.width": 20000, "data.n_train": 50, "data.n_test": 10,
                               "data.dim": 16, "flow.steps": 1, "diagnostics.kl": [],
                               "diagnostics.gram": False, "diagnostics.free_energy": False})
        x = np.random.default_rng(0).normal(size=(50, 16))
        for i in range(200):
            sim = mfsim.Simulation(config, mfsim.Data(x, x[:, 0]))
            if i % 2:
                sim.run(progress=False)
            del sim
            if i == 19:
                warm = rss_mb()
        print(warm, rss_mb())
        """)
    assert r.returncode == 0, r.stderr
    warm, end = map(float, r.stdout.split())
    assert end - warm < 200, f"RSS grew from {warm:.0f} MB to {end:.0f} MB"

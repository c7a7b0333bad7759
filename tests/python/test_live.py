"""Reading a file while the mfsim binary is still writing it."""

import subprocess
import time

import numpy as np
from conftest import CONFIG, mfsim_command, mfsim_executable, run_cli, run_mfsim

from mfsim_analysis import NotAnMfsimFile, open_run

# Slow enough to be caught in the act: 2048 particles on 400 points, a frame every step.
LIVE = dict(model__width=2048, data__n_train=400, data__n_test=10, data__dim=5, flow__integrator='"euler"',
            flow__dt=0.01, flow__t_end=1000.0, output__observe_every=1, output__snapshot_every=1)


def test_reads_a_file_that_is_being_written(tmp_path):
    path = tmp_path / "live.h5"
    process = subprocess.Popen(mfsim_command(path, **LIVE), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = []  # (loss rows, frames, loss values, last frame) of each read made while the run went on
    cli_checked = False
    try:
        deadline = time.monotonic() + 120
        while (len(seen) < 4 or not cli_checked) and time.monotonic() < deadline:
            assert process.poll() is None, f"mfsim stopped early: {process.stderr.read().decode()}"
            if not path.exists():
                time.sleep(0.05)
                continue
            try:
                run = open_run(path)
            except NotAnMfsimFile:
                assert not seen, "a file that opened once must keep opening"
                continue  # created an instant ago: its first bytes are not on disk yet
            with run:
                if "loss" in run.observables and "two_layer" in run.particles:
                    g = run.particles["two_layer"]
                    loss = run.observables["loss"]
                    if len(g) and (not seen or len(g) > seen[-1][1]):
                        seen.append((len(loss), len(g), loss.value.copy(), g.frame(-1)))
            if len(seen) >= 2 and not cli_checked:
                summary = run_cli("summary", path, "--json")
                plot = run_cli("plot", path, "-o", tmp_path / "plots", "--frames", "2")
                assert summary.returncode == 0, summary.stderr
                assert plot.returncode == 0, plot.stderr
                cli_checked = True
            time.sleep(0.1)
        assert process.poll() is None, "the run ended before the reads were done; make LIVE slower"
    finally:
        process.terminate()
        process.wait(timeout=60)

    assert len(seen) >= 4 and cli_checked
    assert all(b[1] > a[1] for a, b in zip(seen, seen[1:]))  # the file grew between reads
    # Everything read during the run is exactly what the file finally holds.
    with open_run(path) as final:
        loss = final.observables["loss"].value
        g = final.particles["two_layer"]
        assert len(g) >= seen[-1][1]
        for rows, frames, values, frame in seen:
            np.testing.assert_array_equal(values, loss[:rows])
            again = g.frame(frame.index)
            assert again.step == frame.step
            np.testing.assert_array_equal(again.value, frame.value)


def test_mfsim_reads_a_live_file_100_times_out_of_100(tmp_path):
    """`mfsim info live.h5` and runs with data.path and init.path = live.h5, each made while the
    writer commits frames: a read that races the writer's flush is retried (bounded) while the
    writer holds the file's lock, so that every one of 100 reads succeeds."""
    path = tmp_path / "live.h5"
    # Small frames committed fast: many flushes for a read to fall into (without the retry, about
    # 1 read in 100 failed).
    fast = dict(LIVE, model__width=256, data__n_train=50)
    process = subprocess.Popen(mfsim_command(path, **fast), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failures, reads = [], 0
    try:
        deadline = time.monotonic() + 120
        while not (path.exists() and path.stat().st_size > 0) and time.monotonic() < deadline:
            assert process.poll() is None, f"mfsim stopped early: {process.stderr.read().decode()}"
            time.sleep(0.05)
        # The first frame: before it the file holds no particles to read.
        while time.monotonic() < deadline:
            r = subprocess.run([str(mfsim_executable()), "info", str(path)], capture_output=True, text=True)
            if r.returncode == 0 and "frames" in r.stdout:
                break
            time.sleep(0.05)
        # What no frame changes: the parameters, the kernels, the model and the data. Each line
        # rests on a probe (has_parameter, has_data) that a racing read must not answer "absent".
        fixed = r.stdout.splitlines()[:4]
        assert fixed[3].startswith("data: "), r.stdout
        for i in range(100):
            assert process.poll() is None, f"the writer stopped: {process.stderr.read().decode()}"
            if i % 10 == 9:  # a restart from the live file's last frame, on its data
                command = [str(mfsim_executable()), "run", str(CONFIG), "-o", str(tmp_path / "re.h5"), "--force",
                           "-q", "--set", "init.kind=file", "--set", f"init.path={path}", "--set", "data.kind=file",
                           "--set", f"data.path={path}", "--set", "model.width=256", "--set", "flow.steps=1",
                           "--set", "diagnostics.gram=false", "--set", "diagnostics.kl=[]"]
            else:
                command = [str(mfsim_executable()), "info", str(path)]
            r = subprocess.run(command, capture_output=True, text=True, timeout=120)
            reads += 1
            if r.returncode != 0:
                failures.append(r.stderr.strip())
            elif command[1] == "info" and r.stdout.splitlines()[:4] != fixed:
                failures.append(f"info's first lines changed: {r.stdout.splitlines()[:4]}")
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert reads == 100
    assert not failures, f"{len(failures)} of {reads} reads failed: {failures[:3]}"


def damaged_parameters_index(good, damaged):
    """A copy of `good` with one byte flipped where the file, /h5md and /parameters still open
    but HDF5 cannot say whether /parameters holds an attribute: the first such byte."""
    import os

    import h5py

    data = good.read_bytes()
    damaged.write_bytes(data)
    fd = os.open(damaged, os.O_WRONLY)
    for offset in range(len(data)):
        if offset:
            os.pwrite(fd, data[offset - 1 : offset], offset - 1)
        os.pwrite(fd, bytes([data[offset] ^ 0xFF]), offset)
        try:
            with h5py.File(damaged, "r") as f:
                if "h5md" not in f or "committed_step" not in f.attrs:
                    continue
                parameters = f["parameters"]
                try:
                    "no_such_parameter" in parameters.attrs
                except (KeyError, RuntimeError, OSError):
                    os.close(fd)
                    return offset
        except (KeyError, RuntimeError, OSError, ValueError):
            continue
    raise AssertionError("no byte damages the /parameters attribute index alone")


def test_probes_that_hdf5_cannot_answer_are_errors_retried_while_written(tmp_path):
    """`mfsim info` asks whether /parameters holds an attribute before reading it. Where HDF5
    cannot say (a damaged index, or metadata a writer is changing), the probe is an error, never
    "absent": one line naming the file, at once if nobody writes it, after the bounded retries if
    another process holds the writer's lock (the lock is this test's, on its own descriptor)."""
    import fcntl
    import os

    good = run_mfsim(tmp_path / "good.h5")
    damaged = tmp_path / "damaged.h5"
    damaged_parameters_index(good, damaged)
    r = subprocess.run([str(mfsim_executable()), "info", str(damaged)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{damaged}: HDF5: cannot look up attribute" in r.stderr, r.stderr
    assert "read 20 times" not in r.stderr
    fd = os.open(damaged, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = subprocess.run([str(mfsim_executable()), "info", str(damaged)], capture_output=True, text=True)
    finally:
        os.close(fd)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot look up attribute" in r.stderr and "(read 20 times while another process writes the file)" in r.stderr, r.stderr

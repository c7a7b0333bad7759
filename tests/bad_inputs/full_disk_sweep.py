#!/usr/bin/python3
"""Full-disk sweep: runs mfsim into small tmpfs mounts of many sizes (model A with and without
log-densities, model B), so that the disk fills at every point of a frame, and checks the promise
of docs/configuration.md: exit 1 with one stderr line saying "no space left on device", every
frame in the file complete (all groups readable, no all-zero frame), a restart from the last
frame running, and the message saying what the file holds (the step of its last frame, or no file). Also kills runs with SIGTERM at random times and checks the same of the file.

Needs root (mount -t tmpfs); exits 77 (ctest: skipped) otherwise.
Usage: full_disk_sweep.py MFSIM_EXECUTABLE [RUNS (default 24)]
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

CONFIG = """[model]
width = 4000
[data]
dim = 3
n_train = 20
n_test = 10
[flow]
dt = 0.01
steps = 100000
[output]
observe_every = 1
snapshot_every = 1
[diagnostics]
gram = false
"""


def check_file(path, problems, label):
    """Every frame complete: values finite and not all zero. True when every group has a frame
    (a restart can start from it)."""
    try:
        with h5py.File(path, "r") as f:
            frames = []
            for group in f["particles"]:
                pos = f[f"particles/{group}/position"]
                rows = min(pos["step"].shape[0], pos["time"].shape[0], pos["value"].shape[0])
                if "committed_step" in f.attrs:  # the rows a reader counts (file-format.md)
                    steps = pos["step"][:rows]
                    rows = int(np.sum(steps <= f.attrs["committed_step"]))
                frames.append(rows)
                for j in range(rows):
                    v = pos["value"][j]
                    if not np.all(np.isfinite(v)) or not np.any(v):
                        problems.append(f"{label}: {group} frame {j} incomplete")
                        break
            return min(frames) > 0
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        problems.append(f"{label}: unreadable: {e}")
        return False


def last_frame_step(path):
    """The step of the last frame that every group has committed (what a restart reads)."""
    with h5py.File(path, "r") as f:
        last = []
        for group in f["particles"]:
            steps = f[f"particles/{group}/position/step"][:]
            if "committed_step" in f.attrs:
                steps = steps[steps <= f.attrs["committed_step"]]
            last.append(int(steps[-1]) if len(steps) else -1)
        return min(last)


def check_message(err, path, problems, label):
    """The message says what the file holds: "holds every frame up to step N" where N is the last
    committed frame; "no frame was written" or "nothing written" where the output is absent."""
    match = re.search(r"holds every frame up to step (\d+)", err)
    if match:
        if not os.path.exists(path):
            problems.append(f"{label}: the message names step {match[1]} but there is no file")
        elif last_frame_step(path) != int(match[1]):
            problems.append(f"{label}: the message says step {match[1]}, the file's last frame "
                            f"is step {last_frame_step(path)}")
    elif "no frame was written" in err or "nothing written" in err:
        if os.path.exists(path):
            problems.append(f"{label}: the message says no frame, but the file exists")
    else:
        problems.append(f"{label}: the message does not say what the file holds: {err.strip()}")


def restart(exe, work, path, extra, problems, label):
    r = subprocess.run([exe, "run", "run.toml", "-q", "-o", "restart.h5", "--force", "--set",
                        "flow.steps=1", "--set", "init.kind=file", "--set", f"init.path={path}"]
                       + extra, cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(f"{label}: restart failed: {r.stderr.strip()}")


def main():
    exe = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    work = tempfile.mkdtemp(prefix="mfsim_full_")
    with open(os.path.join(work, "run.toml"), "w") as f:
        f.write(CONFIG)
    mnt = os.path.join(work, "small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        print("full_disk_sweep: cannot mount a tmpfs (needs root): skipped")
        return 77
    subprocess.run(["umount", mnt])
    variants = [[], ["--set", 'diagnostics.kl=["transport"]'],
                ["--set", "model.kind=resnet", "--set", "model.depth=4", "--set",
                 "model.width=500", "--set", "model.head_width=3000"]]
    rng = random.Random(1)
    problems, full_runs, kills = [], 0, 0
    for i in range(runs):
        extra = variants[i % len(variants)]
        size_kib = 1500 + rng.randrange(0, 6000)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", mnt], check=True)
        try:
            label = f"run {i} ({size_kib} KiB, {' '.join(extra) or 'model A'})"
            r = subprocess.run([exe, "run", "run.toml", "-q", "-o", "small/out.h5"] + extra,
                               cwd=work, capture_output=True, text=True, timeout=300)
            lines = r.stderr.splitlines()
            if r.returncode != 1 or len(lines) != 1 or "no space left on device" not in r.stderr:
                problems.append(f"{label}: exit {r.returncode}, stderr {r.stderr.strip()!r}")
            check_message(r.stderr, os.path.join(mnt, "out.h5"), problems, label)
            if os.path.exists(os.path.join(mnt, "out.h5")):
                if check_file(os.path.join(mnt, "out.h5"), problems, label):
                    restart(exe, work, "small/out.h5", extra, problems, label)
            full_runs += 1
        finally:
            subprocess.run(["umount", mnt])
    for i in range(runs // 2):
        extra = variants[i % len(variants)]
        label = f"kill {i}"
        out = os.path.join(work, "killed.h5")
        if os.path.exists(out):
            os.remove(out)
        p = subprocess.Popen([exe, "run", "run.toml", "-q", "-o", "killed.h5"] + extra, cwd=work,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.5 + rng.random() * 1.5)
        p.send_signal(signal.SIGTERM)
        err = p.communicate()[1]
        if p.returncode != 128 + signal.SIGTERM or len(err.splitlines()) != 1:
            problems.append(f"{label}: exit {p.returncode}, stderr {err.strip()!r}")
        if check_file(out, problems, label):
            restart(exe, work, "killed.h5", extra, problems, label)
        kills += 1
    for p in problems:
        print("PROBLEM:", p)
    print(f"full-disk runs: {full_runs}, SIGTERM runs: {kills}, problems: {len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

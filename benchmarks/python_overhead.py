#!/usr/bin/env python3
"""The Python module's overhead per step: the same run (a two-layer network, Euler steps, the
loss observed every 10 steps and nothing else) timed as `mfsim run` reports its own loop (its
summary's seconds; it writes its file) and as Simulation.run() takes from call to return, with
the same file written (run(output=...)) and without (output=None), including the module's
per-point work (the Ctrl-C poll, the rows kept in memory, building the Result).

    PYTHONPATH=build/python:analysis /usr/bin/python3 benchmarks/python_overhead.py build/simulations/mfsim

Each case runs `--repeats` times alternately in both; the minimum of each is compared. The last
column is the part of run()'s wall time outside the C++ run loop (its set-up, the Result), per
step; the loop's own per-point additions (the Ctrl-C poll: a clock read, the GIL every 20 ms) are
inside both loops' times.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mfsim

CASES = [  # (n_train, width, dim, steps)
    (1000, 10_000, 16, 20),
    (100, 1_000, 16, 2000),
]


def settings(n, m, d, steps):
    return {"model.width": m, "data.n_train": n, "data.n_test": 0, "data.dim": d,
            "flow.integrator": "euler", "flow.dt": 0.01, "flow.steps": steps, "flow.t_end": 1e300,
            "output.observe_every": 10, "output.snapshot_every": 10**9, "init.antithetic": False,
            "diagnostics.gram": False, "diagnostics.kl": [], "diagnostics.path_norm": False,
            "diagnostics.path_length": False, "diagnostics.free_energy": False}


def cli_seconds(binary, overrides, folder):
    (Path(folder) / "empty.toml").write_text("")  # the defaults, as mfsim.Config(overrides) has
    command = [binary, "run", str(Path(folder) / "empty.toml"), "-o", str(Path(folder) / "cli.h5"), "--force", "-q"]
    for item in mfsim._overrides(overrides):
        command += ["--set", item]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"\) in ([0-9.e+-]+) s", out).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(mfsim.backend())
    print("| n | m | d | steps | CLI s/step | run(output=) s/step | overhead | run() s/step | "
          "overhead | run() outside its loop, per step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for n, m, d, steps in CASES:
            overrides = settings(n, m, d, steps)
            config = mfsim.Config(overrides)
            cli, written, py, outside = [], [], [], []
            for _ in range(args.repeats):
                cli.append(cli_seconds(args.binary, overrides, folder))
                sim = mfsim.Simulation(config)
                start = time.perf_counter()
                sim.run(output=Path(folder) / "py.h5", overwrite=True, progress=False)
                written.append(time.perf_counter() - start)
                sim = mfsim.Simulation(config)
                start = time.perf_counter()
                result = sim.run(progress=False)
                py.append(time.perf_counter() - start)
                outside.append(py[-1] - result.seconds)
            c, w, p = min(cli) / steps, min(written) / steps, min(py) / steps
            print(f"| {n} | {m} | {d} | {steps} | {c:.4g} | {w:.4g} | {100 * (w - c) / c:+.2f} % | "
                  f"{p:.4g} | {100 * (p - c) / c:+.2f} % | {min(outside) / steps:.2g} s |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The Python module's overhead per step: the same run (a two-layer network, Euler steps, the
loss observed every 10 steps and nothing else) timed as `mfsim run` reports its own loop (its
summary's seconds; it writes its file) and as Simulation.run() takes from call to return, with
the same file written (run(output=...)) and without (output=None), including the module's
per-point work (the Ctrl-C poll, the rows kept in memory, building the Result).

    PYTHONPATH=build/python:analysis /usr/bin/python3 benchmarks/python_overhead.py build/simulations/mfsim

The three timings of a case are interleaved: each repetition times all three back to back, in an
order rotated from one repetition to the next, so that a change of the machine's load falls on
all three alike; the overhead is computed per repetition (paired) and summarised by its median
and range over the repetitions, beside the ratio of the minima. The load average is printed
before and after each case. The last column is the part of run()'s wall time outside the C++ run
loop (its set-up, the Result), per step; the loop's own per-point additions (the Ctrl-C poll: a
clock read, the GIL every 20 ms) are inside both loops' times.
"""

import argparse
import os
import re
import statistics
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


def python_seconds(config, output):
    """run()'s wall time from call to return, and the part outside its C++ loop."""
    sim = mfsim.Simulation(config)
    start = time.perf_counter()
    result = sim.run(output=output, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    return seconds, seconds - result.seconds


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def percent(x: float) -> str:
    return f"{100 * x:+.2f} %"


def summary(overheads: list[float]) -> str:
    """The median of the paired overheads and their range over the repetitions."""
    return (f"{percent(statistics.median(overheads))} "
            f"({percent(min(overheads))} … {percent(max(overheads))})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(mfsim.backend())
    print(f"{os.cpu_count()} CPUs; load average (1/5/15 min) at the start: {load()}")
    print("| n | m | d | steps | CLI s/step (min) | run(output=) overhead: paired median (range) | "
          "ratio of minima | run() overhead: paired median (range) | ratio of minima | "
          "run() outside its loop, per step | load before → after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for n, m, d, steps in CASES:
            overrides = settings(n, m, d, steps)
            config = mfsim.Config(overrides)
            before = load()
            timings = {"cli": [], "written": [], "memory": []}
            outside = []
            for r in range(args.repeats):
                order = ["cli", "written", "memory"]
                order = order[r % 3:] + order[:r % 3]
                for what in order:
                    if what == "cli":
                        timings["cli"].append(cli_seconds(args.binary, overrides, folder))
                    else:
                        output = Path(folder) / "py.h5" if what == "written" else None
                        seconds, off_loop = python_seconds(config, output)
                        timings[what].append(seconds)
                        if what == "memory":
                            outside.append(off_loop)
            cli = timings["cli"]
            paired = {what: [t / c - 1 for t, c in zip(timings[what], cli)]
                      for what in ("written", "memory")}
            minima = {what: min(timings[what]) / min(cli) - 1 for what in ("written", "memory")}
            print(f"| {n} | {m} | {d} | {steps} | {min(cli) / steps:.4g} | "
                  f"{summary(paired['written'])} | {percent(minima['written'])} | "
                  f"{summary(paired['memory'])} | {percent(minima['memory'])} | "
                  f"{min(outside) / steps:.2g} s | {before} → {load()} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""mfsim's population pair kernel beside the KeOps peer of benchmarks/peers/population.py.

    /usr/bin/python3 benchmarks/run_population_peer.py --check [--build DIR] [--venv DIR]
    /usr/bin/python3 benchmarks/run_population_peer.py [--points M,D ...] [--rounds R]
                                                       [--build DIR] [--venv DIR] [--out FILE]

--check (the ctest smoke.population_keops): a small erf problem (m = 64, d = 5, a teacher of 3
neurons, a diagonal covariance, β = 1.3) through mfsim's binary, one Euler step with dt = 1e6
from which v_ref = (θ1 − θ0)/dt, and the KeOps velocity of the same particles and sources, which
must agree with it to 1e−12 (relative, for a and for w). Exit 77 when the peers' venv (with
pykeops) is missing, 1 on a disagreement.

Timing (default points m ∈ {4096, 16384} × d ∈ {16, 256}): the erf velocity of m particles
against m + 4 sources (a teacher of 4 neurons) as bench_population's BM_PopulationVelocity
measures it (the `release` build's bench_population, --build), and the KeOps peer on the same
sizes. R rounds, each running every (point, implementation) once in a random order (interleaved
repetitions), every process pinned to core 0 with one thread (OMP_NUM_THREADS=1 for KeOps' OpenMP).
mfsim's figures are Google Benchmark's manual (wall) time of one evaluation and the thread's CPU
time (m·(m + 4)/pairs_cpu); KeOps' the wall and CPU time of one call in a process whose build
folder holds the compiled reduction already (the call includes loading it). Before the rounds,
one KeOps process per d with a fresh build folder times its first call (compilation plus one
evaluation) and a second one at m = 512: their difference is the compilation. The table gives the minimum over the rounds. Writes the figures to --out (JSON) and a
markdown table on stdout, with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "peers" / "population.py"
TOLERANCE = 1e-12
COMPILE_PARTICLES = 512  # the size at which KeOps' first call (compilation) is timed
CHECK_CONFIG = """
[model]
width = 64
activation = "erf"
bias = false
beta = 1.3
[data]
kind = "population"
dim = 5
teacher_width = 3
n_test = 0
seed = 4
covariance_diagonal = [1.0, 0.5, 2.0, 1.0, 0.25]
[init]
std_w = 0.6
seed = 3
[flow]
integrator = "euler"
dt = 1e6
steps = 1
[output]
observe_every = 1
snapshot_every = 1
[diagnostics]
kl = []
path_norm = false
path_length = false
"""


def pinned():
    os.sched_setaffinity(0, {0})


def venv_python(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    if not python.is_file():
        return None
    probe = subprocess.run([str(python), "-c", "import pykeops"], capture_output=True)
    return python if probe.returncode == 0 else None


def run_peer(python, problem, build_folder=None, reps=1):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        command = [str(python), str(PEER), str(problem), str(out), "--reps", str(reps)]
        if build_folder:
            command += ["--build-folder", str(build_folder)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        result = subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=pinned,
                                timeout=3600)
        if result.returncode != 0:
            sys.exit(f"KeOps peer failed: {result.stderr[-2000:]}")
        return json.loads(out.read_text())


def check(args, python):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "check.toml").write_text(CHECK_CONFIG)
        out = tmp / "check.h5"
        result = subprocess.run([str(args.build / "simulations" / "mfsim"), "run", str(tmp / "check.toml"),
                                 "-o", str(out), "--force", "-q"], capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"mfsim failed: {result.stderr}")
        with h5py.File(out, "r") as f:
            frames = f["particles/two_layer/position/value"][:]
            w_star, a_star = f["data/teacher/w"][:], f["data/teacher/a"][:]
            scale = float(f["data/teacher"].attrs["output_scale"])
            variance = np.asarray(f["data/teacher"].attrs["covariance_diagonal"], dtype=float)
        beta, dt = 1.3, 1e6
        theta = frames[0]
        m = theta.shape[0]
        sources = np.vstack([np.column_stack([beta * scale * a_star, w_star]),
                             np.column_stack([-beta**2 / m * theta[:, 0], theta[:, 1:]])])
        np.savez(tmp / "check.npz", theta=theta, sources=sources, variance=variance,
                 v_ref=(frames[1] - frames[0]) / dt)
        peer = run_peer(python, tmp / "check.npz", reps=0)
    error = peer["relative_error"]
    print(f"KeOps (pykeops {peer['pykeops']}) against mfsim's velocity, m = {m}, d = "
          f"{theta.shape[1] - 1}: relative error {error:.2e} (tolerance {TOLERANCE:g})")
    return 0 if error <= TOLERANCE else 1


def timing_problem(path, m, d, seed=2):
    """bench_population's shapes: m particles (a ~ N(0, 1), w ~ N(0, I/d)), a teacher of 4
    neurons, Σ = I, β = 1 (the values do not change the work)."""
    rng = np.random.default_rng(seed)
    theta = np.column_stack([rng.normal(size=m), rng.normal(size=(m, d)) / np.sqrt(d)])
    teacher = np.column_stack([rng.normal(size=4) / 2, rng.normal(size=(4, d))])
    students = np.column_stack([-theta[:, 0] / m, theta[:, 1:]])
    np.savez(path, theta=theta, sources=np.vstack([teacher, students]), variance=np.ones(d))


def mfsim_seconds(args, m, d):
    bench = args.build / "benchmarks" / "bench_population"
    result = subprocess.run(
        [str(bench), f"--benchmark_filter=^BM_PopulationVelocity/m:{m}/d:{d}/act:0/",
         "--benchmark_format=json", "--benchmark_min_time=0.5"],
        capture_output=True, text=True, preexec_fn=pinned, timeout=3600)
    if result.returncode != 0:
        sys.exit(f"bench_population failed: {result.stderr}")
    runs = json.loads(result.stdout)["benchmarks"]
    if not runs:
        sys.exit(f"bench_population has no point m:{m}/d:{d}/act:0")
    # Wall: ms → s (Unit(kMillisecond)); CPU: from the pairs per CPU second.
    return runs[0]["real_time"] / 1e3, m * (m + 4) / runs[0]["pairs_cpu"]


def timing(args, python):
    points = [tuple(int(v) for v in p.split(",")) for p in args.points]
    record = {"machine": platform.processor() or platform.machine(), "load_start": os.getloadavg(),
              "points": {}, "compile": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for m, d in points:
            timing_problem(tmp / f"{m}_{d}.npz", m, d)
            record["points"][f"{m},{d}"] = {"mfsim_s": [], "mfsim_cpu_s": [], "keops_s": [],
                                            "keops_cpu_s": []}
        for d in sorted({d for _, d in points}):
            m = COMPILE_PARTICLES  # the compiled reduction depends on d alone
            timing_problem(tmp / f"compile_{d}.npz", m, d)
            cold = run_peer(python, tmp / f"compile_{d}.npz", build_folder=tmp / "keops", reps=1)
            record["compile"][str(d)] = {"m": m, "first_s": cold["first_s"], "warm_s": cold["wall_s"][0]}
            print(f"d = {d}: first call {cold['first_s']:.2f} s (compiling), then {cold['wall_s'][0]:.3f} s",
                  flush=True)
        for r in range(args.rounds):
            runs = [(p, impl) for p in points for impl in ("mfsim", "keops")]
            random.shuffle(runs)
            for (m, d), impl in runs:
                entry = record["points"][f"{m},{d}"]
                if impl == "mfsim":
                    wall, cpu = mfsim_seconds(args, m, d)
                else:
                    peer = run_peer(python, tmp / f"{m}_{d}.npz", build_folder=tmp / "keops", reps=0)
                    wall, cpu = peer["first_s"], peer["first_cpu_s"]
                entry[impl + "_s"].append(wall)
                entry[impl + "_cpu_s"].append(cpu)
                print(f"round {r}: m = {m}, d = {d}, {impl}: {entry[impl + '_s'][-1]:.4f} s", flush=True)
    record["load_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))
    print("\n| m | d | mfsim wall (s) | KeOps wall (s) | ratio | mfsim CPU (s) | KeOps CPU (s) | ratio |\n"
          "|---|---|---|---|---|---|---|---|")
    for key, entry in record["points"].items():
        m, d = key.split(",")
        w_m, w_k = min(entry["mfsim_s"]), min(entry["keops_s"])
        c_m, c_k = min(entry["mfsim_cpu_s"]), min(entry["keops_cpu_s"])
        print(f"| {m} | {d} | {w_m:.4g} | {w_k:.4g} | {w_k / w_m:.1f} | {c_m:.4g} | {c_k:.4g} | {c_k / c_m:.1f} |")
    print(f"\nload average: start {record['load_start']}, end {record['load_end']}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    p.add_argument("--points", nargs="+", default=["4096,16", "16384,16", "4096,256", "16384,256"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--build", type=Path, default=ROOT / "build")
    p.add_argument("--venv", type=Path, default=ROOT / ".venv-peers")
    p.add_argument("--out")
    args = p.parse_args()
    python = venv_python(args.venv)
    if python is None:
        print(f"skipped: no venv with pykeops at {args.venv} (scripts/setup_peers.sh)")
        return 77
    return check(args, python) if args.check else timing(args, python)


if __name__ == "__main__":
    sys.exit(main())

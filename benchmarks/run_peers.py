#!/usr/bin/python3
"""mfsim's two-layer Euler step side by side with the peers of benchmarks/peers/step.py.

    /usr/bin/python3 benchmarks/run_peers.py [--quick | --full] [--reps R] [--out DIR]

Per size (n, m, d): mfsim (build-native/simulations/mfsim, `native` preset) writes the problem
(data, particles at step 0) and one Euler step with dt = 1e6, from which v_ref = (θ1 − θ0)/dt; each
peer checks its first velocity against v_ref (≤ 1e−10, relative, per block) before it is timed.
Then, R rounds, each running every (implementation, threads) once in a random order (interleaved
repetitions): mfsim with one thread (build-native, pinned to core 0) and with two (two MPI ranks
of build-native-mpi, the same flags plus MFSIM_ENABLE_MPI; Kokkos here is Serial-only), and each
peer pinned to 1 or 2 cores with its thread pools sized to match. Every run is a subprocess
capped at 8 GB of address space (RLIMIT_AS) and a timeout; a peer that fails at some m is
recorded there and not run at larger m (same n, d, threads).

Seconds per step: from mfsim's own report of its steps loop ("N steps ... in X s"), the difference
between a run of 1 + K steps and one of 1 step, over K (the end observations cancel); a peer's
fastest timed step (after a warm-up step that includes compilation); the minimum over the
rounds. Peak memory: the peak RSS of the subprocess (os.wait4; for mpirun, the largest rank).
Writes DIR/peers.json and DIR/peers.png (time and memory against m at n = 1000, d = 16).

Sizes: --quick n = 100, m = 1000, d = 16, one thread, one round (the ctest smoke test; exit 77
when the venv is missing); default: n = 1000, d = 16, m ∈ {10³, 10⁴, 10⁵, 10⁶} and
n = 1000, m = 10⁴, d = 256; --full: n ∈ {10², 10³, 10⁴}, m ∈ {10³ … 10⁶}, d ∈ {16, 256}.
Exit status 1 when a peer's velocity disagrees with mfsim's or mfsim fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STEP = ROOT / "benchmarks" / "peers" / "step.py"
MEMORY_CAP = 8 * 1024**3
PEERS = ["numpy", "jax_grad", "jax_vmap_jacobian", "keops"]
SKIP = 77

CONFIG = """[model]
kind = "two_layer"
activation = "tanh"
width = {m}
beta = 1.0
bias = true
[data]
kind = "teacher"
dim = {d}
n_train = {n}
n_test = 0
seed = 1
[init]
kind = "gaussian"
seed = 2
[flow]
integrator = "euler"
dt = {dt}
steps = {steps}
[output]
path = "{path}"
observe_every = {steps}
snapshot_every = {steps}
[diagnostics]
gram = false
ntk = false
kl = []
path_norm = false
path_length = false
"""


def run_capped(command, *, cores, env=None, timeout, cwd=None):
    """Runs command pinned to `cores`, under the memory cap; returns (rc, stdout, stderr, peak RSS
    in bytes, wall seconds, timed_out)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        os.sched_setaffinity(0, cores)
        os.setsid()

    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd, preexec_fn=limit)
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    return (proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
            usage.ru_maxrss * 1024, wall, timed_out.is_set())


def mpi_env():
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def mfsim_command(args, threads, config):
    if threads == 1:
        return [str(args.build / "simulations" / "mfsim"), "run", str(config), "--force", "--quiet"]
    return ["mpirun", "-n", str(threads), "--bind-to", "none", str(args.mpi_build / "simulations" / "mfsim"),
            "run", str(config), "--force", "--quiet"]


def write_config(work, tag, n, m, d, dt, steps):
    path = work / f"{tag}.toml"
    path.write_text(CONFIG.format(n=n, m=m, d=d, dt=dt, steps=steps, path=work / f"{tag}.h5"))
    return path


def make_problem(args, work, n, m, d):
    """mfsim's data, particles and one Euler step (dt = 1e6) → problem.npz with v_ref."""
    dt = 1e6
    config = write_config(work, "reference", n, m, d, dt, 1)
    rc, _, err, _, _, _ = run_capped(mfsim_command(args, 1, config), cores={0, 1}, timeout=args.timeout * 4)
    if rc != 0:
        raise RuntimeError(f"mfsim failed on the reference step: {err.strip()}")
    with h5py.File(work / "reference.h5", "r") as f:
        x, y = f["data/train/x"][()], f["data/train/y"][()]
        pos = f["particles/two_layer/position"]
        theta0, theta1 = pos["value"][0], pos["value"][1]
        step_dt = float(pos["time"][1] - pos["time"][0])
    os.remove(work / "reference.h5")
    problem = work / "problem.npz"
    np.savez(problem, x=x, y=y, theta=theta0, beta=1.0, v_ref=(theta1 - theta0) / step_dt)
    return problem


def steps_for(n, m, d):
    return int(max(1, min(5, 3e9 // (n * m * (d + 1)))))


def _mfsim_loop(args, work, n, m, d, threads, steps):
    """One mfsim run of `steps` Euler steps (one observation and one snapshot at each end):
    (status, its reported seconds for the steps loop, peak RSS, message)."""
    config = write_config(work, f"mfsim{threads}", n, m, d, 1e-3, steps)
    rc, out, err, rss, _, timed_out = run_capped(mfsim_command(args, threads, config), cores=set(range(threads)),
                                                env=mpi_env(), timeout=args.timeout * 4)
    if (work / f"mfsim{threads}.h5").exists():
        os.remove(work / f"mfsim{threads}.h5")
    if timed_out:
        return "timeout", None, rss, ""
    text = out + err
    match = re.search(r"mfsim: (\d+) steps .* in ([0-9.eE+-]+) s", text)
    if rc != 0 or not match:
        return ("oom" if "bad_alloc" in text or "memory" in text.lower() else "error"), None, rss, text.strip()[-400:]
    return "ok", float(match.group(2)), rss, ""


def time_mfsim(args, work, n, m, d, threads):
    """Seconds per step = (T(1 + K) − T(1)) / K: the steps-loop times of two runs that differ only
    in their number of steps, so that the observations and snapshots at both ends cancel."""
    steps = steps_for(n, m, d)
    status, one, rss1, message = _mfsim_loop(args, work, n, m, d, threads, 1)
    if status == "ok":
        status, many, rss, message = _mfsim_loop(args, work, n, m, d, threads, 1 + steps)
    if status != "ok":
        return {"status": status, "peak_rss_bytes": rss1, "message": message}
    return {"status": "ok", "seconds": max(many - one, 1e-9) / steps, "peak_rss_bytes": max(rss, rss1)}


def peer_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1
                        else f"--xla_force_host_platform_device_count=1")
    return env


def time_peer(args, work, peer, problem, n, m, d, threads):
    python = "/usr/bin/python3" if peer == "numpy" else str(args.venv / "bin" / "python")
    out = work / f"{peer}{threads}.json"
    if out.exists():
        os.remove(out)
    command = [python, str(STEP), peer, str(problem), str(out), "--steps", str(steps_for(n, m, d))]
    rc, _, err, rss, _, timed_out = run_capped(command, cores=set(range(threads)), env=peer_env(threads),
                                              timeout=args.timeout)
    if timed_out:
        return {"status": "timeout", "peak_rss_bytes": rss}
    if out.exists():
        result = json.loads(out.read_text())
        result["peak_rss_bytes"] = rss
        if result["status"] == "ok":
            result["seconds"] = min(result["wall_s"])
        return result
    low = err.lower()
    oom = any(s in low for s in ("memoryerror", "resource_exhausted", "bad_alloc", "out of memory",
                                 "unable to allocate", "cannot allocate"))
    return {"status": "oom" if oom else "error", "peak_rss_bytes": rss, "message": err.strip()[-400:]}


def available_peers(args):
    peers = ["numpy"]
    python = args.venv / "bin" / "python"
    if python.exists():
        for peer, module in (("jax_grad", "jax"), ("jax_vmap_jacobian", "jax"), ("keops", "pykeops")):
            if subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0:
                peers.append(peer)
    return peers


def versions(args):
    v = {"python": platform.python_version(), "numpy (Debian, numpy peer)": np.__version__}
    python = args.venv / "bin" / "python"
    if python.exists():
        code = ("import importlib.metadata as m\nfor p in ('numpy','jax','jaxlib','pykeops','keopscore'):\n"
                "    try: print(p, m.version(p))\n    except Exception: pass")
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, version = line.split()
            v[name if name != "numpy" else "numpy (venv)"] = version
    info = subprocess.run([str(args.build / "simulations" / "mfsim"), "--version"], capture_output=True, text=True)
    v["mfsim"] = (info.stdout or info.stderr).strip().splitlines()[0] if (info.stdout or info.stderr) else "?"
    return v


def sizes(args):
    if args.quick:
        return [(100, 1000, 16)]
    if args.full:
        return [(n, m, d) for d in (16, 256) for n in (100, 1000, 10000) for m in (1000, 10000, 100000, 1000000)]
    return [(1000, m, 16) for m in (1000, 10000, 100000, 1000000)] + [(1000, 10000, 256)]


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    names = sorted({r["impl"] for r in rows}, key=lambda s: (s != "mfsim", s))
    for i, name in enumerate(names):
        for threads, style in ((1, "-"), (2, "--")):
            sel = sorted((r for r in rows if r["impl"] == name and r["threads"] == threads and r["n"] == 1000
                          and r["d"] == 16 and r["status"] == "ok"), key=lambda r: r["m"])
            if not sel:
                continue
            ms = [r["m"] for r in sel]
            label = f"{name}, {threads} thr"
            ax_t.loglog(ms, [r["seconds"] for r in sel], style, marker="o", color=f"C{i}", label=label)
            ax_m.loglog(ms, [r["peak_rss_bytes"] / 1e6 for r in sel], style, marker="o", color=f"C{i}")
    ax_m.axhline(MEMORY_CAP / 1e6, color="k", lw=0.8, ls=":")
    ax_t.set(xlabel="m (particles)", ylabel="seconds per Euler step", title="n = 1000, d = 16")
    ax_m.set(xlabel="m (particles)", ylabel="peak RSS (MB)", title="memory (dotted: 8 GB cap)")
    ax_t.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--quick", action="store_true")
    grid.add_argument("--full", action="store_true")
    p.add_argument("--reps", type=int, default=None, help="rounds (default 1 with --quick, else 2)")
    p.add_argument("--build", type=Path, default=ROOT / "build-native")
    p.add_argument("--mpi-build", type=Path, default=ROOT / "build-native-mpi")
    p.add_argument("--venv", type=Path, default=ROOT / ".venv-peers")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per peer run (mfsim: 4x)")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    if not (args.build / "simulations" / "mfsim").exists():
        print(f"run_peers: no mfsim binary in {args.build} (build the native preset)", file=sys.stderr)
        return 1
    peers = available_peers(args)
    missing = [q for q in PEERS if q not in peers]
    if args.quick and missing:
        print(f"run_peers: SKIP: peers not installed: {', '.join(missing)} (run scripts/setup_peers.sh)")
        return SKIP
    thread_counts = [1] if args.quick else [1, 2]
    if 2 in thread_counts and not (args.mpi_build / "simulations" / "mfsim").exists():
        print(f"run_peers: no MPI build in {args.mpi_build}: mfsim's two-rank rows are left out", file=sys.stderr)
    rng = random.Random(17)
    rows, failed, bad = [], {}, False
    with tempfile.TemporaryDirectory(prefix="mfsim_peers_") as tmp:
        work = Path(tmp)
        for n, m, d in sizes(args):
            print(f"n = {n}, m = {m}, d = {d}", flush=True)
            problem = make_problem(args, work, n, m, d)
            jobs = [("mfsim", t) for t in thread_counts
                    if t == 1 or (args.mpi_build / "simulations" / "mfsim").exists()]
            jobs += [(q, t) for q in peers for t in thread_counts]
            results = {job: [] for job in jobs}
            for _ in range(reps):
                rng.shuffle(jobs)
                for impl, threads in jobs:
                    if (impl, threads, n, d) in failed:
                        continue
                    if impl == "mfsim":
                        r = time_mfsim(args, work, n, m, d, threads)
                    else:
                        r = time_peer(args, work, impl, problem, n, m, d, threads)
                    results[(impl, threads)].append(r)
                    print(f"  {impl:18s} {threads} thr: {r['status']:8s} "
                          f"{r.get('seconds', float('nan')):.4g} s/step  {r['peak_rss_bytes'] / 1e6:.0f} MB"
                          + (f"  rel. error {r['relative_error']:.1e}" if "relative_error" in r else ""), flush=True)
                    if r["status"] != "ok":
                        failed[(impl, threads, n, d)] = m
                        bad = bad or r["status"] == "mismatch" or impl == "mfsim"
            for (impl, threads), rs in results.items():
                if not rs:
                    rows.append({"impl": impl, "threads": threads, "n": n, "m": m, "d": d, "status": "skipped",
                                 "note": f"failed at m = {failed.get((impl, threads, n, d))}"})
                    continue
                ok = [r for r in rs if r["status"] == "ok"]
                row = {"impl": impl, "threads": threads, "n": n, "m": m, "d": d,
                       "status": "ok" if len(ok) == len(rs) else next(r["status"] for r in rs if r["status"] != "ok"),
                       "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rs), "repetitions": len(rs)}
                if ok:
                    row["seconds"] = min(r["seconds"] for r in ok)
                    row["seconds_all"] = [r["seconds"] for r in ok]
                    row["pair_updates_per_s"] = n * m / row["seconds"]
                if "relative_error" in rs[0]:
                    row["relative_error"] = max(r.get("relative_error", 0.0) for r in rs)
                if "message" in rs[-1]:
                    row["message"] = rs[-1]["message"]
                rows.append(row)
    for row in rows:
        ref = next((r for r in rows if r["impl"] == "mfsim" and r["threads"] == row["threads"]
                    and (r["n"], r["m"], r["d"]) == (row["n"], row["m"], row["d"]) and "seconds" in r), None)
        if ref and "seconds" in row:
            row["time_over_mfsim"] = row["seconds"] / ref["seconds"]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "memory_cap_bytes": MEMORY_CAP},
        "builds": {"mfsim_1": str(args.build.relative_to(ROOT)) if args.build.is_relative_to(ROOT) else str(args.build),
                   "mfsim_2": "mpirun -n 2 " + (str(args.mpi_build.relative_to(ROOT))
                                                if args.mpi_build.is_relative_to(ROOT) else str(args.mpi_build))},
        "versions": versions(args),
        "grid": "quick" if args.quick else "full" if args.full else "default",
        "rounds": reps,
        "tolerance": 1e-10,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(report, indent=1))
    if not args.quick:
        plot(rows, args.out / "peers.png")
    print(f"wrote {args.out / 'peers.json'}")
    return 1 if bad else 0


def _cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())

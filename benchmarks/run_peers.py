#!/usr/bin/python3
"""mfsim's Euler step side by side with the peers of benchmarks/peers/step.py.

    /usr/bin/python3 benchmarks/run_peers.py [--model resnet] [--quick | --full] [--points P [P ...]]
                                             [--threads T [T ...]] [--reps R] [--out DIR] [--note TEXT]
                                             [--build DIR] [--mpi-build DIR] [--venv DIR]

Per size: mfsim (--build, default build/: the `release` preset, -march=native) writes the problem
(data, particles at step 0) and one Euler step with dt = 1e6, from which v_ref = (θ1 − θ0)/dt; each
peer checks its first velocity against v_ref (≤ 1e−10, relative, per block of coordinates) before
it is timed. Then, R rounds, each running every (implementation, threads) once in a random order
(interleaved repetitions): mfsim with one thread (--build, pinned to core 0) and with two (two MPI
ranks of --mpi-build, default build-mpi/: the `mpi` preset; Kokkos here is Serial-only), and each
peer pinned to 1 or 2 cores with its thread pools sized to match. Every run is a subprocess
capped at 8 GB of address space (RLIMIT_AS) and a timeout; a peer that fails at some m is
recorded there and not run at larger m (same n, d, threads).

Seconds per step: mfsim's own report of its steps alone (with --time-phases: "steps X s (Y s/step)": the velocity
evaluations that the steps use and the updates, each phase closed by a Kokkos fence; the
observations and snapshots at both ends excluded), from one run of K steps; a peer's fastest timed
step (after a warm-up step that includes compilation); the minimum over the rounds. Peak memory:
the peak RSS of the subprocess (os.wait4; for mpirun, the largest rank).

Model A (two_layer, default): writes DIR/<date>-peers-two_layer.json and .png (time and memory
against m at n = 1000, d = 16; no plot with --quick); the date is the run's (UTC). The JSON records
the machine's load average at the start and the end, and --note's text (what the load means for the
figures, say); docs/peers.md shows its tables (benchmarks/peers/table.py --doc). --quick: n = 100, m = 1000, d = 16, one thread, one round (the ctest smoke test;
exit 77 when a peer is missing); default: n = 1000, d = 16, m ∈ {10³, 10⁴, 10⁵, 10⁶, 10⁷} and
n = 1000, m = 10⁴, d = 256; --full: n ∈ {10², 10³, 10⁴}, m ∈ {10³ … 10⁶}, d ∈ {16, 256}.
Model B (--model resnet): DIR/<date>-peers-resnet.json and .png; L = 8 layers of M ∈ {10², 10³, 10⁴, 10⁵}
particles and a head of K = 1000 (m = LM + K), n = 1000, d = 16 (--full adds n = 100 and d = 256);
--quick: n = 100, L = 4, M = K = 256.
--points: only these points, each "quick" (the --quick size of the model) or "n,m,d" (model B: n,M,d
with L = 8, K = 1000). --threads: the thread counts (default 1 and 2; 1 with --quick).
Exit status 1 when a peer's velocity disagrees with mfsim's or mfsim fails.
"""


from __future__ import annotations

import argparse
import dataclasses
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
PEERS = {"two_layer": ["numpy", "jax_grad", "jax_vmap_jacobian", "keops", "torch_autograd", "torch_manual"],
         "resnet": ["jax_grad", "torch_autograd"]}
MODULES = {"jax_grad": "jax", "jax_vmap_jacobian": "jax", "keops": "pykeops", "torch_autograd": "torch",
           "torch_manual": "torch"}
SKIP = 77

MODEL = {
    "two_layer": """kind = "two_layer"
activation = "tanh"
width = {width}
beta = 1.0
bias = true""",
    # Model B: tanh blocks and head, alpha = beta = 1, i.i.d. (not antithetic) particles, so that
    # no velocity vanishes.
    "resnet": """kind = "resnet"
activation = "tanh"
head_activation = "tanh"
depth = {depth}
width = {width}
head_width = {head}
alpha = 1.0
beta = 1.0""",
}

CONFIG = """[model]
{model}
[data]
kind = "teacher"
dim = {d}
n_train = {n}
n_test = 0
seed = 1
[init]
kind = "gaussian"
seed = 2
antithetic = false
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
        return [str(args.build / "simulations" / "mfsim"), "run", str(config), "--force", "--quiet", "--time-phases"]
    return ["mpirun", "-n", str(threads), "--bind-to", "none", str(args.mpi_build / "simulations" / "mfsim"),
            "run", str(config), "--force", "--quiet", "--time-phases"]


def write_config(work, tag, size, dt, steps):
    path = work / f"{tag}.toml"
    model = MODEL[size.model].format(**vars(size))
    path.write_text(CONFIG.format(model=model, n=size.n, d=size.d, dt=dt, steps=steps, path=work / f"{tag}.h5"))
    return path


@dataclasses.dataclass(frozen=True)
class Size:
    """One grid point. m: the particles in all (model B: depth·width blocks + head)."""

    model: str
    n: int
    d: int
    width: int  # model A: m; model B: M, per layer
    depth: int = 0  # model B: L
    head: int = 0  # model B: K

    @property
    def m(self):
        return self.width if self.model == "two_layer" else self.depth * self.width + self.head

    def key(self):
        """The row's figures of the size (what run_peers.json holds)."""
        keys = {"model": self.model, "n": self.n, "m": self.m, "d": self.d}
        if self.model == "resnet":
            keys.update(depth=self.depth, width=self.width, head_width=self.head)
        return keys

    def family(self):
        """What a failure at this size also rules out at larger ones (same n, d, depth, head)."""
        return (self.model, self.n, self.d, self.depth, self.head)

    def multiply_adds(self):
        """Multiply-adds of one step, roughly: what sets the number of timed steps."""
        return self.n * self.m * (self.d + 1) * (2 if self.model == "resnet" else 1)


def make_problem(args, work, size):
    """mfsim's data, particles and one Euler step (dt = 1e6) → problem.npz with mfsim's velocity."""
    dt = 1e6
    config = write_config(work, "reference", size, dt, 1)
    rc, _, err, _, _, _ = run_capped(mfsim_command(args, 1, config), cores={0, 1}, timeout=args.timeout * 4)
    if rc != 0:
        raise RuntimeError(f"mfsim failed on the reference step: {err.strip()}")
    problem = {"beta": 1.0}
    with h5py.File(work / "reference.h5", "r") as f:
        problem["x"], problem["y"] = f["data/train/x"][()], f["data/train/y"][()]
        groups = {"two_layer": [("two_layer", "theta", "v_ref")],
                  "resnet": [("resnet_blocks", "blocks", "v_ref_blocks"), ("resnet_head", "head", "v_ref_head")]}
        for group, name, ref in groups[size.model]:
            pos = f[f"particles/{group}/position"]
            theta0, theta1 = pos["value"][0], pos["value"][1]
            problem[name], problem[ref] = theta0, (theta1 - theta0) / float(pos["time"][1] - pos["time"][0])
    if size.model == "resnet":
        problem.update(alpha=1.0, depth=size.depth)
    os.remove(work / "reference.h5")
    path = work / "problem.npz"
    np.savez(path, **problem)
    return path


def steps_for(size):
    return int(max(1, min(5, 3e9 // size.multiply_adds())))


def time_mfsim(args, work, size, threads):
    """One mfsim run of K Euler steps: the seconds per step of its steps alone, as it reports them
    ("... steps X s (Y s/step) ...": the velocity evaluations that the steps use and the updates,
    without the observations and snapshots at both ends), and its peak RSS."""
    config = write_config(work, f"mfsim{threads}", size, 1e-3, steps_for(size))
    rc, out, err, rss, _, timed_out = run_capped(mfsim_command(args, threads, config), cores=set(range(threads)),
                                                env=mpi_env(), timeout=args.timeout * 4)
    if (work / f"mfsim{threads}.h5").exists():
        os.remove(work / f"mfsim{threads}.h5")
    if timed_out:
        return {"status": "timeout", "peak_rss_bytes": rss}
    text = out + err
    match = re.search(r"\+ steps [0-9.eE+-]+ s \(([0-9.eE+-]+) s/step\)", text)
    if rc != 0 or not match:
        status = "oom" if "bad_alloc" in text or "memory" in text.lower() else "error"
        return {"status": status, "peak_rss_bytes": rss, "message": text.strip()[-400:]}
    return {"status": "ok", "seconds": float(match.group(1)), "peak_rss_bytes": rss}


def peer_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1
                        else "--xla_force_host_platform_device_count=1")
    return env


def time_peer(args, work, peer, problem, size, threads):
    python = "/usr/bin/python3" if peer == "numpy" else str(args.venv / "bin" / "python")
    out = work / f"{peer}{threads}.json"
    if out.exists():
        os.remove(out)
    command = [python, str(STEP), peer, str(problem), str(out), "--model", size.model,
               "--steps", str(steps_for(size)), "--threads", str(threads)]
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
                                 "unable to allocate", "cannot allocate", "defaultcpuallocator"))
    return {"status": "oom" if oom else "error", "peak_rss_bytes": rss, "message": err.strip()[-400:]}


def available_peers(args):
    """The peers of args.model whose module imports (numpy: Debian's, the others: the venv's)."""
    python = args.venv / "bin" / "python"
    imports = {module: python.exists() and subprocess.run([str(python), "-c", f"import {module}"],
                                                          capture_output=True).returncode == 0
               for module in {MODULES[q] for q in PEERS[args.model] if q in MODULES}}
    return [q for q in PEERS[args.model] if q == "numpy" or imports.get(MODULES.get(q))]


def versions(args):
    v = {"python": platform.python_version(), "numpy (Debian, numpy peer)": np.__version__}
    python = args.venv / "bin" / "python"
    if python.exists():
        code = ("import importlib.metadata as m\nfor p in ('numpy','jax','jaxlib','pykeops','keopscore','torch'):\n"
                "    try: print(p, m.version(p))\n    except Exception: pass")
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, version = line.split()
            v[name if name != "numpy" else "numpy (venv)"] = version
    info = subprocess.run([str(args.build / "simulations" / "mfsim"), "--version"], capture_output=True, text=True)
    line = (info.stdout or info.stderr or "?").strip().splitlines()[0]
    v["mfsim"] = line.removeprefix("mfsim ")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if commit.returncode == 0:
        v["mfsim"] += f" (commit {commit.stdout.strip()})"
    return v


def sizes(args):
    if args.points:
        quick = {"two_layer": Size("two_layer", 100, 16, 1000), "resnet": Size("resnet", 100, 16, 256, depth=4, head=256)}
        points = []
        for p in args.points:
            if p == "quick":
                points.append(quick[args.model])
                continue
            n, m, d = (int(x) for x in p.split(","))
            points.append(Size("two_layer", n, d, m) if args.model == "two_layer"
                          else Size("resnet", n, d, m, depth=8, head=1000))
        return points
    if args.model == "resnet":  # L = 8 layers of M particles, a head of K = 1000
        if args.quick:
            return [Size("resnet", 100, 16, 256, depth=4, head=256)]
        grid = [(1000, 16)] + ([(100, 16), (1000, 256)] if args.full else [])
        return [Size("resnet", n, d, w, depth=8, head=1000) for n, d in grid for w in (100, 1000, 10000, 100000)]
    if args.quick:
        return [Size("two_layer", 100, 16, 1000)]
    if args.full:
        return [Size("two_layer", n, d, m) for d in (16, 256) for n in (100, 1000, 10000)
                for m in (1000, 10000, 100000, 1000000)]
    # m = 10⁷: where mfsim alone is left within the 8 GB cap (the peers failed by 10⁶ and are skipped).
    return ([Size("two_layer", 1000, 16, m) for m in (1000, 10000, 100000, 1000000, 10000000)]
            + [Size("two_layer", 1000, 256, 10000)])


def plot(rows, path, model):
    """Seconds per step and peak memory of every implementation at every point of the run (the points
    in grid order on the x axis; solid one thread, dashed two)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["n", "m", "d"] + (["depth", "width", "head_width"] if model == "resnet" else [])
    points = sorted({tuple(r[k] for k in keys) for r in rows}, key=lambda p: (p[2], p[0], p[1]))
    labels = [f"n={p[0]}\nm={p[1]:.0e}\nd={p[2]}".replace("e+0", "e") for p in points]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    names = sorted({r["impl"] for r in rows}, key=lambda s: (s != "mfsim", s))
    for i, name in enumerate(names):
        for threads, style in ((1, "-"), (2, "--")):
            sel = {tuple(r[k] for k in keys): r for r in rows
                   if r["impl"] == name and r["threads"] == threads and r["status"] == "ok"}
            xs = [x for x, p in enumerate(points) if p in sel]
            if not xs:
                continue
            label = f"{name}, {threads} thr"
            ax_t.semilogy(xs, [sel[points[x]]["seconds"] for x in xs], style, marker="o", color=f"C{i}", label=label)
            ax_m.semilogy(xs, [sel[points[x]]["peak_rss_bytes"] / 1e6 for x in xs], style, marker="o", color=f"C{i}")
    ax_m.axhline(MEMORY_CAP / 1e6, color="k", lw=0.8, ls=":")
    what = "model A" if model == "two_layer" else "model B (L, M, K as in the table)"
    for ax in (ax_t, ax_m):
        ax.set_xticks(range(len(points)), labels, fontsize=7)
    ax_t.set(ylabel="seconds per Euler step", title=what)
    ax_m.set(ylabel="peak RSS (MB)", title="memory (dotted: 8 GB cap)")
    ax_t.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def summarise(size, impl, threads, rs):
    """One table row from a (size, implementation, threads)'s repetitions."""
    row = {"impl": impl, "threads": threads, **size.key()}
    ok = [r for r in rs if r["status"] == "ok"]
    row.update(status="ok" if len(ok) == len(rs) else next(r["status"] for r in rs if r["status"] != "ok"),
               peak_rss_bytes=max(r["peak_rss_bytes"] for r in rs), repetitions=len(rs))
    if ok:
        row["seconds"] = min(r["seconds"] for r in ok)
        row["seconds_all"] = [r["seconds"] for r in ok]
        row["pair_updates_per_s"] = size.n * size.m / row["seconds"]
    if "relative_error" in rs[0]:
        row["relative_error"] = max(r.get("relative_error", 0.0) for r in rs)
    if "message" in rs[-1]:
        row["message"] = rs[-1]["message"]
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--quick", action="store_true")
    grid.add_argument("--full", action="store_true")
    p.add_argument("--model", choices=sorted(PEERS), default="two_layer")
    p.add_argument("--points", nargs="+", help='only these points: "quick" or "n,m,d" (model B: n,M,d)')
    p.add_argument("--threads", type=int, nargs="+", choices=(1, 2), help="thread counts (default 1 2; --quick: 1)")
    p.add_argument("--note", default="", help="a note stored in the results file (the load, what it means)")
    p.add_argument("--reps", type=int, default=None, help="rounds (default 1 with --quick, else 2)")
    p.add_argument("--build", type=Path, default=ROOT / "build", help="mfsim's one-thread build (default: build/)")
    p.add_argument("--mpi-build", type=Path, default=ROOT / "build-mpi",
                   help="mfsim's MPI build, for the two-rank rows (default: build-mpi/, the mpi preset)")
    p.add_argument("--venv", type=Path, default=ROOT / ".venv-peers")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per peer run (mfsim: 4x)")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    if not (args.build / "simulations" / "mfsim").exists():
        print(f"run_peers: no mfsim binary in {args.build} (cmake --preset release && "
              "cmake --build --preset release --target mfsim)", file=sys.stderr)
        return 1
    peers = available_peers(args)
    missing = [q for q in PEERS[args.model] if q not in peers]
    if args.quick and missing:
        print(f"run_peers: SKIP: peers not installed: {', '.join(missing)} (run scripts/setup_peers.sh)")
        return SKIP
    thread_counts = args.threads or ([1] if args.quick else [1, 2])
    load_at_start = os.getloadavg()
    mpi = (args.mpi_build / "simulations" / "mfsim").exists()
    if 2 in thread_counts and not mpi:
        print(f"run_peers: no MPI build in {args.mpi_build}: mfsim's two-rank rows are left out", file=sys.stderr)
    rng = random.Random(17)
    rows, failed, bad = [], {}, False
    with tempfile.TemporaryDirectory(prefix="mfsim_peers_") as tmp:
        work = Path(tmp)
        for size in sizes(args):
            print(", ".join(f"{k} = {v}" for k, v in size.key().items()), flush=True)
            problem = make_problem(args, work, size)
            jobs = [("mfsim", t) for t in thread_counts if t == 1 or mpi]
            jobs += [(q, t) for q in peers for t in thread_counts]
            results = {job: [] for job in jobs}
            for _ in range(reps):
                rng.shuffle(jobs)
                for impl, threads in jobs:
                    if (impl, threads, size.family()) in failed:
                        continue
                    if impl == "mfsim":
                        r = time_mfsim(args, work, size, threads)
                    else:
                        r = time_peer(args, work, impl, problem, size, threads)
                    results[(impl, threads)].append(r)
                    print(f"  {impl:18s} {threads} thr: {r['status']:8s} "
                          f"{r.get('seconds', float('nan')):.4g} s/step  {r['peak_rss_bytes'] / 1e6:.0f} MB"
                          + (f"  rel. error {r['relative_error']:.1e}" if "relative_error" in r else ""), flush=True)
                    if r["status"] != "ok":
                        failed[(impl, threads, size.family())] = size.m
                        bad = bad or r["status"] == "mismatch" or impl == "mfsim"
            for (impl, threads), rs in results.items():
                if rs:
                    rows.append(summarise(size, impl, threads, rs))
                else:
                    rows.append({"impl": impl, "threads": threads, **size.key(), "status": "skipped",
                                 "note": f"failed at m = {failed.get((impl, threads, size.family()))}"})
    same = ("model", "n", "m", "d", "threads")
    for row in rows:
        ref = next((r for r in rows if r["impl"] == "mfsim" and all(r[k] == row[k] for k in same) and "seconds" in r),
                   None)
        if ref and "seconds" in row:
            row["time_over_mfsim"] = row["seconds"] / ref["seconds"]
    relative = lambda path: str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)  # noqa: E731
    now = datetime.datetime.now(datetime.timezone.utc)
    report = {
        "date": now.isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "memory_cap_bytes": MEMORY_CAP,
                    "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()},
        "builds": {"mfsim_1": relative(args.build), "mfsim_2": "mpirun -n 2 " + relative(args.mpi_build)},
        "versions": versions(args),
        "model": args.model,
        "grid": ("points " + " ".join(args.points) if args.points else "quick" if args.quick
                 else "full" if args.full else "default"),
        "note": args.note,
        "rounds": reps,
        "tolerance": 1e-10,
        "rows": rows,
    }
    stem = f"{now.date().isoformat()}-peers-{args.model}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    if not args.quick:
        plot(rows, args.out / f"{stem}.png", args.model)
    print(f"wrote {args.out / (stem + '.json')}")
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

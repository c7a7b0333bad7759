#!/usr/bin/python3
"""Model A's Euler step with the activation cache on and off, against the numpy peer, in one run.

    /usr/bin/python3 benchmarks/activation_cache_peer.py [--n N] [--m M] [--d D] [--reps R]
                                                         [--build DIR] [--out FILE]

At n = 1000, m = 10⁴, d = 256 by default (the wide-input point of the peer grid), one thread: the
problem and the velocity check as benchmarks/run_peers.py makes them (the numpy peer's first
velocity must agree with mfsim's to 1e−10), then R rounds (default 8), each running mfsim with the
cache (its default budget), mfsim with flow.activation_cache_bytes = 0 and the numpy peer once, in
a random order, every run pinned to core 0. Seconds per step as run_peers.py measures them
(mfsim: its own --time-phases report of the steps; numpy: its fastest timed step); the minimum and
the median over the rounds, and each run's figures, go to FILE (JSON) and the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_peers  # noqa: E402  (the peer suite's problem, configs and capped runs)


def time_mfsim(args, work, size, cache_bytes):
    """Seconds per step of one mfsim run (its steps alone), with the given cache budget."""
    config = run_peers.write_config(work, f"mfsim_cache{cache_bytes}", size, 1e-3, run_peers.steps_for(size))
    text = config.read_text().replace("[flow]\n", f"[flow]\nactivation_cache_bytes = {cache_bytes}\n")
    config.write_text(text)
    rc, out, err, _, _, _ = run_peers.run_capped(run_peers.mfsim_command(args, 1, config), cores={0},
                                                 timeout=args.timeout * 4)
    match = re.search(r"\+ steps [0-9.eE+-]+ s \(([0-9.eE+-]+) s/step\)", out + err)
    if rc != 0 or not match:
        raise RuntimeError(f"mfsim failed: {(out + err).strip()[-400:]}")
    return float(match.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--m", type=int, default=10000)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--reps", type=int, default=8)
    p.add_argument("--build", type=Path, default=run_peers.ROOT / "build")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args()
    args.venv = run_peers.ROOT / ".venv-peers"  # unused: numpy is Debian's
    size = run_peers.Size("two_layer", args.n, args.d, args.m)
    default_budget = 256 << 20
    impls = {"mfsim (cache)": lambda work, problem: time_mfsim(args, work, size, default_budget),
             "mfsim (no cache)": lambda work, problem: time_mfsim(args, work, size, 0),
             "numpy": lambda work, problem: numpy_seconds(args, work, problem, size)}
    seconds = {name: [] for name in impls}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        problem = run_peers.make_problem(args, work, size)
        for _ in range(args.reps):
            order = list(impls)
            random.shuffle(order)
            for name in order:
                seconds[name].append(impls[name](work, problem))
    rows = {name: {"min_s": min(s), "median_s": statistics.median(s), "runs_s": s} for name, s in seconds.items()}
    numpy_min, numpy_median = rows["numpy"]["min_s"], rows["numpy"]["median_s"]
    print(f"n = {args.n}, m = {args.m}, d = {args.d}, 1 thread, {args.reps} interleaved rounds")
    print("| implementation | s/step (min) | s/step (median) | speed vs numpy (min) | (median) |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['min_s']:.4g} | {r['median_s']:.4g} | {numpy_min / r['min_s']:.2f}x "
              f"| {numpy_median / r['median_s']:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({"n": args.n, "m": args.m, "d": args.d, "threads": 1, "rows": rows},
                                       indent=1) + "\n")


def numpy_seconds(args, work, problem, size):
    result = run_peers.time_peer(args, work, "numpy", problem, size, 1)
    if result.get("status") != "ok":
        raise RuntimeError(f"numpy peer failed: {result}")
    return result["seconds"]


if __name__ == "__main__":
    main()

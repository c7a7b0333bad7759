"""The population flow's pairwise velocity (MATH.md §2.8, (P2)) for erf students and teacher,
written as a KeOps user would: LazyTensor reductions over the sources, nothing of size m × m formed.

For every particle θ_k = (a_k, w_k) and the sources (c_j, w_j) (the teacher's neurons with
c_j = β·scale·a*_j, then every particle with c_j = −β² a_j / m: mfsim's source list),

    q11 = w_k·Σw_k, q12 = w_k·Σw_j, q22 = w_j·Σw_j,  r = 1/√(1 + 2q)  (per particle, per source)
    t = r_k r_j,  s = 2 q12 t,  K = (2/π) asin s,  K_2 = (4/π) t / √(1 − s²),  K_1 = −q12 r_k² K_2
    v_a(k) = Σ_j c_j K,   v_w(k) = a_k [2 (Σ_j c_j K_1) Σw_k + Σ_j c_j K_2 Σw_j]

(the arcsine kernel and its derivatives in q11 and q12, the pair form of mfsim's
gaussian_kernels::Erf). One KeOps reduction over j gives the d + 2 sums Σ c K, Σ c q12 K_2 and
Σ c K_2 Σw_j; the per-particle and per-source factors r and Σw are numpy arrays (O(m·d)).

    python population.py PROBLEM.npz OUT.json [--reps R] [--build-folder DIR]

PROBLEM.npz (benchmarks/run_population_peer.py writes it) holds theta (m × (1 + d)), sources
(k + m rows (c_j, w_j)), variance (d) and optionally v_ref, mfsim's velocity: then the first
velocity is compared with it (largest |difference| over the largest |v_ref|, for a and for w;
relative_error in OUT.json). The first call is timed apart (first_s, first_cpu_s: with a fresh
--build-folder it includes KeOps compiling the reduction with the system compiler, with a warm
one loading the compiled module), then R calls (wall_s, cpu_s: the process's CPU time). Runs on
one thread when OMP_NUM_THREADS=1 (KeOps' CPU reductions use OpenMP).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def keops_velocity(theta, sources, variance):
    """The population velocity of the rows of theta against the sources (erf kernels)."""
    from pykeops.numpy import LazyTensor

    a, w = theta[:, :1], theta[:, 1:]
    c, ws = sources[:, :1], sources[:, 1:]
    sw_k, sw_j = w * variance, ws * variance                  # Σw
    r_k = 1 / np.sqrt(1 + 2 * np.sum(w * sw_k, axis=1, keepdims=True))
    r_j = 1 / np.sqrt(1 + 2 * np.sum(ws * sw_j, axis=1, keepdims=True))
    Wk, Rk = LazyTensor(np.ascontiguousarray(w)[:, None, :]), LazyTensor(r_k[:, None, :])
    SWj = LazyTensor(np.ascontiguousarray(sw_j)[None, :, :])
    Rj, Cj = LazyTensor(r_j[None, :, :]), LazyTensor(np.ascontiguousarray(c)[None, :, :])
    q12 = (Wk | SWj)
    t = Rk * Rj
    s = 2 * q12 * t
    k2 = (4 / np.pi) * t / (1 - s * s).sqrt()
    pair = ((2 / np.pi) * s.asin()).concat(q12 * k2).concat(k2 * SWj)
    sums = (Cj * pair).sum(axis=1)                            # m × (d + 2), over the sources
    v = np.empty_like(theta)
    v[:, 0] = sums[:, 0]
    d11 = -(r_k[:, 0] ** 2) * sums[:, 1]                      # Σ_j c_j K_1
    v[:, 1:] = a * (2 * d11[:, None] * sw_k + sums[:, 2:])
    return v


def relative_error(v, v_ref):
    """Largest |v − v_ref| over the largest |v_ref|, for the a and the w columns; the worse."""
    worst = 0.0
    for block in (slice(0, 1), slice(1, None)):
        scale = np.max(np.abs(v_ref[:, block]))
        worst = max(worst, float(np.max(np.abs(v[:, block] - v_ref[:, block])) / scale))
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--reps", type=int, default=0)
    p.add_argument("--build-folder", help="KeOps' build folder (a fresh one: the first call compiles)")
    args = p.parse_args()
    import pykeops

    if args.build_folder:
        pykeops.set_build_folder(args.build_folder)
    prob = np.load(args.problem)
    theta, sources, variance = prob["theta"], prob["sources"], prob["variance"]
    result = {"pykeops": pykeops.__version__, "m": theta.shape[0], "d": theta.shape[1] - 1}
    start, cpu = time.perf_counter(), time.process_time()
    v = keops_velocity(theta, sources, variance)
    result["first_s"], result["first_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    if "v_ref" in prob:
        result["relative_error"] = relative_error(v, prob["v_ref"])
    walls, cpus = [], []
    for _ in range(args.reps):
        start, cpu = time.perf_counter(), time.process_time()
        keops_velocity(theta, sources, variance)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    result["wall_s"], result["cpu_s"] = walls, cpus
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Runs mfsim's benchmark suite at its default sizes and reports it.

    /usr/bin/python3 benchmarks/run_suite.py [--build build-native] [--float-build build-float]
                                            [--repetitions 5] [--out benchmarks/results]

Writes <out>/<program>[_float].json (Google Benchmark's JSON, every repetition kept),
<out>/results.md (the tables quoted in benchmarks/README.md) and <out>/scaling_{m,n,d}.png.

Every figure is given as the minimum and the median over the repetitions, both for the fenced wall
time (Google Benchmark's manual time) and for the thread's CPU time: on a machine shared with
other jobs the wall time includes waits for a core, the CPU time of a one-thread host backend does
not. Ratios compare figures of the same run (same program invocation), on the same time basis.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

# Default sizes: everything registered except the memory-target size (run it by hand: benchmarks/README.md).
PROGRAMS = {
    "bench_two_layer_step":
        "^BM_(TwoLayerEulerStep|TwoLayerForward|TwoLayerUpdate|DenseStep|BlasGemm|BlasSyrk|RegisterBlock|Tanh)/",
    "bench_snapshot_io": "^BM_SnapshotWrite/",
    "bench_resnet_step": "^BM_(ResNetEulerStep|TwoLayerReference|RegisterBlock|Tanh)/",
    # Gram assembly at n = 1000, m = 10^4, d = 16 next to single-thread DSYRK on the formed Φ (1.4 GB).
    "bench_diagnostics": "^BM_Gram(Accumulate|AccumulateGeneric|SyrkPhi)/n:1000/",
}
FLOAT_PROGRAMS = {"bench_two_layer_step": "^BM_(TwoLayerEulerStep|TwoLayerForward|BlasGemm|RegisterBlock|Tanh)/"}


def run(build, program, bench_filter, repetitions, out_json):
    exe = Path(build) / "benchmarks" / program
    if not exe.exists():
        sys.exit(f"run_suite: {exe} not found (build it: cmake --build --preset native)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # Repetitions of all benchmarks interleaved at random: a change in the machine's load affects
    # the kernels and their baselines alike.
    cmd = [str(exe), f"--benchmark_filter={bench_filter}",
           f"--benchmark_repetitions={repetitions}", "--benchmark_min_time=0.2",
           "--benchmark_enable_random_interleaving=true",
           f"--benchmark_out={out_json}", "--benchmark_out_format=json"]
    print("run_suite:", " ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def load(path):
    """{run_name: {"wall": [s], "cpu": [s], "counters": {...}, "label": str}} + context."""
    data = json.loads(Path(path).read_text())
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"]
        r = runs.setdefault(name, {"wall": [], "cpu": [], "counters": {}, "label": b.get("label", "")})
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        r["wall"].append(b["real_time"] * scale)
        r["cpu"].append(b["cpu_time"] * scale)
        for key in ("n", "m", "d", "bytes", "log_density"):
            if key in b:
                r["counters"][key] = b[key]
        for key in ("GFLOP/s_cpu", "evaluations/s_cpu"):  # best repetition
            if key in b:
                scale_rate = 1e9 if key.startswith("GFLOP") else 1
                r["counters_rate"] = max(r.get("counters_rate", 0), b[key] * scale_rate)
    return runs, data["context"]


def stats(values):
    return min(values), statistics.median(values)


def size_key(name):
    fields = dict(re.findall(r"(\w+):(\d+)", name))
    return tuple(int(fields[k]) for k in ("n", "m", "d") if k in fields)


def fmt_rate(x):
    return f"{x:.3g}"


def machine_limits(runs):
    """Peak multiply-add rate of the register block [flop/s] and time of one vectorised tanh [s]."""
    block = runs["BM_RegisterBlock/manual_time"]
    tanh = runs["BM_Tanh/simd/manual_time"]
    peak = block["counters_rate"]
    return peak, 1 / tanh["counters_rate"]


def limit_rate(d, peak, t_tanh):
    """Pairs per second if the step ran at the ceilings: (6 dz + 7) flop at the register block's
    rate plus two tanh evaluations per pair (forward σ, velocity σ and σ')."""
    dz = d + 1
    return 1 / ((6 * dz + 7) / peak + 2 * t_tanh)


def step_tables(runs, float_runs, limits):
    steps = {size_key(k): v for k, v in runs.items() if k.startswith("BM_TwoLayerEulerStep/")}
    fwd = {size_key(k): v for k, v in runs.items() if k.startswith("BM_TwoLayerForward/")}
    upd = {size_key(k): v for k, v in runs.items() if k.startswith("BM_TwoLayerUpdate/")}
    dense = {size_key(k): v for k, v in runs.items() if k.startswith("BM_DenseStep/")}
    gemm = {size_key(k): v for k, v in runs.items() if k.startswith("BM_BlasGemm/")}
    fsteps = {size_key(k): v for k, v in float_runs.items() if k.startswith("BM_TwoLayerEulerStep/")}
    lines = [
        "| n | m | d | step ms (CPU min / med) | step ms (wall min / med) | pair-updates/s (CPU min) "
        "| of limit | forward share | update share | GEMM-equiv. GFLOP/s | 3 × GEMM time / step time "
        "| dense step / step | float speed-up |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(steps, key=lambda k: (k[2], k[1], k[0])):
        n, m, d = key
        s = steps[key]
        cmin, cmed = stats(s["cpu"])
        wmin, wmed = stats(s["wall"])
        row = [str(n), str(m), str(d), f"{1e3 * cmin:.3g} / {1e3 * cmed:.3g}",
               f"{1e3 * wmin:.3g} / {1e3 * wmed:.3g}", fmt_rate(n * m / cmin)]
        row.append(f"{n * m / cmin / limit_rate(d, *limits):.0%}" if limits else "")
        row.append(f"{min(fwd[key]['cpu']) / cmin:.0%}" if key in fwd else "")
        row.append(f"{min(upd[key]['cpu']) / cmin:.2%}" if key in upd else "")
        row.append(f"{6 * n * m * d / cmin * 1e-9:.1f}")
        row.append(f"{3 * min(gemm[key]['cpu']) / cmin:.2f}" if key in gemm else "")
        row.append(f"{min(dense[key]['cpu']) / cmin:.1f}" if key in dense else "")
        row.append(f"{cmin / min(fsteps[key]['cpu']):.2f}" if key in fsteps else "")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def baseline_table(runs):
    lines = ["| baseline | shape | ms (CPU min / med) | GFLOP/s (CPU min) |", "|---|---|---|---:|"]
    for name in sorted(k for k in runs if k.startswith(("BM_BlasGemm/", "BM_BlasSyrk/"))):
        r = runs[name]
        c = r["counters"]
        cmin, cmed = stats(r["cpu"])
        if name.startswith("BM_BlasGemm/"):
            flops, shape = 2 * c["n"] * c["m"] * c["d"], f"X Wᵀ: {c['n']:.0f} × {c['m']:.0f} × {c['d']:.0f}"
        else:
            flops, shape = c["n"] * (c["n"] + 1) * c["m"], f"Φ Φᵀ: {c['n']:.0f} × {c['n']:.0f} from {c['m']:.0f}"
        lines.append(f"| {r['label']} | {shape} | {1e3 * cmin:.3g} / {1e3 * cmed:.3g} | {flops / cmin * 1e-9:.1f} |")
    return lines


def io_table(runs):
    lines = ["| m | d | log-density | MB per frame | ms (wall min / med) | MB/s (wall min) |",
             "|---:|---:|---|---:|---|---:|"]
    for name in sorted((k for k in runs if k.startswith("BM_SnapshotWrite/")),
                       key=lambda k: dict(re.findall(r"(\w+):(\d+)", k)).get("m", "0").zfill(9)):
        r = runs[name]
        f = {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", name)}
        wmin, wmed = stats(r["wall"])
        mb = r["counters"]["bytes"] / 1e6
        lines.append(f"| {f['m']} | {f['d']} | {'yes' if f['log_density'] else 'no'} | {mb:.3g} | "
                     f"{1e3 * wmin:.3g} / {1e3 * wmed:.3g} | {mb / wmin:.0f} |")
    return lines


def gram_table(runs):
    """Gram assembly against DSYRK on the explicit Φ, same run; GFLOP/s counts n²·m·p for all."""
    names = {"BM_GramAccumulate/": "factored (model A)", "BM_GramAccumulateGeneric/": "generic kernel",
             "BM_GramSyrkPhi/": "dsyrk on formed Φ"}
    rows = {}
    for name, r in runs.items():
        for prefix, label in names.items():
            if name.startswith(prefix):
                rows[label] = (name, r)
    if "dsyrk on formed Φ" not in rows:
        return []
    syrk = min(rows["dsyrk on formed Φ"][1]["cpu"])
    lines = ["| kernel | n | m | d | ms (CPU min / med) | Φ Φᵀ-equivalent GFLOP/s (CPU min) | time / dsyrk time |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for label in names.values():
        if label not in rows:
            continue
        name, r = rows[label]
        f = {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", name)}
        cmin, cmed = stats(r["cpu"])
        lines.append(f"| {label} | {f['n']} | {f['m']} | {f['d']} | {1e3 * cmin:.4g} / {1e3 * cmed:.4g} | "
                     f"{r['counters_rate'] * 1e-9:.1f} | {cmin / syrk:.2f} |")
    return lines


def resnet_table(runs, limits):
    """ResNet steps; GFLOP/s as counted in bench_resnet_step, against the two-layer reference step
    of the same run, and against the ceilings: (18d + 9)/peak + 3 t_tanh per block pair,
    (10d + 10)/peak + 3 t_tanh per head pair."""
    ref = [r for k, r in runs.items() if k.startswith("BM_TwoLayerReference/")]
    ref_rate = ref[0]["counters_rate"] if ref else None
    lines = ["| n | L | M | K | d | step ms (CPU min / med) | step ms (wall min / med) | GFLOP/s (CPU min) "
             "| of two-layer GFLOP/s | of limit |", "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for name, r in sorted(runs.items()):
        if not name.startswith("BM_ResNetEulerStep/"):
            continue
        f = {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", name)}
        n, L, M, K, d = f["n"], f["L"], f["M"], f["K"], f["d"]
        cmin, cmed = stats(r["cpu"])
        wmin, wmed = stats(r["wall"])
        row = [str(n), str(L), str(M), str(K), str(d), f"{1e3 * cmin:.3g} / {1e3 * cmed:.3g}",
               f"{1e3 * wmin:.3g} / {1e3 * wmed:.3g}", f"{r['counters_rate'] * 1e-9:.1f}",
               f"{r['counters_rate'] / ref_rate:.0%}" if ref_rate else ""]
        if limits:
            peak, t = limits
            bound = n * L * M * ((18 * d + 9) / peak + 3 * t) + n * K * ((10 * d + 10) / peak + 3 * t)
            row.append(f"{bound / cmin:.0%}")
        else:
            row.append("")
        lines.append("| " + " | ".join(row) + " |")
    if ref:
        r = ref[0]
        lines += ["", f"Two-layer reference step (n = 1000, m = 10⁴, d = 16) in the same run: "
                      f"{1e3 * min(r['cpu']):.3g} ms CPU, {ref_rate * 1e-9:.1f} GFLOP/s ((6 dz + 7) per pair)."]
    return lines


def plots(runs, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {"mfsim step": "BM_TwoLayerEulerStep/", "dense Eigen step": "BM_DenseStep/",
              "3 × single-thread GEMM": "BM_BlasGemm/"}
    sweeps = {"m": (1, lambda k: k[0] == 1000 and k[2] == 16),
              "n": (0, lambda k: k[1] == 10000 and k[2] == 16),
              "d": (2, lambda k: k[0] == 1000 and k[1] == 10000)}
    for axis, (index, select) in sweeps.items():
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for label, prefix in series.items():
            points = sorted((size_key(k)[index], min(v["cpu"]) * (3 if "GEMM" in label else 1))
                            for k, v in runs.items() if k.startswith(prefix) and select(size_key(k)))
            if points:
                ax.loglog(*zip(*points), marker="o", label=label)
        ax.set_xlabel(axis)
        ax.set_ylabel("time per step [s] (thread CPU time, min)")
        fixed = {"m": "n = 1000, d = 16", "n": "m = 10⁴, d = 16", "d": "n = 1000, m = 10⁴"}[axis]
        ax.set_title(f"two-layer Euler step, tanh, {fixed}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"scaling_{axis}.png", dpi=120)
        plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build-native")
    parser.add_argument("--float-build", default=None, help="also run the float build's step benchmark")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--report-only", action="store_true", help="re-read the JSON, do not run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    jobs = [(args.build, p, f, out / f"{p}.json") for p, f in PROGRAMS.items()]
    if args.float_build:
        jobs += [(args.float_build, p, f, out / f"{p}_float.json") for p, f in FLOAT_PROGRAMS.items()]
    if not args.report_only:
        for build, program, bench_filter, path in jobs:
            run(build, program, bench_filter, args.repetitions, path)

    report = ["# mfsim benchmark results", ""]
    limits = None
    if (out / "bench_two_layer_step.json").exists():
        step_runs, context = load(out / "bench_two_layer_step.json")
        float_runs = {}
        if (out / "bench_two_layer_step_float.json").exists():
            float_runs, _ = load(out / "bench_two_layer_step_float.json")
        limits = machine_limits(step_runs)
        ctx = ", ".join(f"{k} {context.get(k)}" for k in
                        ("kokkos_backend", "precision", "simd_lanes", "build", "openblas_coretype", "host_name",
                         "num_cpus", "mhz_per_cpu", "date"))
        report += [f"Context: {ctx}.", "",
                   "Times are the minimum and the median over the repetitions; rates use the minimum CPU time.", "",
                   "## Two-layer flow step (tanh, bias, explicit Euler)", ""]
        peak, t_tanh = limits
        report += [f"Ceilings measured in the same run (ceilings.cpp): register block {peak * 1e-9:.1f} GFLOP/s, "
                   f"vectorised tanh {t_tanh * 1e9:.2f} ns; limit per pair = (6 dz + 7)/peak + 2 t_tanh "
                   f"({fmt_rate(limit_rate(16, peak, t_tanh))} pairs/s at d = 16).", ""]
        if float_runs:
            fpeak, ft = machine_limits(float_runs)
            report += [f"Float build: register block {fpeak * 1e-9:.1f} GFLOP/s, tanh {ft * 1e9:.2f} ns.", ""]
        report += step_tables(step_runs, float_runs, limits)
        report += ["", "## Single-thread BLAS baselines (same run)", ""] + baseline_table(step_runs)
        plots(step_runs, out)
    if (out / "bench_snapshot_io.json").exists():
        io_runs, _ = load(out / "bench_snapshot_io.json")
        report += ["", "## One H5MD snapshot", ""] + io_table(io_runs)
    if (out / "bench_resnet_step.json").exists():
        resnet_runs, _ = load(out / "bench_resnet_step.json")
        resnet_limits = machine_limits(resnet_runs) if "BM_RegisterBlock/manual_time" in resnet_runs else None
        report += ["", "## ResNet flow step (tanh, explicit Euler)", ""] + resnet_table(resnet_runs, resnet_limits)
    if (out / "bench_diagnostics.json").exists():
        gram_runs, _ = load(out / "bench_diagnostics.json")
        report += ["", "## Gram assembly (model A, tanh, bias) against DSYRK on Φ (same run)", ""]
        report += gram_table(gram_runs)
    (out / "results.md").write_text("\n".join(report) + "\n")
    print(f"run_suite: wrote {out / 'results.md'}")


if __name__ == "__main__":
    main()

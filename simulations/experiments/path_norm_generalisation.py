#!/usr/bin/python3
"""Experiment 5 — path norm and generalisation (MATH.md §2.7): the test error of the trained
two-layer ReLU network against its ℓ1 path norm P₁ = β·mean_k |a_k|‖(w_k, b_k)‖₁, across widths
and training-set sizes — the norm-based view of double descent (Liu–Dadi–Cevher: the complexity of
the path-norm ball is width-free, ≤ 2P₁ sqrt(2 log d'/n)).

Model A (ReLU, β = 1, bias, d = 5, inputs on the sphere), a single-ReLU teacher y = σ(w*·x) with
Gaussian label noise (std 0.3) on the training targets only, 500 clean test points; widths
m = 1 … 256 (the interpolation threshold m(d + 2) ≈ n falls inside), n ∈ {20, 40, 80}, five
initialisation seeds each; Heun with dt = 0.05 to t = 200 (not to interpolation: the flow is slow
near it). Per run it reads the final training and test losses and P₁ and the Rademacher bound from
the file (curves: medians over seeds), and reports the rank correlation (Spearman) of the test loss with P₁ and with m, per n.

    /usr/bin/python3 simulations/experiments/path_norm_generalisation.py --out runs/path_norm
    /usr/bin/python3 simulations/experiments/path_norm_generalisation.py --out /tmp/path_norm --quick

Writes DIR/runs/*.h5, DIR/path_norm_generalisation.png and DIR/path_norm_generalisation.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run

CONFIG = """\
# Experiment 5 (path norm and generalisation): width, n_train and the seed vary through --set.
[model]
kind = "two_layer"
activation = "relu"
width = 16
beta = 1.0
bias = true

[data]
kind = "teacher"
dim = 5
n_train = 40
n_test = 500
inputs = "sphere"
teacher_width = 1
teacher_activation = "relu"
noise = {noise}
seed = 1

[init]
kind = "gaussian"
seed = 1
antithetic = false

[flow]
integrator = "heun"
dt = {dt}
t_end = {t_end}

[output]
observe_every = {every}
snapshot_every = 1000000

[diagnostics]
gram = false
kl = []
path_norm = true
path_length = false
"""

SIZES = {
    "default": dict(log2_widths=range(0, 9), n_trains=(20, 40, 80), seeds=5, noise=0.3, dt=0.05, t_end=200.0),
    "quick": dict(log2_widths=range(0, 6), n_trains=(20, 40), seeds=2, noise=0.3, dt=0.05, t_end=20.0),
}


def spearman(x, y) -> float:
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def main(argv=None) -> int:
    args = common.parser(__doc__, seeds="default 5, quick 2").parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    widths = [2**k for k in size["log2_widths"]]
    ns = list(size["n_trains"])
    seeds = list(range(1, 1 + (args.seeds or size["seeds"])))
    binary = common.mfsim_binary(args.mfsim, "path_norm_generalisation")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "path_norm_generalisation.toml"
    steps = int(round(size["t_end"] / size["dt"]))
    config.write_text(CONFIG.format(noise=size["noise"], dt=size["dt"], t_end=size["t_end"], every=max(1, steps // 50)))
    plan = [(runs / f"n{n}_m{m}_s{s}.h5", {"model.width": m, "data.n_train": n, "init.seed": 100 * m + s})
            for n in ns for m in widths for s in seeds]
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse,
                             cost=lambda sets: sets["model.width"] * sets["data.n_train"])

    table = {}  # (n, m) -> arrays over seeds of train, test, P1, Rademacher bound
    for n in ns:
        for m in widths:
            rows = []
            for s in seeds:
                with open_run(runs / f"n{n}_m{m}_s{s}.h5") as run:
                    o = run.observables
                    rows.append([o["loss"].final, o["test_loss"].final, o["path_norm_l1"].final,
                                 o["rademacher_bound"].final])
            table[(n, m)] = np.array(rows, dtype=float)
    stats = {}
    for n in ns:
        test = np.concatenate([table[(n, m)][:, 1] for m in widths])
        norm = np.concatenate([table[(n, m)][:, 2] for m in widths])
        width = np.concatenate([[m] * len(seeds) for m in widths])
        # medians over seeds: a network of one or two neurons sometimes stalls (a dead or
        # wrongly signed unit) and one such seed would dominate a mean; the scatter shows every run
        median_test = [float(np.median(table[(n, m)][:, 1])) for m in widths]
        stats[n] = {"spearman_test_vs_path_norm": spearman(norm, test),
                    "spearman_test_vs_width": spearman(width, test),
                    "median_train": [float(np.median(table[(n, m)][:, 0])) for m in widths],
                    "median_test": median_test, "median_path_norm": [float(np.median(table[(n, m)][:, 2])) for m in widths],
                    "width_of_max_test": widths[int(np.argmax(median_test))],
                    "width_of_min_test": widths[int(np.argmin(median_test))],
                    "threshold_width": n / (5 + 2)}

    every = np.concatenate([table[key] for key in table])
    gap_vs_bound = spearman(every[:, 3], every[:, 1] - every[:, 0])
    test_vs_norm_all = spearman(every[:, 2], every[:, 1])

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for i, n in enumerate(ns):
        c = f"C{i}"
        st = stats[n]
        axes[0].plot(widths, st["median_test"], "o-", color=c, label=f"n = {n}: test")
        axes[0].plot(widths, st["median_train"], "s--", color=c, alpha=0.6, ms=4, label=f"n = {n}: train")
        axes[0].axvline(st["threshold_width"], color=c, ls=":", lw=1)
        for m in widths:
            r = table[(n, m)]
            axes[1].scatter(r[:, 2], r[:, 1], color=c, s=10 + 25 * np.log2(m), alpha=0.7,
                            label=f"n = {n} (ρ_s = {st['spearman_test_vs_path_norm']:+.2f})" if m == widths[0] else None)
            axes[2].scatter(r[:, 3], r[:, 1] - r[:, 0], color=c, s=10 + 25 * np.log2(m), alpha=0.7,
                            label=f"n = {n}" if m == widths[0] else None)
    axes[0].axhline(size["noise"] ** 2 / 2, color="k", ls=":", lw=1, label="noise level σ²/2 (train)")
    axes[0].set(xscale="log", yscale="log", xlabel="width m (dotted: m(d+2) = n)", ylabel="loss at the end",
                title="test and training loss (median over seeds)")
    axes[0].set_xticks(widths, [str(m) for m in widths])
    axes[0].minorticks_off()
    axes[1].set(xscale="log", yscale="log", xlabel="ℓ1 path norm P₁ at the end",
                ylabel="test loss", title="test loss against the path norm (size ∝ log m)")
    axes[2].set_title(f"gap against the norm-based bound: ρ_s = {gap_vs_bound:+.2f}")
    axes[2].set(xlabel="Rademacher bound 2P₁ sqrt(2 log d'/n)",
                ylabel="test − training loss")
    for ax in axes:
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Path norm and generalisation: two-layer ReLU, β = 1, d = 5, ReLU teacher, label noise "
                 f"{size['noise']:g}, t = {size['t_end']:g}, {len(seeds)} seeds", fontsize="medium")
    common.save_figure(fig, args.out / "path_norm_generalisation.png")

    common.write_report(args.out / "path_norm_generalisation.json", {
        "widths": widths, "n_trains": ns, "seeds": len(seeds), "noise": size["noise"], "t_end": size["t_end"],
        "dt": size["dt"], "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick,
        "spearman_gap_vs_rademacher_bound": gap_vs_bound, "spearman_test_vs_path_norm_all": test_vs_norm_all,
        "per_n": {str(n): stats[n] for n in ns}})

    print(f"{ran} runs in {timer.seconds:.0f} s ({len(plan)} runs, {args.jobs} at once)")
    print(f"{'n':>4} {'m':>5} {'train':>9} {'test':>9} {'P1':>8}")
    for n in ns:
        for j, m in enumerate(widths):
            st = stats[n]
            print(f"{n:4d} {m:5d} {st['median_train'][j]:9.4f} {st['median_test'][j]:9.4f} {st['median_path_norm'][j]:8.3f}")
        print(f"n = {n}: Spearman(test, P1) = {stats[n]['spearman_test_vs_path_norm']:+.2f}, "
              f"Spearman(test, m) = {stats[n]['spearman_test_vs_width']:+.2f}; test loss largest at m = "
              f"{stats[n]['width_of_max_test']} (threshold m(d+2) = n at m = {stats[n]['threshold_width']:.1f})")
    print(f"all runs: Spearman(test - train, Rademacher bound) = {gap_vs_bound:+.2f}, "
          f"Spearman(test, P1) = {test_vs_norm_all:+.2f}")
    print(f"figure: {args.out / 'path_norm_generalisation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Experiment 5 — path norm and generalisation (MATH.md §2.7): the test error of the trained
two-layer ReLU network against its ℓ1 path norm P₁ = β·mean_k |a_k|‖(w_k, b_k)‖₁, across widths
and training-set sizes — the norm-based view of double descent (Liu–Dadi–Cevher: the complexity of
the path-norm ball is width-free, ≤ 2P₁ sqrt(2 log(2d')/n), E–Ma–Wu; docs/corrections.md).

Model A (ReLU, β = 1, bias, d = 5, inputs on the sphere), a single-ReLU teacher y = σ(w*·x) with
Gaussian label noise (std 0.3) on the training targets only, 500 clean test points; widths
m = 1 … 256 (the interpolation threshold m(d + 2) ≈ n falls inside), n ∈ {20, 40, 80}, five
initialisation seeds each; Heun with dt = 0.05 to t = 200 (not to interpolation: the flow is slow
near it). Per run it reads the final training and test losses and P₁ and the Rademacher bound from
the file (curves: medians over seeds), and reports the rank correlation (Spearman) of the test loss with P₁ and with m, per n.

The mean-field sweep shows no double-descent peak, so a second sweep looks in the lazy regime:
β = 10, antithetic initialisation (f ≡ 0 at t = 0, so the random initial function is not part of
the test error), n = 40, label noise 0.5, widths m = 2 … 128 around the interpolation threshold
m(d + 2) ≈ n, four seeds (each its own data set and initialisation), Heun with dt = 5·10⁻⁴ (the
flow is β² faster) to t = 100 or training loss 10⁻⁵. Its runs are DIR/runs/lazy/*.h5.

    /usr/bin/python3 simulations/experiments/path_norm_generalisation.py --out runs/path_norm
    /usr/bin/python3 simulations/experiments/path_norm_generalisation.py --out /tmp/path_norm --quick

Writes DIR/runs/*.h5, DIR/path_norm_generalisation.png and DIR/path_norm_generalisation.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run

SIZES = {
    "default": dict(log2_widths=range(0, 9), n_trains=(20, 40, 80), seeds=5, noise=0.3, dt=0.05, t_end=200.0),
    "quick": dict(log2_widths=range(0, 6), n_trains=(20, 40), seeds=2, noise=0.3, dt=0.05, t_end=20.0),
}
# the lazy sweep (β = 10): the only one where a peak appeared in the settings tried
LAZY = {
    "default": dict(widths=(2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 64, 128), n_train=40, seeds=4, noise=0.5,
                    beta=10.0, dt=5e-4, t_end=100.0, loss_tol=1e-5),
    "quick": dict(widths=(2, 8, 32), n_train=40, seeds=2, noise=0.5, beta=10.0, dt=5e-4, t_end=2.0, loss_tol=1e-5),
}

TITLE = "Experiment 5 (path norm and generalisation): width, n_train and the seed vary through --set."


def path_norm_config(path, size, *, every, beta, antithetic, loss_tol):
    """The ReLU student of width 16 on n = 40 noisy teacher samples; the runs vary width, n_train, seed."""
    common.write_config(path, TITLE, {
        "model.activation": "relu", "model.width": 16, "model.beta": beta,
        "data.n_train": 40, "data.n_test": 500, "data.noise": size["noise"],
        "init.antithetic": antithetic,
        "flow.dt": size["dt"], "flow.t_end": size["t_end"], "flow.loss_tol": loss_tol,
        "output.observe_every": every,
        "diagnostics": {"gram": False, "kl": [], "path_norm": True, "path_length": False}})


def spearman(x, y) -> float:
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def main(argv=None) -> int:
    args = common.parser(__doc__, seeds="default 5 (the lazy sweep 4), quick 2; both sweeps").parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    widths = [2**k for k in size["log2_widths"]]
    ns = list(size["n_trains"])
    seeds = list(range(1, 1 + (args.seeds or size["seeds"])))
    binary = common.mfsim_binary(args.mfsim, "path_norm_generalisation")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "path_norm_generalisation.toml"
    steps = int(round(size["t_end"] / size["dt"]))
    path_norm_config(config, size, every=max(1, steps // 50), beta=1.0, antithetic=False, loss_tol=0.0)
    plan = [(runs / f"n{n}_m{m}_s{s}.h5", {"model.width": m, "data.n_train": n, "init.seed": 100 * m + s})
            for n in ns for m in widths for s in seeds]
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse,
                             cost=lambda sets: sets["model.width"] * sets["data.n_train"])
        lazy, lazy_table, lazy_ran = lazy_sweep(binary, args)
    ran += lazy_ran

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
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
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
    axes[2].set(xlabel="Rademacher bound 2P₁ sqrt(2 log(2d')/n)",
                ylabel="test − training loss")
    for ax in axes[:3]:
        ax.legend(fontsize="x-small")
    plot_lazy(axes[3], lazy, lazy_table)  # after: its legend gathers the twin axis's line too
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Path norm and generalisation: two-layer ReLU, d = 5, ReLU teacher. Panels 1–3: β = 1, label noise "
                 f"{size['noise']:g}, t = {size['t_end']:g}, {len(seeds)} seeds. Panel 4: lazy β = {lazy['beta']:g}, "
                 f"antithetic init, noise {lazy['noise']:g}, n = {lazy['n_train']}, {lazy['seeds']} seeds",
                 fontsize="medium")
    common.save_figure(fig, args.out / "path_norm_generalisation.png", dpi=72)  # four panels: < 150 kB

    common.write_report(args.out / "path_norm_generalisation.json", {
        "widths": widths, "n_trains": ns, "seeds": len(seeds), "noise": size["noise"], "t_end": size["t_end"],
        "dt": size["dt"], "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick,
        "spearman_gap_vs_rademacher_bound": gap_vs_bound, "spearman_test_vs_path_norm_all": test_vs_norm_all,
        "per_n": {str(n): stats[n] for n in ns}, "lazy": lazy})

    print(f"{ran} runs in {timer.seconds:.0f} s ({len(plan) + len(lazy_table) * lazy['seeds']} runs, {args.jobs} at once)")
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
    print(f"lazy sweep (β = {lazy['beta']:g}, n = {lazy['n_train']}, noise {lazy['noise']:g}):")
    print(f"{'m':>5} {'m(d+2)':>7} {'train':>9} {'test':>9} {'P1':>8}")
    for j, m in enumerate(lazy["widths"]):
        print(f"{m:5d} {m * 7:7d} {lazy['median_train'][j]:9.2e} {lazy['median_test'][j]:9.4f} {lazy['median_path_norm'][j]:8.2f}")
    print(f"lazy: test loss largest at m = {lazy['width_of_max_test']}, P1 largest at m = {lazy['width_of_max_path_norm']}; "
          f"Spearman(test, P1) = {lazy['spearman_test_vs_path_norm']:+.2f}, Spearman(test, m) = "
          f"{lazy['spearman_test_vs_width']:+.2f}; of the medians: {lazy['spearman_median_test_vs_median_path_norm']:+.2f}")
    print(f"figure: {args.out / 'path_norm_generalisation.png'}")
    return 0


def lazy_sweep(binary, args):
    """The β = 10 sweep at n = 40: runs it, returns (summary, {m: rows over seeds}, runs made)."""
    size = LAZY["quick" if args.quick else "default"]
    seeds = list(range(1, 1 + (args.seeds or size["seeds"])))
    runs = args.out / "runs" / "lazy"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "path_norm_generalisation_lazy.toml"
    steps = int(round(size["t_end"] / size["dt"]))
    path_norm_config(config, size, every=max(1, steps // 50), beta=size["beta"], antithetic=True,
                     loss_tol=size["loss_tol"])
    # each seed its own data set as well: the peak is a property of the width, not of one draw of the noise
    plan = [(runs / f"m{m}_s{s}.h5", {"model.width": m, "data.n_train": size["n_train"], "data.seed": s,
                                      "init.seed": 100 * m + s}) for m in size["widths"] for s in seeds]
    ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse,
                         cost=lambda sets: sets["model.width"])
    widths = list(size["widths"])
    table = {}
    for m in widths:
        rows = []
        for s in seeds:
            with open_run(runs / f"m{m}_s{s}.h5") as run:
                o = run.observables
                rows.append([o["loss"].final, o["test_loss"].final, o["path_norm_l1"].final, o["loss"].time[-1]])
        table[m] = np.array(rows, dtype=float)
    test = np.concatenate([table[m][:, 1] for m in widths])
    norm = np.concatenate([table[m][:, 2] for m in widths])
    width = np.concatenate([[m] * len(seeds) for m in widths])
    median = {k: [float(np.median(table[m][:, j])) for m in widths]
              for j, k in enumerate(("median_train", "median_test", "median_path_norm", "median_t_stop"))}
    summary = dict(size, widths=widths, seeds=len(seeds), **median,
                   width_of_max_test=widths[int(np.argmax(median["median_test"]))],
                   width_of_max_path_norm=widths[int(np.argmax(median["median_path_norm"]))],
                   threshold_width=size["n_train"] / (5 + 2),
                   spearman_test_vs_path_norm=spearman(norm, test), spearman_test_vs_width=spearman(width, test),
                   spearman_median_test_vs_median_path_norm=spearman(median["median_path_norm"], median["median_test"]))
    return summary, table, ran


def plot_lazy(ax, lazy, table):
    widths = lazy["widths"]
    for m in widths:
        ax.scatter([m] * len(table[m]), table[m][:, 1], color="C3", s=8, alpha=0.35)
    ax.plot(widths, lazy["median_test"], "o-", color="C3", label="test (median; dots: every run)")
    # the test loss on a linear axis (the peak is a factor ~3); the training loss, which falls over
    # five decades, only as the width from which its median is below 10⁻³ (nearly interpolating)
    fitted = [m for m, train in zip(widths, lazy["median_train"]) if train <= 1e-3]
    if fitted:
        ax.axvline(fitted[0], color="C3", ls="--", lw=1, label=f"median train loss ≤ 10⁻³ from m = {fitted[0]}")
    ax.axvline(lazy["threshold_width"], color="k", ls=":", lw=1, label="m(d+2) = n")
    ax.set_ylim(0, 1.1 * max(float(table[m][:, 1].max()) for m in widths))
    ax.set(xscale="log", xlabel="width m", ylabel="test loss at the end",
           title=f"lazy β = {lazy['beta']:g}, n = {lazy['n_train']}: test loss and P₁ against m\nρ_s(test, P₁) = {lazy['spearman_test_vs_path_norm']:+.2f}, "
                 f"ρ_s(test, m) = {lazy['spearman_test_vs_width']:+.2f}")
    ticks = [m for m in widths if m not in (10, 14, 20)]  # the rest would overlap
    ax.set_xticks(ticks, [str(m) for m in ticks], fontsize="x-small")
    ax.minorticks_off()
    twin = ax.twinx()
    twin.plot(widths, lazy["median_path_norm"], "^-", color="C4", label="P₁ (median, right axis)")
    twin.set_ylabel("ℓ1 path norm P₁", color="C4")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize="x-small", loc="upper left")


if __name__ == "__main__":
    sys.exit(main())

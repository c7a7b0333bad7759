#!/usr/bin/python3
"""Experiment 1 — propagation of chaos (MATH.md §6, V1): the width-m particle system approaches
the mean-field PDE, with fluctuations over initialisations of size m^{-1/2}.

Runs the two-layer model (tanh, β = 1, d = 5, n = 20 points on the sphere, one data seed) for
widths m = 2^6 … 2^12 and several initialisation seeds, then measures at flow times t:

  spread of f:    sqrt( mean over test points x of Var_seeds f_m(x, t) )   (f from the particles)
  spread of L:    std over seeds of the training loss L_m(t)

and fits both against m on log–log axes (theory: slope −1/2), with 95% confidence intervals.

    /usr/bin/python3 simulations/experiments/propagation_of_chaos.py --out runs/chaos
    /usr/bin/python3 simulations/experiments/propagation_of_chaos.py --out /tmp/chaos --quick

Writes DIR/runs/*.h5, DIR/propagation_of_chaos.png, DIR/propagation_of_chaos.json and
DIR/propagation_of_chaos_curves.png: the training and test loss against time, one curve per width,
the mean over the seeds with its 95% interval (mfsim_analysis.curves).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import common
import mfsim_analysis
from mfsim_analysis import fit_power_law, open_run, predict

SIZES = {
    # widths as powers of two, seeds, times where the spread is measured, flow step
    "default": dict(log2_widths=range(6, 13), seeds=20, times=(0.0, 0.5, 2.0, 8.0), dt=0.1, n_test=100),
    "quick": dict(log2_widths=range(5, 10), seeds=12, times=(0.0, 0.5, 2.0), dt=0.1, n_test=50),
}

TITLE = "Experiment 1 (propagation of chaos): the widths and seeds vary through --set."


def init_seed(m: int, s: int) -> int:
    """Seed s of width m. mfsim draws particle k from (seed, k) alone, so one seed at two widths
    gives nested particle sets; distinct seeds per width keep the widths' estimates independent,
    as the least-squares interval of the slope assumes."""
    return 1000 * int(np.log2(m)) + s


def run_all(binary: Path, config: Path, out: Path, widths, seeds, jobs: int, reuse: bool):
    """Runs every (width, seed), the widest first so that the pool ends with short runs."""
    plan = [(out / f"m{m}_s{s}.h5", {"model.width": m, "init.seed": init_seed(m, s)})
            for m in widths for s in seeds]
    return common.run_all(binary, config, plan, jobs=jobs, reuse=reuse, cost=lambda sets: sets["model.width"])


def measure(out: Path, widths, seeds, times):
    """f at the test points and the training loss, per width, seed and time."""
    f_values = {}  # (m, t) -> [seeds][n_test]
    losses = {}  # (m, t) -> [seeds]
    curves = {}  # m -> (time, [seeds][T] loss)
    for m in widths:
        per_seed_curves = []
        for s in seeds:
            with open_run(out / f"m{m}_s{s}.h5") as run:
                g = run.particles["two_layer"]
                loss = run.observables["loss"]
                per_seed_curves.append(loss.value)
                for t in times:
                    frame = g.frame_at_time(t)
                    row = int(np.argmin(np.abs(loss.time - t)))
                    if abs(frame.time - t) > 1e-9 or abs(loss.time[row] - t) > 1e-9:
                        raise RuntimeError(f"m={m} seed={s}: no snapshot at t = {t}")
                    f_values.setdefault((m, t), []).append(predict(run, run.data.x_test, frame))
                    losses.setdefault((m, t), []).append(loss.value[row])
        curves[m] = (loss.time, np.array(per_seed_curves))
    return {k: np.array(v) for k, v in f_values.items()}, {k: np.array(v) for k, v in losses.items()}, curves


def clt_reference(run, samples: int = 100_000) -> tuple[float, float]:
    """The t = 0 spreads times √m, from the central limit theorem (i.i.d. particles, E a = 0):
    Var f_m(x) = β² E[a²σ(w·x + b)²]/m exactly, and to first order in m^{-1/2}
    Var L_m(0) = β² Var[(1/n) Σ_i y_i a σ(w·x_i + b)]/m; expectations by Monte Carlo."""
    from mfsim_analysis.network import activation

    rng = np.random.default_rng(0)
    d = run.data
    std = {k: float(run.get(f"init.std_{k}")) for k in "awb"}
    w = std["w"] * rng.normal(size=(samples, d.x_train.shape[1]))
    b = std["b"] * rng.normal(size=samples)
    a = std["a"] * rng.normal(size=samples)
    beta, sigma = float(run.get("model.beta")), activation(run.get("model.activation"))
    f_var = np.mean([np.mean(sigma(w @ x + b) ** 2) for x in d.x_test]) * std["a"] ** 2
    g = a * (sigma(w @ d.x_train.T + b[:, None]) @ d.y_train) / d.y_train.size
    return beta * float(np.sqrt(f_var)), beta * float(np.std(g))


def analyse(widths, times, f_values, losses, level=0.95):
    results = {}
    for t in times:
        spread_f = [float(np.sqrt(np.mean(np.var(f_values[(m, t)], axis=0, ddof=1)))) for m in widths]
        spread_l = [float(np.std(losses[(m, t)], ddof=1)) for m in widths]
        results[t] = {
            "std_f": spread_f,
            "std_loss": spread_l,
            "mean_loss": [float(np.mean(losses[(m, t)])) for m in widths],
            "fit_f": fit_power_law(widths, spread_f, level),
            "fit_loss": fit_power_law(widths, spread_l, level),
        }
    return results


def figure(path: Path, widths, times, results, curves, seeds: int, clt: tuple[float, float]):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.1))
    grid = np.geomspace(min(widths), max(widths), 50)
    for ax, key, fit_key, title, c in ((axes[0], "std_f", "fit_f", "spread of f over seeds", clt[0]),
                                       (axes[1], "std_loss", "fit_loss", "spread of the loss over seeds", clt[1])):
        for i, t in enumerate(times):
            r, fit = results[t], results[t][fit_key]
            ax.plot(widths, r[key], "o", color=f"C{i}")
            ax.plot(grid, fit(grid), "-", color=f"C{i}", alpha=0.8,
                    label=f"t = {t:g}: slope {fit.slope:+.2f} [{fit.ci[0]:+.2f}, {fit.ci[1]:+.2f}]")
        ax.plot(grid, c / np.sqrt(grid), "k:", lw=1.2, label="t = 0, central limit: c·m^(−1/2)")
        ax.set(xscale="log", yscale="log", xlabel="width m", title=title)
        ax.set_xticks(widths, [f"$2^{{{int(np.log2(m))}}}$" for m in widths])
        ax.minorticks_off()
        ax.legend(fontsize="x-small", title="fit, 95% CI", title_fontsize="x-small")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("sqrt(mean_x Var_seeds f_m(x, t))")
    axes[1].set_ylabel("std_seeds L_m(t)")

    ax = axes[2]
    cmap = plt.get_cmap("viridis")
    for i, m in enumerate(widths):
        t, v = curves[m]
        color = cmap(i / max(1, len(widths) - 1))
        ax.plot(t, v.mean(axis=0), color=color, label=f"m = {m}")
        ax.fill_between(t, v.min(axis=0), v.max(axis=0), color=color, alpha=0.15, lw=0)
    ax.set(yscale="log", xlabel="flow time t", ylabel="training loss",
           title=f"L_m(t): mean and range over {seeds} seeds")
    ax.legend(fontsize="x-small", ncol=2)
    ax.grid(True, alpha=0.3)
    fig.suptitle("Propagation of chaos (V1): two-layer tanh, β = 1, d = 5, n = 20; fluctuations ∝ m^(−1/2)",
                 fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__, seeds="default 20; quick 12").parse_args(argv)

    size = SIZES["quick" if args.quick else "default"]
    widths = [2**k for k in size["log2_widths"]]
    seeds = list(range(1, 1 + (args.seeds or size["seeds"])))
    times, dt = size["times"], size["dt"]
    t_end = max(times)
    every = int(round(0.5 / dt))

    binary = common.mfsim_binary(args.mfsim, "propagation_of_chaos")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "propagation_of_chaos.toml"
    common.write_config(config, TITLE, {
        "data.n_test": size["n_test"], "flow.dt": dt, "flow.t_end": t_end, "output.observe_every": every,
        "output.snapshot_every": every})

    start = time.monotonic()
    ran = run_all(binary, config, runs, widths, seeds, args.jobs, args.reuse)
    run_seconds = time.monotonic() - start
    f_values, losses, curves = measure(runs, widths, seeds, times)
    results = analyse(widths, times, f_values, losses)
    with open_run(runs / f"m{widths[0]}_s1.h5") as run:
        clt = clt_reference(run)
    figure(args.out / "propagation_of_chaos.png", widths, times, results, curves, len(seeds), clt)
    common.pyplot()  # the Agg backend
    courses = mfsim_analysis.curves([runs / f"m{m}_s{s}.h5" for m in widths for s in seeds], ["loss", "test_loss"],
                                    "model.width", band="ci95")
    fig = courses.plot()
    fig.suptitle(f"The loss against time per width m, mean over {len(seeds)} seeds with its 95% interval:\n"
                 "the curves and their bands close in on the mean-field limit as m grows", fontsize="small")
    common.save_figure(fig, args.out / "propagation_of_chaos_curves.png")

    report = {
        "widths": widths, "seeds": len(seeds), "times": list(times), "dt": dt, "runs_made": ran,
        "run_seconds": round(run_seconds, 1), "quick": args.quick, "integrator": "heun",
        "clt_sqrt_m_std_f": clt[0], "clt_sqrt_m_std_loss": clt[1],
        "results": {str(t): {k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in r.items()}
                    for t, r in results.items()},
    }
    (args.out / "propagation_of_chaos.json").write_text(json.dumps(report, indent=2))

    print(f"{ran} runs in {run_seconds:.0f} s ({len(widths)} widths x {len(seeds)} seeds, {args.jobs} at once)")
    print(f"{'t':>5}  {'slope of std f (95% CI)':<30}  {'slope of std L (95% CI)':<30}")
    for t in times:
        ff, fl = results[t]["fit_f"], results[t]["fit_loss"]
        print(f"{t:5g}  {ff.slope:+.3f} [{ff.ci[0]:+.3f}, {ff.ci[1]:+.3f}]{'':8}"
              f"{fl.slope:+.3f} [{fl.ci[0]:+.3f}, {fl.ci[1]:+.3f}]")
    print(f"figure: {args.out / 'propagation_of_chaos.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

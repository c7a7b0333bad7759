#!/usr/bin/python3
"""Experiment 3 — linear convergence (MATH.md §3.7 (T3), §2.5 (A12)): the training loss decays
exponentially at a rate set by the smallest eigenvalue of the Gram matrix G.

Runs the two-layer model (tanh, d = 5, n = 20 points on the sphere, antithetic initialisation)
for β ∈ {1, √n, n} (MATH.md §7) in the rescaled time t' = β² t / n, and compares log L(t) with

  (A12)  L(0) exp(−(2/n) ∫₀ᵗ λ_min(G(u)) du)   the a-posteriori bound, from the run's own λ_min(G(t))
                                               (the observable loss_bound): must lie above L(t);
  (T3)   L(0) exp(−β² λ₀ t / n)                the a-priori rate from the infinite-width λ₀, valid
                                               while λ_min(G) ≥ β²λ₀/2;
  rate   2 λ_min(G(t)) / n                     the asymptotic decay rate of L (the residual aligns
                                               with the bottom eigenvector of G),

and measures the decay rate of log L over the last third of each run against 2λ_min(G(t_end))/n.

    /usr/bin/python3 simulations/experiments/linear_convergence.py --out runs/linear
    /usr/bin/python3 simulations/experiments/linear_convergence.py --out /tmp/linear --quick

Writes DIR/runs/*.h5, DIR/linear_convergence.png and DIR/linear_convergence.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run

SIZES = {
    "default": dict(width=1024, n=20, t_rescaled=150.0, steps=6000, every=20),
    "quick": dict(width=128, n=20, t_rescaled=40.0, steps=1600, every=40),
}

TITLE = "Experiment 3 (linear convergence): beta, dt and t_end vary through --set."


FLOOR = 1e-14  # relative loss below which rates are not measured


def late_rate(time, loss, fraction=1 / 3):
    """−d log L / dt by least squares over the last `fraction` of the run."""
    keep = time >= time[-1] - fraction * (time[-1] - time[0])
    slope, _ = np.polyfit(time[keep], np.log(loss[keep]), 1)
    return float(-slope)


def measure(run):
    n = int(run.get("data.n_train"))
    beta = float(run.get("model.beta"))
    loss, bound, lam = (run.observables[k] for k in ("loss", "loss_bound", "gram_lambda_min"))
    if not (np.array_equal(loss.step, bound.step) and np.array_equal(loss.step, lam.step)):
        raise RuntimeError(f"{run.path}: loss, loss_bound and gram_lambda_min are observed at different steps")
    lambda0 = float(run.lambda0)
    # Rates only where L is far above the rounding level of the residual (L ~ 1e−30 relative is
    # reached at β = 1, where the last decades are noise).
    valid = loss.value > FLOOR * loss.value[0]
    t = loss.time
    measured = late_rate(t[valid], loss.value[valid])
    predicted = 2 * float(lam.value[valid][-1]) / n
    # −d log L/dt between observations over 2λ_min(G)/n at the midpoint: by (A11) the rate is the
    # Rayleigh quotient 2rᵀGr/(n|r|²) ≥ 2λ_min/n, tending to it as r aligns with the bottom eigenvector.
    rate = -np.diff(np.log(loss.value)) / np.diff(t)
    rate_ratio_t = rate / (2 * 0.5 * (lam.value[1:] + lam.value[:-1]) / n)
    rate_ratio_t[~(valid[1:] & valid[:-1])] = np.nan
    return dict(beta=beta, n=n, time=t, loss=loss.value, rate_ratio_t=rate_ratio_t, bound=bound.value, lam=lam.value, lambda0=lambda0,
                t3=loss.value[0] * np.exp(-beta**2 * lambda0 * t / n),
                measured_rate=measured, predicted_rate=predicted, rate_ratio=measured / predicted,
                t3_rate=beta**2 * lambda0 / n,
                # log(L / bound) ≤ 0 everywhere: the bound holds (to the Gram cadence's O(Δ²) error)
                max_log_loss_over_bound=float(np.max(np.log(loss.value / bound.value))),
                min_lambda_over_beta2=float(np.min(lam.value)) / beta**2,
                # (A11): the instantaneous rate never falls below 2λ_min/n (up to the O(Δ²) of the difference)
                min_rate_ratio=float(np.nanmin(rate_ratio_t)),
                loss_drop=float(loss.value[-1] / loss.value[0]))


def figure(path, results, width):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(results) + 2, figsize=(3.9 * (len(results) + 2), 4.1))
    for ax, r in zip(axes, results):
        tp = r["time"] * r["beta"] ** 2 / r["n"]
        ax.plot(tp, r["loss"], "k-", lw=2, label="training loss L(t)")
        ax.plot(tp, r["bound"], "C3--", label="bound (A12) from λ_min(G(t))")
        ax.plot(tp, r["t3"], "C0:", label="(T3): L(0)·exp(−β²λ₀t/n)")
        t_fit = tp[tp >= tp[-1] * 2 / 3]
        anchor = r["loss"][-1] * np.exp(r["predicted_rate"] * (r["time"][-1] - t_fit * r["n"] / r["beta"] ** 2))
        ax.plot(t_fit, anchor, "C2-", lw=4, alpha=0.4, label="slope 2λ_min(G(t_end))/n")
        ax.set(yscale="log", xlabel="rescaled time t' = β² t / n", ylabel="loss",
               title=f"β = {r['beta']:.3g}: measured/predicted rate {r['rate_ratio']:.3f}")
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
    ax = axes[-2]
    for i, r in enumerate(results):
        tp = r["time"] * r["beta"] ** 2 / r["n"]
        ax.plot(0.5 * (tp[1:] + tp[:-1]), r["rate_ratio_t"], color=f"C{i}", label=f"β = {r['beta']:.3g}")
    ax.axhline(1, color="k", ls=":", lw=1)
    ax.set(yscale="log", xlabel="rescaled time t'", ylabel="(−d log L/dt) / (2λ_min(G(t))/n)",
           title="decay rate over the Gram rate (≥ 1, → 1)")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3)
    ax = axes[-1]
    for i, r in enumerate(results):
        ax.plot(r["time"] * r["beta"] ** 2 / r["n"], r["lam"] / r["beta"] ** 2, color=f"C{i}", label=f"β = {r['beta']:.3g}")
    lambda0 = results[0]["lambda0"]
    ax.axhline(lambda0, color="k", ls=":", label="λ₀ (infinite width, t = 0)")
    ax.axhline(lambda0 / 2, color="k", ls="--", lw=0.8, label="λ₀/2: (T3) holds above")
    ax.set(yscale="log", xlabel="rescaled time t'", ylabel="λ_min(G(t)) / β²", title="smallest Gram eigenvalue")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"Linear convergence (T3, A12): two-layer tanh, antithetic init, m = {width}, n = {results[0]['n']}, d = 5",
                 fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    n, steps = size["n"], size["steps"]
    betas = [1.0, float(np.sqrt(n)), float(n)]
    binary = common.mfsim_binary(args.mfsim, "linear_convergence")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "linear_convergence.toml"
    common.write_config(config, TITLE, {
        "model.width": size["width"], "data.n_train": n, "init.seed": 5, "init.antithetic": True,
        "flow.integrator": "rk4", "output.observe_every": size["every"], "output.snapshot_every": 100000,
        "diagnostics": {"gram": True}})
    plan = []
    for beta in betas:
        t_end = size["t_rescaled"] * n / beta**2
        plan.append((runs / f"beta{beta:.4g}.h5", {"model.beta": beta, "flow.dt": t_end / steps, "flow.t_end": t_end}))
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse)

    results = []
    for path, _ in plan:
        with open_run(path) as run:
            results.append(measure(run))
    figure(args.out / "linear_convergence.png", results, size["width"])
    scalars = [{k: v for k, v in r.items() if np.ndim(v) == 0} for r in results]
    common.write_report(args.out / "linear_convergence.json", {
        "width": size["width"], "n_train": n, "t_rescaled": size["t_rescaled"], "steps": steps,
        "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick, "runs": scalars})

    print(f"{ran} runs in {timer.seconds:.0f} s (β = 1, √n, n; {args.jobs} at once)")
    print(f"{'beta':>6} {'L_end/L_0':>10} {'rate':>10} {'2lmin/n':>10} {'ratio':>7} {'T3 rate':>9} "
          f"{'max log(L/bound)':>17} {'min lmin/b^2':>12} {'min inst. ratio':>15}")
    for r in scalars:
        print(f"{r['beta']:6.3g} {r['loss_drop']:10.3g} {r['measured_rate']:10.4g} {r['predicted_rate']:10.4g} "
              f"{r['rate_ratio']:7.3f} {r['t3_rate']:9.4g} {r['max_log_loss_over_bound']:17.3g} "
              f"{r['min_lambda_over_beta2']:12.4g} {r['min_rate_ratio']:15.4f}")
    print(f"lambda0 = {results[0]['lambda0']:.4g}")
    print(f"figure: {args.out / 'linear_convergence.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Experiment 6 — mean-field Langevin dynamics (MATH.md §2.4, V6b): the free energy
F_λ(ρ_t) = L + (λ'/2) E|θ|² − λ H(ρ_t) of the noisy, weight-decayed flow falls to its stationary
value exponentially fast, and the particle law approaches its proximal Gibbs measure.

Runs the two-layer model (tanh, d = 1 with a bias: particles in D = 3, where the kNN entropy is
reliable) on a ReLU teacher with weight decay λ' and several temperatures λ, and reports for each:

  - F_λ(ρ_t) (the observable free_energy) and the gap F_λ(ρ_t) − F_∞, with F_∞ the mean of the
    last quarter of the run (the stationary value, up to the entropy estimator's noise);
  - the exponential rate of that gap, fitted by least squares on log(F − F_∞) over the times where
    the gap stands above five times the stationary noise, with a 95% Student-t CI (the theory:
    F − F* ≤ e^{−2λ C_LSI t}(F_0 − F*) under a uniform log-Sobolev inequality, Nitanda–Wu–Suzuki
    2022, Chizat 2022; for proximal Gibbs measures dominated by the weight decay's Gaussian
    N(0, λ/λ' I), C_LSI ≈ λ'/λ, so a rate of at least about 2λ');
  - gibbs_gap = KL(ρ_t ‖ ρ̂_t), the particle law against its proximal Gibbs measure, which bounds
    (F − F*)/λ and falls to the estimators' floor;
  - the test loss and the path norm at the end, against λ (more noise: a smoother, smaller-norm
    network).

    /usr/bin/python3 simulations/experiments/langevin_free_energy.py --out runs/langevin
    /usr/bin/python3 simulations/experiments/langevin_free_energy.py --out /tmp/langevin --quick

Writes DIR/runs/*.h5, DIR/langevin_free_energy.png and DIR/langevin_free_energy.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run

SIZES = {
    "default": dict(width=2000, temperatures=[0.005, 0.01, 0.02, 0.05], t_end=20.0, every=25),
    "quick": dict(width=400, temperatures=[0.01, 0.05], t_end=6.0, every=25),
}
WEIGHT_DECAY = 0.5
DT = 0.02

TITLE = "Experiment 6 (mean-field Langevin dynamics): flow.temperature varies through --set."


def exponential_rate(time, gap, floor, level=0.95):
    """Rate r of gap ≈ C e^{−r t} by least squares on log(gap) where gap > floor, with its CI."""
    from scipy import stats

    keep = gap > floor
    # The decay is what the fit is about: stop at the first time the gap reaches the floor.
    if not keep.all():
        keep[np.argmin(keep):] = False
    t, y = time[keep], np.log(gap[keep])
    if len(t) < 3:
        return dict(rate=float("nan"), ci=[float("nan")] * 2, points=int(len(t)))
    slope, intercept = np.polyfit(t, y, 1)
    residual = y - (slope * t + intercept)
    stderr = np.sqrt(np.sum(residual**2) / (len(t) - 2) / np.sum((t - t.mean()) ** 2))
    half = stats.t.ppf(0.5 + level / 2, len(t) - 2) * stderr
    return dict(rate=float(-slope), ci=[float(-slope - half), float(-slope + half)], points=int(len(t)),
                intercept=float(intercept), t_fit=[float(t[0]), float(t[-1])])


def measure(run):
    f = run.observables["free_energy"]
    tail = f.time >= 0.75 * f.time[-1]
    stationary = float(np.mean(f.value[tail]))
    noise = float(np.std(f.value[tail]))
    gap = f.value - stationary
    fit = exponential_rate(f.time, gap, 5 * max(noise, 1e-12))
    test, norm = run.observables["test_loss"], run.observables["path_norm_l2"]
    return dict(temperature=float(run.get("flow.temperature")), time=f.time, free_energy=f.value,
                gap=gap, stationary=stationary, stationary_noise=noise, fit=fit,
                gibbs_time=run.observables["gibbs_gap"].time, gibbs=run.observables["gibbs_gap"].value,
                gibbs_end=float(np.mean(run.observables["gibbs_gap"].value[-3:])),
                gibbs_start=float(run.observables["gibbs_gap"].value[0]),
                test_loss=float(np.mean(test.value[test.time >= 0.75 * test.time[-1]])),
                path_norm=float(np.mean(norm.value[norm.time >= 0.75 * norm.time[-1]])),
                max_increase=float(np.max(np.diff(f.value))))


def figure(path, results, width):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.1))
    for i, r in enumerate(results):
        c, label = f"C{i}", f"λ = {r['temperature']:g}"
        axes[0].plot(r["time"], r["free_energy"], color=c, label=label)
        axes[0].axhline(r["stationary"], color=c, ls=":", lw=0.8)
        positive = r["gap"] > 0
        axes[1].plot(r["time"][positive], r["gap"][positive], "o", ms=3, color=c, label=label)
        fit = r["fit"]
        if np.isfinite(fit["rate"]):
            t = np.linspace(*fit["t_fit"], 20)
            axes[1].plot(t, np.exp(fit["intercept"] - fit["rate"] * t), "-", color=c, lw=2, alpha=0.5,
                         label=f"rate {fit['rate']:.2f} [{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]")
        axes[2].plot(r["gibbs_time"], r["gibbs"], color=c, label=label)
    axes[0].set(xlabel="flow time t", ylabel="free energy F_λ(ρ_t)", yscale="log",
                title="F_λ = L + (λ'/2)E|θ|² − λH (dotted: F_∞)")
    axes[1].set(xlabel="flow time t", ylabel="F_λ(ρ_t) − F_∞", yscale="log",
                title="exponential decay of the gap (fit, 95% CI)")
    axes[2].set(xlabel="flow time t", ylabel="KL(ρ_t ‖ ρ̂_t) (gibbs_gap)", yscale="log",
                title="distance to the proximal Gibbs measure")
    for ax in axes[:3]:
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
    ax = axes[3]
    lam = [r["temperature"] for r in results]
    ax.plot(lam, [r["test_loss"] for r in results], "o-", color="C0", label="test loss")
    ax.set(xscale="log", yscale="log", xlabel="temperature λ", ylabel="test loss (end of run)",
           title="effect of the temperature")
    twin = ax.twinx()
    twin.plot(lam, [r["path_norm"] for r in results], "s--", color="C3", label="path norm P₂")
    twin.set_ylabel("path norm P₂ (end of run)")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize="x-small")
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"Mean-field Langevin dynamics: two-layer tanh, m = {width}, d = 1 (D = 3), n = 20, "
                 f"λ' = {WEIGHT_DECAY:g}, Euler–Maruyama dt = {DT:g}", fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    binary = common.mfsim_binary(args.mfsim, "langevin_free_energy")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "langevin_free_energy.toml"
    common.write_config(config, TITLE, {
        "model.width": size["width"], "data.dim": 1, "data.inputs": "gaussian", "init.seed": 3,
        "flow.integrator": "euler", "flow.dt": DT, "flow.t_end": size["t_end"],
        "flow.weight_decay": WEIGHT_DECAY, "output.observe_every": size["every"],
        "diagnostics": {"gram": False, "every": size["every"], "knn_every": size["every"]}})
    plan = [(runs / f"lambda{lam:g}.h5", {"flow.temperature": lam}) for lam in size["temperatures"]]
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse)
    results = []
    for path, _ in plan:
        with open_run(path) as run:
            results.append(measure(run))
    figure(args.out / "langevin_free_energy.png", results, size["width"])
    scalars = [{k: v for k, v in r.items() if np.ndim(v) == 0 or k == "fit"} for r in results]
    common.write_report(args.out / "langevin_free_energy.json", {
        "width": size["width"], "weight_decay": WEIGHT_DECAY, "dt": DT, "t_end": size["t_end"],
        "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick, "runs": scalars})

    print(f"{ran} runs in {timer.seconds:.0f} s")
    print(f"{'lambda':>7} {'F_inf':>9} {'rate':>7} {'95% CI':>17} {'gibbs 0':>8} {'gibbs end':>9} "
          f"{'test loss':>9} {'path norm':>9}")
    for r in scalars:
        fit = r["fit"]
        print(f"{r['temperature']:7.3g} {r['stationary']:9.4g} {fit['rate']:7.3f} "
              f"[{fit['ci'][0]:6.3f}, {fit['ci'][1]:6.3f}] {r['gibbs_start']:8.3g} {r['gibbs_end']:9.3g} "
              f"{r['test_loss']:9.3g} {r['path_norm']:9.3g}")
    print(f"figure: {args.out / 'langevin_free_energy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Experiment 2 — lazy against mean-field training (MATH.md §6 V3, (T6)): the output multiplier β
moves the two-layer network from feature learning (β = O(1)) to the lazy/NTK regime (β → ∞).

Runs the two-layer model (tanh, d = 5, n = 20 points on the sphere, antithetic initialisation so
that f ≡ 0 at t = 0) for β = 1, 2, 4, …, in the rescaled time t' = β² t / n in which the lazy limit
is r(t') = exp(−t' K) r(0) for every β: same t' horizon and the same number of steps for every β.
It measures

  the Gram drift:  max over t of |λ_min(G(t)) / λ_min(G(0)) − 1|     (lazy: → 0 like 1/β)
  the KL:          KL(ρ_t ‖ ρ₀) at the end, transport estimator (K1)  (lazy: ∝ β⁻², (T6))
  the movement:    β · W₂ path length ℓ(t) at the end                  (lazy: → sqrt(yᵀK⁻¹y), (T6))

and fits the drift and the KL against β on log–log axes over the large-β end, with 95% CIs.

    /usr/bin/python3 simulations/experiments/lazy_vs_mean_field.py --out runs/lazy
    /usr/bin/python3 simulations/experiments/lazy_vs_mean_field.py --out /tmp/lazy --quick

Writes DIR/runs/*.h5, DIR/lazy_vs_mean_field.png and DIR/lazy_vs_mean_field.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import fit_power_law, open_run

SIZES = {
    # β = 2^k, width m, rescaled horizon t', steps per run, fit over β ≥ fit_from
    "default": dict(log2_betas=range(0, 8), width=1024, n=20, t_rescaled=40.0, steps=1600, every=40, fit_from=8),
    "quick": dict(log2_betas=range(0, 6), width=128, n=20, t_rescaled=20.0, steps=800, every=40, fit_from=4),
}

TITLE = "Experiment 2 (lazy against mean-field): beta, dt and t_end vary through --set."


def measure(run):
    lam = run.observables["gram_lambda_min"]
    loss = run.observables["loss"]
    kl = run.observables["kl_transport"]
    length = run.observables["w2_path_length"]
    ratio = lam.value / lam.value[0]
    return dict(time=lam.time, ratio=ratio, drift=float(np.max(np.abs(ratio - 1))),
                loss_time=loss.time, loss=loss.value, kl_time=kl.time, kl=kl.value,
                kl_end=float(kl.value[-1]), length_end=float(length.value[-1]),
                test_loss_end=float(run.observables["test_loss"].value[-1]))


def figure(path, betas, n, results, fits, lambda0):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.1))
    cmap = plt.get_cmap("viridis")
    colors = [cmap(i / max(1, len(betas) - 1)) for i in range(len(betas))]

    ax = axes[0]
    for beta, r, c in zip(betas, results, colors):
        ax.plot(r["time"] * beta**2 / n, r["ratio"], color=c, label=f"β = {beta:g}")
    ax.axhline(1, color="k", lw=0.8, ls=":")
    ax.set(xlabel="rescaled time t' = β² t / n", ylabel="λ_min(G(t)) / λ_min(G(0))",
           title="Gram matrix: moves for β = O(1), frozen for large β")
    ax.legend(fontsize="x-small", ncol=2)

    ax = axes[1]
    for beta, r, c in zip(betas, results, colors):
        ax.plot(r["loss_time"] * beta**2 / n, r["loss"], color=c)
    ax.set(yscale="log", xlabel="rescaled time t'", ylabel="training loss",
           title="loss against t' (lazy limit: one curve)")

    grid = np.geomspace(min(betas), max(betas), 50)
    ax = axes[2]
    for key, fit, marker, label in (("drift", fits["drift"], "o", "max_t |λ_min(G(t))/λ_min(G(0)) − 1|"),
                                    ("kl_end", fits["kl"], "s", "KL(ρ_end ‖ ρ₀) (transport)")):
        values = [r[key] for r in results]
        line, = ax.plot(betas, values, marker, label=label)
        fb = grid[grid >= fits["fit_from"]]
        ax.plot(fb, fit(fb), "-", color=line.get_color(),
                label=f"fit β ≥ {fits['fit_from']:g}: slope {fit.slope:+.2f} [{fit.ci[0]:+.2f}, {fit.ci[1]:+.2f}]")
    ax.plot(grid, values[-1] * (grid / betas[-1]) ** -2.0, "k:", lw=1, label="β⁻² (T6)")
    ax.set(xscale="log", yscale="log", xlabel="β", ylabel="Gram drift, KL(ρ_end ‖ ρ₀)",
           title="drift of λ_min and KL against β")
    ax.legend(fontsize="x-small", title="95% CI", title_fontsize="x-small")

    ax = axes[3]
    ax.plot(betas, [beta * r["length_end"] for beta, r in zip(betas, results)], "o-",
            label="β · ℓ(end) (W₂ path length)")
    ax.plot(betas, [beta**2 * r["kl_end"] for beta, r in zip(betas, results)], "s-", label="β² · KL(end)")
    ax.set(xscale="log", yscale="log", xlabel="β", ylabel="β·ℓ(end), β²·KL(end)",
           title="lazy limit: β·ℓ and β²·KL level off (T6)")
    ax.legend(fontsize="x-small")
    for a in axes:
        a.grid(True, alpha=0.3)
    fig.suptitle(f"Lazy vs mean-field (V3): two-layer tanh, antithetic init, m = {results[0]['width']}, "
                 f"n = {n}, d = 5, same horizon t' for every β; λ₀ = {lambda0:.3g}", fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    betas = [float(2**k) for k in size["log2_betas"]]
    n, steps = size["n"], size["steps"]
    binary = common.mfsim_binary(args.mfsim, "lazy_vs_mean_field")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "lazy_vs_mean_field.toml"
    common.write_config(config, TITLE, {
        "model.width": size["width"], "data.n_train": n, "init.seed": 3, "init.antithetic": True,
        "flow.integrator": "rk4", "output.observe_every": size["every"], "output.snapshot_every": 100000,
        "diagnostics": {"gram": True, "kl": ["transport"]}})

    plan = []
    for beta in betas:
        t_end = size["t_rescaled"] * n / beta**2
        plan.append((runs / f"beta{beta:g}.h5",
                     {"model.beta": beta, "flow.dt": t_end / steps, "flow.t_end": t_end}))
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse)

    results = []
    for beta in betas:
        with open_run(runs / f"beta{beta:g}.h5") as run:
            r = measure(run)
            r["width"] = int(run.get("model.width"))
            lambda0 = float(run.lambda0)
        results.append(r)
    big = [i for i, b in enumerate(betas) if b >= size["fit_from"]]
    fits = {"fit_from": size["fit_from"],
            "drift": fit_power_law([betas[i] for i in big], [results[i]["drift"] for i in big]),
            "kl": fit_power_law([betas[i] for i in big], [results[i]["kl_end"] for i in big])}
    figure(args.out / "lazy_vs_mean_field.png", betas, n, results, fits, lambda0)

    common.write_report(args.out / "lazy_vs_mean_field.json", {
        "betas": betas, "width": size["width"], "n_train": n, "t_rescaled": size["t_rescaled"],
        "steps": steps, "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick,
        "lambda0": lambda0, "fit_from": size["fit_from"],
        "drift": [r["drift"] for r in results], "kl_end": [r["kl_end"] for r in results],
        "beta_length_end": [b * r["length_end"] for b, r in zip(betas, results)],
        "loss_end": [float(r["loss"][-1]) for r in results],
        "test_loss_end": [r["test_loss_end"] for r in results],
        "fit_drift": fits["drift"], "fit_kl": fits["kl"]})

    print(f"{ran} runs in {timer.seconds:.0f} s ({len(betas)} values of β, {args.jobs} at once)")
    print(f"{'beta':>6} {'max|ratio-1|':>13} {'KL(end)':>11} {'beta*l(end)':>12} {'loss(end)':>10}")
    for b, r in zip(betas, results):
        print(f"{b:6g} {r['drift']:13.4g} {r['kl_end']:11.4g} {b * r['length_end']:12.4g} {r['loss'][-1]:10.3g}")
    for name in ("drift", "kl"):
        print(f"slope of {name} against beta (beta >= {size['fit_from']}): {fits[name].describe()}")
    print(f"figure: {args.out / 'lazy_vs_mean_field.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

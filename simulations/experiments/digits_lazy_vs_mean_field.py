#!/usr/bin/python3
"""Experiment 8 — ten classes, lazy against mean-field: scikit-learn's handwritten digits (1797 × 64,
shipped by Debian's python3-sklearn; no download) classified by the two-layer network with
c = 10 outputs (tanh, antithetic start, cross-entropy) in the mean-field (β = 1) and the lazy
(β = 16 = √m) regimes, several initialisation seeds each, against the rescaled time t' = β² t (the
lazy flow moves f on the time scale 1/β², so that in t' the lazy limit is one curve):

  - test accuracy (argmax over the ten outputs);
  - λ_min(G(t)) / λ_min(G(0)) of the nc × nc Gram matrix (MATH.md §1.5): it stays put in the lazy
    regime and moves in the mean-field one (feature learning);
  - KL(ρ_t ‖ ρ_0) by transport (K1): the lazy particles barely move, KL ~ 1/β².

Mean ± one standard error over the seeds. The training set is a stratified-at-random 5 % of the
digits (90 rows, 9 a class on average), so that the Gram matrix is 900 × 900; the other 1707 rows
are the test set.

    /usr/bin/python3 simulations/experiments/digits_lazy_vs_mean_field.py --out runs/digits_lazy
    /usr/bin/python3 simulations/experiments/digits_lazy_vs_mean_field.py --out /tmp/digits --quick

Writes DIR/digits.h5, DIR/runs/*.h5, DIR/digits_lazy_vs_mean_field.png and .json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run
from mfsim_analysis.curves import band_of

SIZES = {
    "default": dict(width=256, seeds=4, t_rescaled=40.0, steps=80, every=10),
    "quick": dict(width=64, seeds=2, t_rescaled=10.0, steps=20, every=5),
}
BETAS = {"mean-field": 1.0, "lazy": 16.0}
TITLE = "Experiment 8 (digits, ten outputs): model.beta, init.seed, flow.dt and flow.t_end vary through --set."


def measure(run, beta):
    """The run's curves against t' = β² t, and the numbers the report keeps."""
    o = run.observables
    lam, kl = o["gram_lambda_min"], o["kl_transport"]
    accuracy = o["test_accuracy"]
    return dict(beta=beta, seed=int(run.get("init.seed")), time=accuracy.time * beta**2, test=accuracy.value,
                gram_time=lam.time * beta**2, gram_ratio=lam.value / lam.value[0],
                kl_time=kl.time * beta**2, kl=kl.value, kl_reliable=o["kl_transport_reliable"].value,
                final_test=float(accuracy.value[-1]), final_train=float(o["train_accuracy"].value[-1]),
                final_kl=float(kl.value[-1]), final_kl_stderr=float(o["kl_transport_stderr"].value[-1]),
                gram_change=float(np.max(np.abs(lam.value / lam.value[0] - 1))))


def bands(results, beta, time_key, value_key):
    """(t', mean, mean − se, mean + se) over the seeds of one β (the runs share their times)."""
    runs = [r for r in results if r["beta"] == beta]
    mean, lo, hi = band_of(np.stack([r[value_key] for r in runs]), "se")
    return runs[0][time_key], mean, lo, hi


def figure(path, results, width, n, seeds):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    panels = [("time", "test"), ("gram_time", "gram_ratio"), ("kl_time", "kl")]
    for name, beta in BETAS.items():
        colour = "C0" if name == "mean-field" else "C3"
        label = f"{name}, β = {beta:g} ({seeds} seeds)"
        for ax, (time_key, value_key) in zip(axes, panels):
            t, mean, lo, hi = bands(results, beta, time_key, value_key)
            keep = t > 0 if value_key == "kl" else np.ones(t.shape, bool)  # KL(ρ_0 ‖ ρ_0) = 0
            if value_key == "kl":
                # Dashed where some seed flags the estimate unreliable (its error bound too large).
                ok = np.all([r["kl_reliable"] >= 1 for r in results if r["beta"] == beta], axis=0)
                shaky = ~ok | np.roll(~ok, 1)  # a dashed stretch joins its reliable neighbour
                shaky[0] = ~ok[0]
                ax.plot(t[keep], np.where(shaky, mean, np.nan)[keep], color=colour, ls="--",
                        label="unreliable (flagged by mfsim)" if not ok.all() else None)
                mean = np.where(ok, mean, np.nan)
            ax.plot(t[keep], mean[keep], color=colour, label=label)
            ax.fill_between(t[keep], lo[keep], hi[keep], color=colour, alpha=0.25, lw=0)
    axes[0].set(ylabel="test accuracy (argmax of 10 outputs)", ylim=(0, 1),
                title=f"test accuracy ({n['test']} held-out digits)")
    axes[1].set(ylabel="λ_min(G(t)) / λ_min(G(0))",
                title=f"Gram matrix ({10 * n['train']} × {10 * n['train']}): lazy stays")
    axes[2].set(ylabel="KL(ρ_t ‖ ρ_0) (nats)", yscale="log", title="KL from the start (transport)")
    for ax in axes:
        ax.set_xlabel("rescaled time t' = β² t")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="best")
    fig.suptitle(f"Digits (10 classes, n = {n['train']} training rows), cross-entropy: two-layer tanh with c = 10 "
                 f"outputs, m = {width}, antithetic start; mean ± 1 s.e. over seeds", fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    binary = common.mfsim_binary(args.mfsim, "digits_lazy_vs_mean_field")
    args.out.mkdir(parents=True, exist_ok=True)
    data = common.sklearn_data(binary, args.out, "digits", "digits_lazy_vs_mean_field",
                               "--test-fraction", "0.95", "--standardize", "--normalize-to-sphere")
    runs = args.out / "runs"
    runs.mkdir(exist_ok=True)
    config = args.out / "digits_lazy_vs_mean_field.toml"
    common.write_config(config, TITLE, {
        "model.width": size["width"], "model.loss": "cross_entropy", "model.outputs": 10,
        "data": {"kind": "file", "path": str(data)}, "init.antithetic": True, "flow.integrator": "heun",
        "output.observe_every": size["every"], "output.snapshot_every": 100000,
        "diagnostics": {"gram": True, "gram_every": size["every"], "kl": ["transport"], "ntk": False,
                        "every": size["every"]}})
    with open_run(data) as d:
        n = dict(train=len(d.data.y_train), test=len(d.data.y_test))
    plan = []
    for name, beta in BETAS.items():
        t_end = size["t_rescaled"] / beta**2
        for seed in range(1, size["seeds"] + 1):
            plan.append((runs / f"{name}_s{seed}.h5", beta,
                         {"model.beta": beta, "init.seed": seed, "flow.dt": t_end / size["steps"],
                          "flow.t_end": t_end}))
    with common.Timer() as timer:
        ran = common.run_all(binary, config, [(p, s) for p, _, s in plan], jobs=args.jobs, reuse=args.reuse)
    results = []
    for path, beta, _ in plan:
        with open_run(path) as run:
            results.append(measure(run, beta))
    figure(args.out / "digits_lazy_vs_mean_field.png", results, size["width"], n, size["seeds"])
    summary = {}
    for name, beta in BETAS.items():
        runs_of = [r for r in results if r["beta"] == beta]
        summary[name] = {key: dict(mean=float(np.mean([r[key] for r in runs_of])),
                                   se=float(np.std([r[key] for r in runs_of], ddof=1) / np.sqrt(len(runs_of))))
                         for key in ("final_test", "final_train", "gram_change", "final_kl")}
        summary[name]["beta"] = beta
        summary[name]["kl_reliable_at_end"] = int(sum(r["kl_reliable"][-1] for r in runs_of))
    scalars = [{k: v for k, v in r.items() if np.ndim(v) == 0} for r in results]
    common.write_report(args.out / "digits_lazy_vs_mean_field.json", {
        "width": size["width"], "seeds": size["seeds"], "n_train": n["train"], "n_test": n["test"],
        "steps": size["steps"], "t_rescaled": size["t_rescaled"], "runs_made": ran,
        "run_seconds": round(timer.seconds, 1), "quick": args.quick, "regimes": summary, "runs": scalars})
    print(f"{ran} runs in {timer.seconds:.0f} s")
    print(f"{'regime':>10} {'beta':>5} {'test acc':>16} {'max|lmin/lmin0-1|':>18} {'KL(end)':>18}")
    for name, s in summary.items():
        print(f"{name:>10} {s['beta']:5g} {s['final_test']['mean']:8.3f} ± {s['final_test']['se']:.3f} "
              f"{s['gram_change']['mean']:9.3g} ± {s['gram_change']['se']:.2g} "
              f"{s['final_kl']['mean']:9.3g} ± {s['final_kl']['se']:.2g}")
    print(f"figure: {args.out / 'digits_lazy_vs_mean_field.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

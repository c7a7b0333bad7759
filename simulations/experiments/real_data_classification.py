#!/usr/bin/python3
"""Experiment 7 — real data, the logistic loss and stochastic gradients: the Wisconsin breast-cancer
set (569 × 30, shipped by Debian's python3-sklearn; no download) classified by the two-layer
network (tanh, antithetic start) in the mean-field (β = 1) and the lazy (β = 32) regimes, each with
full-batch gradients and with minibatch SGD (B = n/10), side by side:

  - train and test accuracy, and the normalised margin min_i y_i f(x_i) / P₂ (Chizat–Bach), against
    the rescaled time t' = β² t (the lazy flow moves f on the time scale 1/β²);
  - λ_min(G(t)) / λ_min(G(0)): the Gram matrix stays put in the lazy regime and moves in the
    mean-field one (feature learning), with or without SGD noise.

The data file is made by simulations/data/export_sklearn.py and `mfsim data import` (25 % test
rows, standardized, on the sphere, labels ±1).

    /usr/bin/python3 simulations/experiments/real_data_classification.py --out runs/real_data
    /usr/bin/python3 simulations/experiments/real_data_classification.py --out /tmp/real --quick

Writes DIR/breast_cancer.h5, DIR/runs/*.h5, DIR/real_data_classification.png and .json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import open_run

SIZES = {
    "default": dict(width=1024, t_rescaled=60.0, steps=600, every=20),
    "quick": dict(width=128, t_rescaled=20.0, steps=100, every=20),
}
BETAS = {"mean-field": 1.0, "lazy": 32.0}
TITLE = "Experiment 7 (real data): model.beta, flow.dt, flow.t_end and flow.batch_size vary through --set."


def measure(run, beta):
    o = run.observables
    lam = o["gram_lambda_min"]
    return dict(beta=beta, batch=int(run.get("flow.batch_size")), time=o["train_accuracy"].time * beta**2,
                train=o["train_accuracy"].value, test=o["test_accuracy"].value, margin=o["normalised_margin"].value,
                gram_time=lam.time * beta**2, gram_ratio=lam.value / lam.value[0],
                final_train=float(o["train_accuracy"].value[-1]), final_test=float(o["test_accuracy"].value[-1]),
                final_margin=float(o["normalised_margin"].value[-1]),
                gram_change=float(np.max(np.abs(lam.value / lam.value[0] - 1))))


def figure(path, results, width, n):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.1))
    for r in results:
        regime = "mean-field" if r["beta"] == 1 else "lazy"
        color = "C0" if regime == "mean-field" else "C3"
        style = "-" if r["batch"] == 0 else "--"
        label = f"{regime} β = {r['beta']:g}, " + ("full batch" if r["batch"] == 0 else f"SGD B = {r['batch']}")
        axes[0].plot(r["time"], r["test"], style, color=color, label=label)
        axes[1].plot(r["time"], r["train"], style, color=color, label=label)
        axes[2].plot(r["time"], r["margin"], style, color=color, label=label)
        axes[3].plot(r["gram_time"], r["gram_ratio"], style, color=color, label=label)
    axes[0].set(ylabel="test accuracy", ylim=(0.85, 1.0), title="test accuracy (142 held-out rows)")
    axes[1].set(ylabel="train accuracy", ylim=(0.85, 1.0), title=f"train accuracy (n = {n})")
    axes[2].set(ylabel="min y f(x) / P₂", title="normalised margin (Chizat–Bach)")
    axes[3].set(ylabel="λ_min(G(t)) / λ_min(G(0))", yscale="log", title="Gram matrix: lazy stays, mean-field moves")
    for ax in axes:
        ax.set_xlabel("rescaled time t' = β² t")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Breast cancer (569 × 30), logistic loss: two-layer tanh, m = {width}, antithetic start; "
                 "full batch and minibatch SGD", fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    binary = common.mfsim_binary(args.mfsim, "real_data_classification")
    args.out.mkdir(parents=True, exist_ok=True)
    data = common.sklearn_data(binary, args.out, "breast_cancer", "real_data_classification",
                               "--test-fraction", "0.25", "--standardize", "--normalize-to-sphere", "--binary-labels")
    runs = args.out / "runs"
    runs.mkdir(exist_ok=True)
    config = args.out / "real_data_classification.toml"
    common.write_config(config, TITLE, {
        "model.width": size["width"], "model.loss": "logistic", "data": {"kind": "file", "path": str(data)},
        "init.seed": 2, "init.antithetic": True, "flow.integrator": "euler",
        "output.observe_every": size["every"], "output.snapshot_every": 100000,
        "diagnostics": {"gram": True, "gram_every": size["every"], "ntk": False, "every": size["every"]}})
    with open_run(data) as d:
        n = len(d.data.y_train)
    batch = n // 10
    plan = []
    for name, beta in BETAS.items():
        t_end = size["t_rescaled"] / beta**2
        for b in (0, batch):
            plan.append(((runs / f"{name}_B{b}.h5"), beta,
                         {"model.beta": beta, "flow.dt": t_end / size["steps"], "flow.t_end": t_end, "flow.batch_size": b}))
    with common.Timer() as timer:
        ran = common.run_all(binary, config, [(p, s) for p, _, s in plan], jobs=args.jobs, reuse=args.reuse)
    results = []
    for path, beta, _ in plan:
        with open_run(path) as run:
            results.append(measure(run, beta))
    figure(args.out / "real_data_classification.png", results, size["width"], n)
    scalars = [{k: v for k, v in r.items() if np.ndim(v) == 0} for r in results]
    common.write_report(args.out / "real_data_classification.json", {
        "width": size["width"], "n_train": n, "batch": batch, "steps": size["steps"],
        "t_rescaled": size["t_rescaled"], "runs_made": ran, "run_seconds": round(timer.seconds, 1),
        "quick": args.quick, "runs": scalars})
    print(f"{ran} runs in {timer.seconds:.0f} s")
    print(f"{'beta':>5} {'batch':>5} {'train':>6} {'test':>6} {'margin':>8} {'max|lmin/lmin0-1|':>18}")
    for r in scalars:
        print(f"{r['beta']:5g} {r['batch']:5d} {r['final_train']:6.3f} {r['final_test']:6.3f} "
              f"{r['final_margin']:8.3g} {r['gram_change']:18.3g}")
    print(f"figure: {args.out / 'real_data_classification.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Experiment 4 — the ResNet's depth and width (MATH.md §6 V1 for model B): the finite ResNet with
L layers of M particles approaches the mean-field limit with an error O(1/L + α/√(LM)) (Chizat
2025; Ding et al.: L ~ ε⁻¹, M ~ ε⁻²).

Model B (σ0 = σh = tanh, α = β = 1, d = 5, n = 20 points on the sphere, Gaussian initialisation,
not antithetic so that f ≠ 0 and the blocks move from t = 0), trained by the mean-field flow
(Heun) to time t_end; the error is measured at t = 0 and t = t_end in two separate sweeps:

  depth (the 1/L term, a bias): `depth_init = "constant"`, so that every layer holds the same
  particles θ_m and, as mfsim draws them by their index within the layer, the same seed gives the
  same θ_m and head at every depth; the error is the distance to a much deeper run,
  sqrt(mean_x |f_L(x, t) − f_Lref(x, t)|²), root-mean-square over seeds. Theory: slope −1.

  width (the 1/√(LM) term, a fluctuation): `depth_init = "iid"`, L fixed, head width K = L·M (so
  that the head's own K^{-1/2} fluctuation shrinks with M too), and the error is the spread over
  seeds sqrt(mean_x Var_seeds f(x, t)), as in experiment 1. Theory: slope −1/2.

  Gram parts along training, on the width sweep's runs: λ_min(G₁) (blocks) and λ_min(G₂) (head)
  separately, observed every few steps, mean over seeds per width (mfsim_analysis.curves). The
  initialisation is the iid Gaussian one, not antithetic, so that G₁(0) ≠ 0: with antithetic
  pairs G₁(0) = 0 exactly and λ_min(G(0)) would be the head's alone, the same for every L and M.
  The lower bound of G's smallest eigenvalue along training (T1)–(T2) is then checked where G₁
  contributes: the report gives λ_min of each part at t = 0 and its smallest value over [0, t_end]
  relative to t = 0.

    /usr/bin/python3 simulations/experiments/resnet_depth_width.py --out runs/resnet
    /usr/bin/python3 simulations/experiments/resnet_depth_width.py --out /tmp/resnet --quick

Writes DIR/runs/*.h5, DIR/resnet_depth_width.png and DIR/resnet_depth_width.json.
"""

from __future__ import annotations

import sys

import numpy as np

import common
from mfsim_analysis import curves, fit_power_law, open_run, predict
from mfsim_analysis.ticks import readable_log_axis

SIZES = {
    # depth sweep: L = 2^k at fixed M and K, reference depth, seeds; width sweep: M = 2^k at fixed L, seeds
    "default": dict(log2_depths=range(1, 7), depth_width=32, depth_head=256, depth_ref=1024, depth_seeds=4,
                    log2_widths=range(3, 10), width_depth=4, width_seeds=16, t_end=4.0, dt=0.1, n_test=100,
                    gram_every=4),
    "quick": dict(log2_depths=range(1, 5), depth_width=16, depth_head=64, depth_ref=128, depth_seeds=2,
                  log2_widths=range(3, 7), width_depth=4, width_seeds=8, t_end=2.0, dt=0.1, n_test=50,
                  gram_every=4),
}

TITLE = "Experiment 4 (the ResNet's depth and width): depth, width, head_width, depth_init, seed vary."


def outputs(path, x):
    """f at the test inputs at the first and the last snapshot (t = 0 and t_end)."""
    with open_run(path) as run:
        return predict(run, x, 0), predict(run, x, -1), run.observables["loss"]


def main(argv=None) -> int:
    args = common.parser(__doc__, seeds="depth sweep 4, width sweep 16; quick 2 and 8").parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    depths = [2**k for k in size["log2_depths"]]
    widths = [2**k for k in size["log2_widths"]]
    width_seeds = list(range(1, 1 + (args.seeds or size["width_seeds"])))
    depth_seeds = list(range(1, 1 + size["depth_seeds"]))
    t_end = size["t_end"]
    binary = common.mfsim_binary(args.mfsim, "resnet_depth_width")
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = args.out / "resnet_depth_width.toml"
    common.write_config(config, TITLE, {
        "model": {"kind": "resnet", "activation": "tanh", "head_activation": "tanh", "alpha": 1.0, "beta": 1.0,
                  "depth": 8, "width": 32, "head_width": 256, "depth_init": "iid"},
        "data.n_test": size["n_test"], "flow.dt": size["dt"], "flow.t_end": t_end,
        "output.observe_every": 1000000,
        "diagnostics": {"gram": False, "kl": [], "path_norm": False, "path_length": False}})

    M, K, L_ref, L_w = size["depth_width"], size["depth_head"], size["depth_ref"], size["width_depth"]
    plan = []
    for s in depth_seeds:
        for L in depths + [L_ref]:
            plan.append((runs / f"depth_L{L}_s{s}.h5", {"model.depth": L, "model.width": M, "model.head_width": K,
                                                        "model.depth_init": "constant", "init.seed": s}))
    for m in widths:
        for s in width_seeds:
            # distinct seeds per width: the widths' estimates stay independent (see experiment 1)
            # with the Gram parts observed along the run (n = 20: cheap)
            plan.append((runs / f"width_M{m}_s{s}.h5", {"model.depth": L_w, "model.width": m, "model.head_width": L_w * m,
                                                        "model.depth_init": "iid", "init.seed": 1000 * m + s,
                                                        "init.antithetic": False, "diagnostics.gram": True,
                                                        "diagnostics.ntk": False,
                                                        "output.observe_every": size["gram_every"],
                                                        "diagnostics.gram_every": size["gram_every"]}))
    cost = lambda sets: sets["model.depth"] * sets["model.width"] + sets["model.head_width"]  # noqa: E731
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse, cost=cost)

    with open_run(runs / f"depth_L{L_ref}_s1.h5") as run:
        x = run.data.x_test
    # depth: distance to the reference depth, RMS over test points and seeds
    depth_err = {0: [], 1: []}
    depth_loss = {}
    for L in depths:
        sq = {0: [], 1: []}
        for s in depth_seeds:
            f0, f1, loss = outputs(runs / f"depth_L{L}_s{s}.h5", x)
            r0, r1, _ = outputs(runs / f"depth_L{L_ref}_s{s}.h5", x)
            sq[0].append(np.mean((f0 - r0) ** 2))
            sq[1].append(np.mean((f1 - r1) ** 2))
            depth_loss.setdefault(L, []).append(loss.value[-1])
        for i in (0, 1):
            depth_err[i].append(float(np.sqrt(np.mean(sq[i]))))
    # width: spread over seeds
    width_err = {0: [], 1: []}
    width_loss = []
    for m in widths:
        f = {0: [], 1: []}
        losses = []
        for s in width_seeds:
            f0, f1, loss = outputs(runs / f"width_M{m}_s{s}.h5", x)
            f[0].append(f0)
            f[1].append(f1)
            losses.append(loss.value[-1])
        for i in (0, 1):
            width_err[i].append(float(np.sqrt(np.mean(np.var(np.array(f[i]), axis=0, ddof=1)))))
        width_loss.append(float(np.mean(losses)))
    # Gram parts along training: mean over seeds per width, G₁ and G₂ apart.
    width_files = [runs / f"width_M{m}_s{s}.h5" for m in widths for s in width_seeds]
    gram = curves(width_files, ["gram_blocks_lambda_min", "gram_head_lambda_min"], "model.width", band="se")
    gram_report = {}
    for g in gram.groups:
        entry = {}
        for name, part in (("gram_blocks_lambda_min", "G1"), ("gram_head_lambda_min", "G2")):
            m = g.mean[name]
            entry[part] = {"t0": float(m[0]), "end": float(m[-1]), "min_over_t0": float(m.min() / m[0]),
                           "stderr_t0": float(g.hi[name][0] - m[0])}
        gram_report[str(g.value)] = entry
    fits = {f"depth_t{i}": fit_power_law(depths, depth_err[i]) for i in (0, 1)}
    fits.update({f"width_t{i}": fit_power_law(widths, width_err[i]) for i in (0, 1)})
    # The reference has an error of its own, of the same sign: to leading order f_L − f_Lref ∝
    # 1/L − 1/Lref, which steepens the plain fit a little; against the effective depth
    # (1/L − 1/Lref)⁻¹ the slope is −1 exactly in the leading order.
    effective = [1 / (1 / L - 1 / L_ref) for L in depths]
    fits.update({f"depth_effective_t{i}": fit_power_law(effective, depth_err[i]) for i in (0, 1)})

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), gridspec_kw={"width_ratios": [1, 1, 1.25]})
    for ax, xs, errs, key, theory, xlabel, title in (
            (axes[0], depths, depth_err, "depth", -1.0, "depth L",
             f"depth: |f_L − f_L={L_ref}| (constant init, M = {M}, K = {K})"),
            (axes[1], widths, width_err, "width", -0.5, "width M (head K = L·M)",
             f"width: spread of f over {len(width_seeds)} seeds (iid init, L = {L_w})")):
        grid = np.geomspace(min(xs), max(xs), 50)
        for i, t in ((0, 0.0), (1, t_end)):
            fit = fits[f"{key}_t{i}"]
            ax.plot(xs, errs[i], "o", color=f"C{i}")
            ax.plot(grid, fit(grid), "-", color=f"C{i}",
                    label=f"t = {t:g}: slope {fit.slope:+.3f} [{fit.ci[0]:+.3f}, {fit.ci[1]:+.3f}]")
        ax.plot(grid, errs[0][0] * (grid / xs[0]) ** theory, "k:", lw=1, label=f"slope {theory:+g} (theory)")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="RMS error of f on the test points", title=title)
        ax.set_xticks(xs, [str(v) for v in xs])
        ax.minorticks_off()
        readable_log_axis(ax, "y")
        ax.legend(fontsize="x-small", title="fit, 95% CI", title_fontsize="x-small")
        ax.grid(True, alpha=0.3)
    ax = axes[2]
    colours = gram.colours()
    for g, colour in zip(gram.groups, colours):
        for name, style in (("gram_blocks_lambda_min", "-"), ("gram_head_lambda_min", "--")):
            ax.plot(g.time, g.mean[name], style, color=colour, lw=1.4)
            ax.fill_between(g.time, g.lo[name], g.hi[name], color=colour, alpha=0.15, lw=0)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, label=f"M = {g.value}") for g, c in zip(gram.groups, colours)]
    handles += [Line2D([], [], color="0.3", ls="-", label="λ_min(G₁), blocks"),
                Line2D([], [], color="0.3", ls="--", label="λ_min(G₂), head")]
    ax.set(yscale="log", xlabel="flow time t", ylabel="λ_min of the Gram part",
           title=f"Gram parts, iid init (G₁(0) ≠ 0), L = {L_w}, K = L·M; mean ± SE, {len(width_seeds)} seeds")
    ax.title.set_fontsize("small")
    readable_log_axis(ax, "y")
    ax.legend(handles=handles, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.grid(True, alpha=0.3)
    fig.suptitle("ResNet depth and width (V1, model B): tanh, α = β = 1, d = 5, n = 20; error O(1/L + 1/√(LM))",
                 fontsize="medium")
    common.save_figure(fig, args.out / "resnet_depth_width.png")

    common.write_report(args.out / "resnet_depth_width.json", {
        "depths": depths, "depth_ref": L_ref, "depth_width": M, "depth_head": K, "depth_seeds": len(depth_seeds),
        "widths": widths, "width_depth": L_w, "width_seeds": len(width_seeds), "t_end": t_end, "dt": size["dt"],
        "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick,
        "depth_error": {"0": depth_err[0], str(t_end): depth_err[1]},
        "width_spread": {"0": width_err[0], str(t_end): width_err[1]},
        "width_mean_loss_end": width_loss,
        "fits": {"depth": {"0": fits["depth_t0"], str(t_end): fits["depth_t1"]},
                 "depth_effective": {"0": fits["depth_effective_t0"], str(t_end): fits["depth_effective_t1"]},
                 "width": {"0": fits["width_t0"], str(t_end): fits["width_t1"]}},
        "gram_init": "iid Gaussian, not antithetic (G1(0) != 0)", "gram_every": size["gram_every"],
        "gram_parts_by_width": gram_report})

    print(f"{ran} runs in {timer.seconds:.0f} s ({len(plan)} runs, {args.jobs} at once)")
    for key, label in (("depth", f"depth error against L (ref L = {L_ref})"),
                       ("depth_effective", "depth error against (1/L - 1/Lref)^-1"), ("width", "width spread against M")):
        for i, t in ((0, 0.0), (1, t_end)):
            print(f"{label}, t = {t:g}: {fits[f'{key}_t{i}'].describe()}")
    for width, entry in gram_report.items():
        print(f"M = {width}: " + "; ".join(
            f"lambda_min({part}) t=0 {e['t0']:.4g}, end {e['end']:.4g}, min/t0 {e['min_over_t0']:.3f}"
            for part, e in entry.items()))
    print(f"figure: {args.out / 'resnet_depth_width.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

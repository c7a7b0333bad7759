#!/usr/bin/python3
"""Experiment 9 — population-risk flows (MATH.md §2.8): a committee of erf students learns a teacher
of k = 2 erf neurons on Gaussian inputs, with plateaus and escapes, and the particles approach the
mean-field PDE like m^(−1/2).

(a) Committee machine: `data.kind = "population"` (the exact population risk, no samples), erf
    student and teacher, k = 2 teacher neurons (data seed 5: a* = (0.21, 0.41), both positive),
    x ~ N(0, I_d/d) (`data.covariance_diagonal`, so that the teacher's pre-activations have unit
    scale, as in the committee-machine literature), small initial input weights (std 0.01), RK4.
    The population risk against time for widths m = k … , mean over the seeds: a plateau (the
    students have not told the teacher's neurons apart), then the escape. For m = k the particle
    system closes on its order parameters (Saad–Solla; tests/python/test_population_ode.py): that
    ODE, integrated by scipy from the run's initial particles, is drawn over the m = k curve.
(b) The reduced PDE (MATH.md §2.8, "Reduction to the plane"): teacher and students on a line
    (d = 1, data seed 4), initial law N(0, 1)², t ≤ 2. The population risk of the PDE (finite
    volumes on a grid, mfsim_analysis.reduced_pde) and of the particles at two widths.
(c) The particle error against m for that case: the root mean square over seeds of the particles'
    population risk, E a², E s², E a s minus the PDE's at t = 0.5, 1, 2 (the PDE Richardson-
    extrapolated from two grids), with its least-squares exponent (theory −1/2).

    PYTHONPATH=analysis /usr/bin/python3 simulations/experiments/population_committee.py --out runs/committee
    PYTHONPATH=analysis /usr/bin/python3 simulations/experiments/population_committee.py --out /tmp/c --quick

Writes DIR/runs/…/*.h5, DIR/population_committee.png and DIR/population_committee.json.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
from scipy.integrate import solve_ivp

import common
from mfsim_analysis import fit_power_law, open_run
from mfsim_analysis.reduced_pde import (ERF, LINE_HALF_WIDTH, LINE_OBSERVABLES, LINE_TIMES, Grid, ReducedFlow,
                                        particle_observables, teacher_of)

SIZES = {
    # (a): dimension, widths, seeds, flow time, step, observation cadence (steps)
    # (b, c): widths on the line, seeds per width, grid N (grids N/2, N and 2N are solved)
    "default": dict(dim=16, widths=(2, 8, 32, 128, 512), seeds=3, t_end=10000.0, dt=0.5, every=4,
                    line_widths=(100, 300, 1000, 3000), line_seeds=(16, 16, 16, 8), grid=100),
    "quick": dict(dim=8, widths=(2, 8, 32), seeds=2, t_end=2000.0, dt=0.5, every=8,
                  line_widths=(30, 100, 300), line_seeds=(6, 6, 6), grid=50),
}
TEACHER_WIDTH = 2

TITLE = "Experiment 9 (population-risk flows): widths and seeds vary through --set."


def committee_config(path, dim):
    return common.write_config(path, TITLE, {
        "model": {"kind": "two_layer", "activation": "erf", "width": 2, "beta": 1.0, "bias": False},
        "data": {"kind": "population", "dim": dim, "teacher_width": TEACHER_WIDTH, "n_test": 0,
                 "inputs": "gaussian", "covariance_diagonal": [1.0 / dim] * dim, "seed": 5},
        "init.std_w": 0.01, "init.std_a": 1.0, "flow.integrator": "rk4", "output.snapshot_every": 10**9,
        "diagnostics": {"kl": [], "path_norm": False, "path_length": False}})


def line_config(path):
    return common.write_config(path, TITLE, {
        "model": {"kind": "two_layer", "activation": "erf", "width": 100, "beta": 1.0, "bias": False},
        "data": {"kind": "population", "dim": 1, "teacher_width": 1, "n_test": 0, "seed": 4},
        "init.std_w": 1.0, "init.std_a": 1.0, "flow.integrator": "rk4", "flow.dt": 0.05, "flow.t_end": 2.0,
        "output.observe_every": 2, "output.snapshot_every": 10,
        "diagnostics": {"kl": [], "path_norm": False, "path_length": False}})


def erf_kernel(q11, q12, q22):
    """The arcsine kernel and its derivatives in q11 and q12 (MATH.md §2.8)."""
    a, b = 1 + 2 * q11, 1 + 2 * q22
    d = np.sqrt(a * b - 4 * q12**2)
    return 2 / np.pi * np.arcsin(2 * q12 / np.sqrt(a * b)), -4 * q12 / (np.pi * a * d), 4 / (np.pi * d)


def saad_solla(path, scale_c):
    """The order-parameter ODE of the run's particles (m students, k teachers, x ~ N(0, c I)):
    Q = c W Wᵀ, R = c W W*ᵀ, T = c W* W*ᵀ; the velocity (P2) with Σ = cI gives the ODE of
    tests/python/test_population_ode.py with a factor c on dQ and dR. Returns (t, risk)."""
    with open_run(path) as run:
        theta = run.particles["two_layer"].frame(0).value
        times = run.observables["population_risk"].time
    with h5py.File(path, "r") as f:
        w_star, a_star = f["data/teacher/w"][:], f["data/teacher/a"][:].ravel()
        scale = float(f["data/teacher"].attrs["output_scale"])
    m, k = theta.shape[0], w_star.shape[0]
    a0, W = theta[:, 0], theta[:, 1:]
    T = scale_c * w_star @ w_star.T

    def unpack(y):
        return y[:m], y[m:m + m * m].reshape(m, m), y[m + m * m:].reshape(m, k)

    def rhs(_t, y):
        a, Q, R = unpack(y)
        dq = np.diag(Q)
        ks, k1s, k2s = erf_kernel(dq[:, None], Q, dq[None, :])
        kt, k1t, k2t = erf_kernel(dq[:, None], R, np.diag(T)[None, :])
        cs, ct = -a / m, scale * a_star
        da = ks @ cs + kt @ ct
        s1 = k1s @ cs + k1t @ ct
        G, H = k2s * cs[None, :], k2t * ct[None, :]
        dw_w = scale_c * a[:, None] * (2 * s1[:, None] * Q + G @ Q + H @ R.T)
        dw_star = scale_c * a[:, None] * (2 * s1[:, None] * R + G @ R + H @ T)
        return np.concatenate([da, (dw_w + dw_w.T).ravel(), dw_star.ravel()])

    y0 = np.concatenate([a0, (scale_c * W @ W.T).ravel(), (scale_c * W @ w_star.T).ravel()])
    sol = solve_ivp(rhs, (0, times[-1]), y0, method="DOP853", t_eval=times, rtol=1e-10, atol=1e-12)
    risks = []
    kt_star = erf_kernel(np.diag(T)[:, None], T, np.diag(T)[None, :])[0]
    for y in sol.y.T:
        a, Q, R = unpack(y)
        dq = np.diag(Q)
        ks = erf_kernel(dq[:, None], Q, dq[None, :])[0]
        kt = erf_kernel(dq[:, None], R, np.diag(T)[None, :])[0]
        risks.append(0.5 * scale**2 * a_star @ kt_star @ a_star - scale * (a @ kt @ a_star) / m +
                     0.5 * (a @ ks @ a) / m**2)
    return sol.t, np.array(risks)


def line_reference(teacher, grid):
    """The PDE's observables at LINE_TIMES, Richardson-extrapolated from grid and 2·grid cells, the
    estimate of its error (against the extrapolation from grid/2 and grid), and its risk curve."""
    solutions = {}
    curve_times = np.linspace(0, 2, 41)[1:]
    for n in (grid // 2, grid, 2 * grid):
        g = Grid(n, n, LINE_HALF_WIDTH, LINE_HALF_WIDTH)
        flow = ReducedFlow(ERF, beta=1.0, **teacher)
        solutions[n] = flow.solve(g, g.gaussian(1.0, 1.0), (0.0, *curve_times))
    pick = [int(np.argmin(np.abs(curve_times - t))) + 1 for t in LINE_TIMES]
    coarse, mid, fine = (solutions[n].observables for n in (grid // 2, grid, 2 * grid))
    reference, error = {}, {}
    for key in LINE_OBSERVABLES:
        r_fine = fine[key] + (fine[key] - mid[key]) / 3
        r_mid = mid[key] + (mid[key] - coarse[key]) / 3
        reference[key], error[key] = r_fine[pick], np.abs(r_fine - r_mid)[pick]
    curve = (np.concatenate([[0.0], curve_times]), fine["population_risk"])
    return reference, error, curve


def figure(path, committee, dim, line_curve, line_runs, widths, rms, fit):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    for i, (m, (t, risks)) in enumerate(committee["curves"].items()):
        keep = t > 0
        ax.plot(t[keep], risks.mean(0)[keep], color=f"C{i}", label=f"m = {m}")
    t_ode, r_ode = committee["ode"]
    t, risks = committee["curves"][TEACHER_WIDTH]
    keep = t > 0
    ax.plot(t[keep], risks[0][keep], color="0.5", lw=3, alpha=0.5, label=f"m = {TEACHER_WIDTH}, seed 1")
    keep = t_ode > 0
    ax.plot(t_ode[keep], r_ode[keep], "k--", lw=1, label="its Saad–Solla ODE")
    ax.set(xscale="log", yscale="log", xlabel="flow time t", ylabel="population risk R(ρ_t)",
           title=f"(a) k = {TEACHER_WIDTH} erf teacher, d = {dim}: plateau and escape")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    ax.plot(*line_curve, "k-", lw=2, label="reduced PDE (grid)")
    for i, (m, runs) in enumerate(line_runs.items()):
        for j, (t, risk) in enumerate(runs):
            ax.plot(t, risk, color=f"C{i}", lw=0.6, alpha=0.6, label=f"particles, m = {m}" if j == 0 else None)
    ax.set(yscale="log", xlabel="flow time t", ylabel="population risk R(ρ_t)",
           title="(b) d = 1 (on the line): PDE and particles")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3)
    ax = axes[2]
    for key, values in rms.items():
        ax.plot(widths, values, "o-" if key == "combined" else ".:", label=key, lw=2 if key == "combined" else 1)
    ax.plot(widths, fit(widths), "k--", lw=1, label=f"fit m^{fit.slope:+.2f} ± {fit.stderr:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="RMS error against the PDE",
           title="(c) particle error (t = 0.5, 1, 2; over seeds)")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3, which="both")
    fig.suptitle("Population-risk flows: committee machine, reduced PDE and particle error (erf, β = 1, RK4)",
                 fontsize="medium")
    common.save_figure(fig, path)


def main(argv=None) -> int:
    args = common.parser(__doc__).parse_args(argv)
    size = SIZES["quick" if args.quick else "default"]
    binary = common.mfsim_binary(args.mfsim, "population_committee")
    runs = args.out / "runs"
    (runs / "committee").mkdir(parents=True, exist_ok=True)
    (runs / "line").mkdir(parents=True, exist_ok=True)
    dim = size["dim"]
    config = committee_config(args.out / "population_committee.toml", dim)
    line = line_config(args.out / "population_line.toml")
    seeds = range(1, size["seeds"] + 1)
    plan = [(runs / "committee" / f"m{m}_s{s}.h5",
             {"model.width": m, "init.seed": 100 * m + s, "flow.dt": size["dt"], "flow.t_end": size["t_end"],
              "output.observe_every": size["every"]}) for m in size["widths"] for s in seeds]
    widest = sorted(size["line_widths"], reverse=True)
    line_plan = [(runs / "line" / f"m{m}_s{s}.h5", {"model.width": m, "init.seed": s + 1000 * widest.index(m)})
                 for m, count in zip(size["line_widths"], size["line_seeds"]) for s in range(1, count + 1)]
    with common.Timer() as timer:
        ran = common.run_all(binary, config, plan, jobs=args.jobs, reuse=args.reuse,
                             cost=lambda sets: sets["model.width"] ** 2)
        ran += common.run_all(binary, line, line_plan, jobs=args.jobs, reuse=args.reuse,
                              cost=lambda sets: sets["model.width"] ** 2)

    # (a) the committee curves and the order-parameter ODE of the m = k run.
    curves, plateau = {}, {}
    for m in size["widths"]:
        risks = []
        for s in seeds:
            with open_run(runs / "committee" / f"m{m}_s{s}.h5") as run:
                obs = run.observables["population_risk"]
                t, risks = obs.time, risks + [obs.value]
        curves[m] = (t, np.array(risks))
    first = runs / "committee" / f"m{TEACHER_WIDTH}_s1.h5"
    t_ode, r_ode = saad_solla(first, 1.0 / dim)
    with open_run(first) as run:
        particle_risk = run.observables["population_risk"].value
    ode_error = float(np.max(np.abs(particle_risk - r_ode) / r_ode))
    for m, (t, risks) in curves.items():
        mean = risks.mean(0)
        plateau[m] = {"risk_t0": float(mean[0]), "risk_end": float(mean[-1]),
                      "escape_time": float(t[np.argmax(mean < mean[np.searchsorted(t, 100.0)] / 10)])
                      if np.any(mean < mean[np.searchsorted(t, 100.0)] / 10) else None}

    # (b, c) particles on the line against the reduced PDE.
    teacher = teacher_of(line_plan[0][0])
    reference, grid_error, line_curve = line_reference(teacher, size["grid"])
    widths = list(size["line_widths"])
    rms = {key: [] for key in (*LINE_OBSERVABLES, "combined")}
    line_runs = {}
    for m in widths:
        paths = [p for p, sets in line_plan if sets["model.width"] == m]
        values = [particle_observables(p, LINE_TIMES) for p in paths]
        squares = {key: np.array([v[key] - reference[key] for v in values]) ** 2 for key in LINE_OBSERVABLES}
        for key in LINE_OBSERVABLES:
            rms[key].append(float(np.sqrt(squares[key].mean())))
        rms["combined"].append(float(np.sqrt(np.mean([squares[key].mean() for key in LINE_OBSERVABLES]))))
        if m in (widths[0], widths[-1]):
            line_runs[m] = []
            for p in paths[:4]:
                with open_run(p) as run:
                    obs = run.observables["population_risk"]
                    line_runs[m].append((obs.time, obs.value))
    fit = fit_power_law(widths, rms["combined"])
    figure(args.out / "population_committee.png", {"curves": curves, "ode": (t_ode, r_ode)}, dim, line_curve,
           line_runs, np.array(widths), rms, fit)
    common.write_report(args.out / "population_committee.json", {
        "dim": dim, "teacher_width": TEACHER_WIDTH, "widths": list(size["widths"]), "seeds": size["seeds"],
        "t_end": size["t_end"], "dt": size["dt"], "plateau": plateau, "ode_max_relative_error": ode_error,
        "line_widths": widths, "line_seeds": list(size["line_seeds"]), "grid": size["grid"],
        "grid_error_max": max(float(np.max(e)) for e in grid_error.values()), "rms": rms, "fit": fit,
        "fits": {key: fit_power_law(widths, values) for key, values in rms.items()},
        "runs_made": ran, "run_seconds": round(timer.seconds, 1), "quick": args.quick})

    print(f"{ran} runs in {timer.seconds:.0f} s ({args.jobs} at once)")
    print(f"(a) d = {dim}, k = {TEACHER_WIDTH}: m = k particles against the Saad–Solla ODE, "
          f"max relative risk difference {ode_error:.1e}")
    for m, p in plateau.items():
        print(f"    m = {m:5d}: R(0) = {p['risk_t0']:.3e}, R(end) = {p['risk_end']:.3e}, escape (R below a tenth "
              f"of R(t = 100)) at t = {p['escape_time']}")
    print(f"(c) RMS particle error against the PDE (grid error ≤ {max(np.max(e) for e in grid_error.values()):.1e}):")
    for i, m in enumerate(widths):
        print(f"    m = {m:5d}: " + ", ".join(f"{key} {rms[key][i]:.2e}" for key in rms))
    print(f"    combined: slope of the RMS error in m {fit.describe()}")
    print(f"figure: {args.out / 'population_committee.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

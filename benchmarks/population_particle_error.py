#!/usr/bin/python3
"""mfsim's population flow at width m against the reduced mean-field PDE: the particle error
against m, and its power-law exponent.

    PYTHONPATH=analysis /usr/bin/python3 benchmarks/population_particle_error.py \
        [--widths 100 300 1000 3000 10000] [--seeds 32 32 32 16 8] [--grid 200]
        [--work DIR] [--build DIR] [--out FILE.md]

The case (MATH.md §2.8, "Reduction to the plane"): erf student and erf teacher f* = erf(s* x) in
d = 1 (data.seed = 4 gives s* = −1.4843), β = 1, i.i.d. initial particles (a, s) ~ N(0, 1)²,
RK4 at dt = 0.05 to t = 2. The reference is the finite-volume solution of the reduced PDE on
the box [−7, 7]², Richardson-extrapolated (order 2) from the N² and (2N)² grids; the scheme's
order is measured from the (N/2)², N² and (2N)² grids, and the reference's own error is estimated
as the difference to the extrapolation from the (N/2)² and N² grids (an estimate of the coarser
extrapolation's error, so an upper estimate of the finer one's).

For each width, every seed's particles give the observables that are functionals of ρ
(population_risk, E a², E s², E a s) at t = 0.5, 1, 2; the error at width m is the root mean
square over the seeds (and, for the combined figure, over the observables and times) of the
difference to the PDE. Its exponent in m is fitted by least squares on log–log axes. mfsim runs
are kept in DIR (default /tmp/population_particle_error) and reused.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis"))
from mfsim_analysis.fit import fit_power_law  # noqa: E402
from mfsim_analysis import reduced_pde  # noqa: E402
from mfsim_analysis.reduced_pde import ERF, Grid, ReducedFlow, line_config  # noqa: E402
from mfsim_analysis.reduced_pde import LINE_HALF_WIDTH as HALF_WIDTH  # noqa: E402
from mfsim_analysis.reduced_pde import LINE_OBSERVABLES as OBSERVABLES  # noqa: E402
from mfsim_analysis.reduced_pde import LINE_TIMES as TIMES  # noqa: E402



def run_particles(mfsim: Path, work: Path, m: int, seed: int, dt: float = 0.05) -> Path:
    """The mfsim run of width m and init seed (reused when its file exists); mfsim's own wall time
    goes to a .seconds file beside it."""
    out = work / f"m{m}_seed{seed}_dt{dt:g}.h5"
    if not out.exists():
        config = work / f"m{m}_seed{seed}_dt{dt:g}.toml"
        config.write_text(line_config(m, seed, dt=dt, every=round(0.5 / dt)))
        partial = out.with_suffix(".partial.h5")
        result = subprocess.run([str(mfsim), "run", str(config), "-o", str(partial), "--force", "-q"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mfsim failed on {config}: {result.stderr.strip()}")
        wall = re.search(r"wall time ([0-9.eE+-]+) s", result.stdout + result.stderr)
        if wall:
            out.with_suffix(".seconds").write_text(wall.group(1) + "\n")
        partial.rename(out)
    return out


def run_seconds(path: Path) -> float:
    """mfsim's wall time of a run, NaN where it was not recorded."""
    seconds = path.with_suffix(".seconds")
    return float(seconds.read_text()) if seconds.exists() else float("nan")


def particle_observables(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The observables of one run at TIMES, and its teacher."""
    values = reduced_pde.particle_observables(path, TIMES)
    return {key: values[key] for key in OBSERVABLES}, reduced_pde.teacher_of(path)


def pde_observables(teacher: dict, n: int) -> tuple[dict[str, np.ndarray], float, float, int]:
    """The reduced PDE's observables at TIMES on the n × n grid, its edge mass, seconds and steps."""
    grid = Grid(n, n, HALF_WIDTH, HALF_WIDTH)
    flow = ReducedFlow(ERF, beta=1.0, **teacher)
    start = time.perf_counter()
    solution = flow.solve(grid, grid.gaussian(1.0, 1.0), TIMES)
    seconds = time.perf_counter() - start
    return ({key: solution.observables[key] for key in OBSERVABLES},
            float(solution.boundary_mass.max()), seconds, solution.steps)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    p.add_argument("--seeds", type=int, nargs="+", default=[32, 32, 32, 16, 8])
    p.add_argument("--grid", type=int, default=200, help="N: grids N/2, N and 2N are solved")
    p.add_argument("--work", type=Path, default=Path("/tmp/population_particle_error"))
    p.add_argument("--build", type=Path, default=ROOT / "build")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if len(args.seeds) != len(args.widths):
        p.error("--seeds needs one count per width")
    mfsim = args.build / "simulations" / "mfsim"
    args.work.mkdir(parents=True, exist_ok=True)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    # Particles first (the PDE needs the teacher the runs wrote).
    # Distinct init seeds per width: mfsim draws particle k from (seed, k) alone, so one seed at
    # two widths would give nested particle sets and correlated errors; the least-squares
    # interval of the exponent assumes independent widths. The widest width takes seeds 1 … S.
    def init_seed(m, s):
        return s + 1000 * sorted(args.widths, reverse=True).index(m)

    particle, seconds_per_run, initial_ratio = {}, {}, {}
    for m, count in zip(args.widths, args.seeds):
        paths = [run_particles(mfsim, args.work, m, init_seed(m, seed)) for seed in range(1, count + 1)]
        particle[m] = [particle_observables(path)[0] for path in paths]
        # The seeds' luck: E a² at t = 0 is the mean of m squares of N(0, 1), of standard deviation
        # √(2/m); the ratio of their RMS error to it is 1 in expectation.
        initial = np.array([reduced_pde.particle_observables(path, (0.0,))["mean_a2"][0] for path in paths])
        initial_ratio[m] = float(np.sqrt(np.mean((initial - 1) ** 2)) / np.sqrt(2 / m))
        seconds_per_run[m] = float(np.nanmean([run_seconds(path) for path in paths]))
    _, teacher = particle_observables(run_particles(mfsim, args.work, args.widths[0],
                                                    init_seed(args.widths[0], 1)))
    # The particles' time-step error: dt = 0.05 against 0.025 at one width and seed.
    m_check = 1000 if 1000 in args.widths else args.widths[0]
    seed_check = init_seed(m_check, 1)
    coarse_dt = particle_observables(run_particles(mfsim, args.work, m_check, seed_check))[0]
    fine_dt = particle_observables(run_particles(mfsim, args.work, m_check, seed_check, dt=0.025))[0]
    time_step_error = max(float(np.max(np.abs(coarse_dt[key] - fine_dt[key]))) for key in OBSERVABLES)

    # The reference: three grids, the observed order, Richardson extrapolation.
    n = args.grid
    grids = {}
    for size in (n // 2, n, 2 * n):
        grids[size] = pde_observables(teacher, size)
    coarse, mid, fine = (grids[size][0] for size in (n // 2, n, 2 * n))
    say(f"Reduced PDE (erf, d = 1, s* = {teacher['teacher_s'][0]:.6f}, box [−{HALF_WIDTH:g}, {HALF_WIDTH:g}]², "
        f"MUSCL–MC + SSP-RK3, CFL 0.4)")
    say()
    say("| grid | steps | seconds | mass in the outer two cells (max over t) |")
    say("|---|---|---|---|")
    for size, (_, edge, seconds, steps) in grids.items():
        say(f"| {size} × {size} | {steps} | {seconds:.1f} | {edge:.1e} |")
    say()
    say("| observable | t | N/2 → N | N → 2N | order | Richardson value | its error estimate |")
    say("|---|---|---|---|---|---|---|")
    reference, grid_error = {}, {}
    for key in OBSERVABLES:
        d1, d2 = mid[key] - coarse[key], fine[key] - mid[key]
        order = np.log2(np.abs(d1) / np.abs(d2))
        reference[key] = fine[key] + d2 / 3
        grid_error[key] = np.abs(reference[key] - (mid[key] + d1 / 3))
        for i, t in enumerate(TIMES):
            say(f"| {key} | {t:g} | {d1[i]:+.2e} | {d2[i]:+.2e} | {order[i]:.2f} | "
                f"{reference[key][i]:.8f} | {grid_error[key][i]:.1e} |")
    say()

    # Particle errors: RMS over the seeds, per observable and combined.
    say("Particles (mfsim, RK4, dt = 0.05): root-mean-square error over the seeds against the PDE")
    say()
    header = "| m | seeds | s per run | " + " | ".join(OBSERVABLES) + " | combined | t = 0: E a² error / √(2/m) |"
    say(header)
    say("|---" * (len(OBSERVABLES) + 5) + "|")
    rms = {key: [] for key in (*OBSERVABLES, "combined")}
    for m in args.widths:
        runs = particle[m]
        per = {}
        for key in OBSERVABLES:
            errors = np.array([run[key] - reference[key] for run in runs])  # seeds × times
            per[key] = float(np.sqrt(np.mean(errors**2)))
            rms[key].append(per[key])
        combined = float(np.sqrt(np.mean([np.mean(np.array([run[key] - reference[key] for run in runs])**2)
                                          for key in OBSERVABLES])))
        rms["combined"].append(combined)
        say(f"| {m} | {len(runs)} | {seconds_per_run[m]:.1f} | " +
            " | ".join(f"{per[key]:.2e}" for key in OBSERVABLES) + f" | {combined:.2e} | {initial_ratio[m]:.2f} |")
    say()
    smallest = min(min(values) for key, values in rms.items() if key != "combined")
    largest_grid = max(float(np.max(v)) for v in grid_error.values())
    say(f"Particles' time-step error (RK4, dt = 0.05 against 0.025, m = {m_check}, seed 1, largest "
        f"over the observables and times): {time_step_error:.1e}.")
    say("Init seeds: width k from the widest takes seeds 1000k + 1 … 1000k + S (independent widths).")
    say(f"Largest grid error estimate {largest_grid:.1e} against the smallest particle error "
        f"{smallest:.1e} (ratio {smallest / largest_grid:.0f}).")
    say()
    say("| observable | fitted exponent of the RMS error in m | ± s.e. | 95 % CI | R² |")
    say("|---|---|---|---|---|")
    for key, values in rms.items():
        fit = fit_power_law(args.widths, values)
        say(f"| {key} | {fit.slope:+.3f} | {fit.stderr:.3f} | [{fit.ci[0]:+.3f}, {fit.ci[1]:+.3f}] | "
            f"{fit.r2:.4f} |")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""The command line: plot, summary, sweep, launch. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .run import NotAnMfsimFile, open_run
from .curves import BANDS
from .sweep import ERRORS, STATS

PROG = "mfsim_analysis"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (like the mfsim binary)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Plots and tables from mfsim's H5MD output files.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plot = sub.add_parser("plot", help="PNG dashboard per run (+ overlay of several runs, particle views)")
    plot.add_argument("files", nargs="+", metavar="RUN.h5")
    plot.add_argument("-o", "--output", default="plots", metavar="DIR", help="output folder (default: plots)")
    plot.add_argument("--frames", type=int, default=4, help="frames shown in the particle views (default 4)")
    plot.add_argument("--coords", metavar="X,Y",
                      help="scatter coordinates: column names or block norms, e.g. a,w_1 or '|u|,|w|'")
    plot.add_argument("--group", action="append", help="only this particle group (repeatable)")
    plot.add_argument("--no-particles", action="store_true", help="observables only")
    plot.add_argument("--all-points", action="store_true",
                      help="particle views: axes that show every point (default: clipped to the 0.5-99.5 percentiles)")
    plot.add_argument("--dpi", type=int, default=110)
    plot.add_argument("--time-scale", metavar="EXPR",
                      help="overlay: each run's time times this expression of its config, e.g. beta^2")

    summary = sub.add_parser("summary", help="final observables, particle groups, parameters and config")
    summary.add_argument("file", metavar="RUN.h5")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sweep = sub.add_parser("sweep", help="a quantity across runs: table, error bars, log-log slope fits with CIs",
                           description="A quantity across runs (files, or folders written by launch), with "
                                       "error bars and, with --fit power, a log-log power-law fit per curve.")
    sweep.add_argument("files", nargs="+", metavar="RUN.h5|DIR",
                       help="run files, or folders (their index.json's runs, else every *.h5 below)")
    sweep.add_argument("--x", required=True, metavar="KEY", help="config key or quantity, e.g. model.width")
    sweep.add_argument("--y", required=True, action="append", metavar="QUANTITY",
                       help="final:test_loss, min:loss, t=2:loss, a config key, or an expression of them: "
                            "'gram_lambda_min/ntk_lambda0', 'test_loss-loss' (repeatable)")
    sweep.add_argument("--hue", metavar="KEY", help="one curve per value of this key (e.g. model.depth)")
    sweep.add_argument("--stat", choices=STATS, default="none",
                       help="aggregate the runs sharing (hue, x), e.g. seeds: mean, median or std")
    sweep.add_argument("--err", choices=ERRORS,
                       help="error bars of --stat mean: sem (default: ± 1 standard error), bootstrap "
                            "(percentile CI at --level), std, none; --stat median: bootstrap (default) or none")
    sweep.add_argument("--level", type=float, default=0.95, help="confidence level of slopes and bootstrap (0.95)")
    sweep.add_argument("--fit-range", metavar="LO,HI", help="fit only the points with LO <= x <= HI")
    sweep.add_argument("--fit", choices=("none", "power"), default="none",
                       help="power: fit y = C x^slope per curve (slope with its CI and R²); default none")
    sweep.add_argument("--no-fit", action="store_true", help="no fit (the default; overrides --fit)")
    sweep.add_argument("--past-end", choices=("error", "exclude"), default="error",
                       help="a t=T quantity past a run's end: an error naming the run (default), or "
                            "exclude: leave such runs out with a warning")
    sweep.add_argument("--xscale", choices=("log", "linear", "symlog"), help="default log if every x > 0")
    sweep.add_argument("--yscale", choices=("log", "linear", "symlog"), help="default log if every y > 0")
    sweep.add_argument("-o", "--output", metavar="DIR", help="also write the plot sweep_<y>_vs_<x>.png here")
    sweep.add_argument("--json", action="store_true", help="print JSON instead of a table")

    curves = sub.add_parser("curves", help="observables against time: mean and band over the seeds of each group",
                            description="Observables against flow time, one curve per value of --group "
                                        "(e.g. model.width): the mean over the runs sharing that value "
                                        "(their seeds) with a band, on a common time grid.")
    curves.add_argument("files", nargs="+", metavar="RUN.h5|DIR",
                        help="run files, or folders (their index.json's runs, else every *.h5 below)")
    curves.add_argument("--y", required=True, action="append", metavar="OBS",
                        help="an observable, e.g. loss (repeatable: one panel each)")
    curves.add_argument("--group", required=True, metavar="KEY",
                        help="one curve per value of this config key (e.g. model.width, or width)")
    curves.add_argument("--band", choices=BANDS, default="se",
                        help="se: ± 1 standard error (default); ci95: 95%% Student-t CI of the mean; "
                             "range: min to max; none")
    curves.add_argument("--time-scale", metavar="EXPR",
                        help="multiply each run's time by this expression of its config, e.g. beta^2")
    curves.add_argument("--xscale", choices=("linear", "log"), default="linear")
    curves.add_argument("--yscale", choices=("linear", "log", "symlog"),
                        help="default: log for losses and KLs, and for positive values spanning > 2 decades")
    curves.add_argument("-o", "--output", default="plots", metavar="DIR",
                        help="write DIR/curves_<y>_by_<key>.png (default: plots)")
    curves.add_argument("--dpi", type=int, default=110)
    curves.add_argument("--json", action="store_true", help="also print the curves as JSON")

    launch = sub.add_parser("launch", help="run a grid of mfsim runs from one config (parallel, resumable)",
                            description="Runs `mfsim run CONFIG --set ...` for every point of the --grid "
                                        "product (and of init.seed = 1..K), --jobs at a time; skips a run "
                                        "whose file holds the same resolved config and finished; writes "
                                        "DIR/index.json.")
    launch.add_argument("config", metavar="CONFIG.toml")
    launch.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="values of a config key (repeatable: the product of all)")
    launch.add_argument("--link", action="append", default=[], metavar="KEY=GRID_KEY",
                        help="KEY takes GRID_KEY's value in each run, e.g. model.head_width=model.width "
                             "(repeatable; not part of the file names)")
    launch.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every run, not part of the file names (repeatable)")
    launch.add_argument("--seeds", type=int, default=0, metavar="K", help="also init.seed = 1..K")
    launch.add_argument("--seed-key", default="init.seed", metavar="KEY", help="the key --seeds sets (init.seed)")
    launch.add_argument("--jobs", type=int, default=2, help="mfsim processes at once (default 2)")
    launch.add_argument("-o", "--output", required=True, metavar="DIR", help="DIR/runs/*.h5 and DIR/index.json")
    launch.add_argument("--mfsim", metavar="PATH", help="the binary ($MFSIM_EXECUTABLE, build/simulations/mfsim, PATH)")
    launch.add_argument("--force", action="store_true", help="rerun every run, even those up to date")
    launch.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    launch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", text).strip("_")


def _plot(args) -> int:
    from .plots import write_plots

    coords = tuple(args.coords.split(",")) if args.coords else None
    if coords is not None and len(coords) != 2:
        raise ValueError(f"--coords needs two names separated by a comma (got {args.coords!r})")
    runs = [open_run(f) for f in args.files]
    for path in write_plots(runs, args.output, particles=not args.no_particles, frames=args.frames,
                            coords=coords, groups=args.group, dpi=args.dpi, clip=not args.all_points,
                            time_scale=args.time_scale):
        print(path)
    return 0


def _summary(args) -> int:
    from .summary import format_summary, summarize

    with open_run(args.file) as run:
        s = summarize(run)
    print(json.dumps(s, indent=2, default=str) if args.json else format_summary(s))
    return 0


def _run_files(paths) -> list[str]:
    from .launch import index_files

    files: list[str] = []
    for p in paths:
        if Path(p).is_dir():
            found = index_files(p)
            if not found:
                raise ValueError(f"{p}: no runs (no index.json runs and no *.h5 files)")
            files += [str(f) for f in found]
        else:
            files.append(str(p))
    return files


def _sweep(args) -> int:
    from .sweep import format_sweep, plot_sweep, sweep

    fit_range = None
    if args.fit_range:
        try:
            lo, hi = (float(v) for v in args.fit_range.split(","))
        except ValueError:
            raise ValueError(f"--fit-range needs LO,HI (got {args.fit_range!r})") from None
        fit_range = (lo, hi)
    runs = [open_run(f) for f in _run_files(args.files)]
    s = sweep(runs, args.x, args.y, hue=args.hue, stat=args.stat, err=args.err,
              fit=args.fit == "power" and not args.no_fit, level=args.level, fit_range=fit_range,
              past_end=args.past_end)
    plot_path = None
    if args.output:
        numeric = all(isinstance(r["x"], (int, float)) for r in s.rows)
        if not numeric:
            raise ValueError(f"--x {args.x}: cannot plot non-numeric values")
        Path(args.output).mkdir(parents=True, exist_ok=True)
        plot_path = Path(args.output) / file_name("sweep", args.y, "vs", args.x)
        plot_sweep(s, plot_path, xscale=args.xscale, yscale=args.yscale)
    for w in s.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({"x": s.x, "y": s.ys, "hue": s.hue, "stat": s.stat, "err": s.err, "level": s.level,
                          "rows": s.rows, "fits": {k: f.as_dict() for k, f in s.fits.items()},
                          "fit_errors": s.fit_errors, "warnings": s.warnings,
                          "plot": str(plot_path) if plot_path else None},
                         indent=2, default=str))
    else:
        print(format_sweep(s))
        if plot_path:
            print(f"plot: {plot_path}")
    return 0


def file_name(prefix: str, ys, joiner: str, key: str) -> str:
    """A short PNG name: the quantities without their KIND: prefixes and the last part of the
    dotted key (curves_loss_by_width.png); a stem over 60 characters is cut and made unique."""
    import hashlib

    bare = [_slug(re.sub(r"(?:final|initial|min|max|mean|t=[^:]*):", "", y)) for y in ys]
    stem = f"{prefix}_{'_'.join(dict.fromkeys(bare))}_{joiner}_{_slug(key.rsplit('.', 1)[-1])}"
    if len(stem) > 60:
        digest = hashlib.sha1(f"{ys}{key}".encode()).hexdigest()[:6]
        stem = f"{stem[:53]}_{digest}"
    return stem + ".png"


def _curves(args) -> int:
    from .curves import curves

    runs = [open_run(f) for f in _run_files(args.files)]
    c = curves(runs, args.y, args.group, band=args.band, time_scale=args.time_scale)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    path = Path(args.output) / file_name("curves", args.y, "by", args.group)
    c.plot(path, xscale=args.xscale, yscale=args.yscale, dpi=args.dpi)
    for w in c.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({"y": c.ys, "group": c.group, "band": c.band, "time_scale": c.time_scale,
                          "groups": [g.as_dict() for g in c.groups], "warnings": c.warnings, "plot": str(path)},
                         default=str))
    else:
        for g in c.groups:
            print(f"{c.group}={g.value}: {g.runs} run{'s' if g.runs != 1 else ''}, "
                  f"{g.time.size} times in [{g.time[0]:g}, {g.time[-1]:g}]")
        print(f"plot: {path}")
    return 0


def _launch(args) -> int:
    from .launch import Plan, parse_grid, parse_link, parse_value, run_plan, toml_value

    grid = parse_grid(args.grid)
    link = parse_link(args.link)
    fixed = {}
    for spec in args.set:
        key, sep, value = spec.partition("=")
        if not sep:
            raise ValueError(f"--set {spec!r}: expected KEY=VALUE")
        fixed[key.strip()] = parse_value(value)
    if args.seeds < 0 or args.jobs < 1:
        raise ValueError("--seeds must be >= 0 and --jobs >= 1")
    plan = Plan.grid(args.config, grid, seeds=args.seeds, seed_key=args.seed_key, fixed=fixed, link=link,
                     out=args.output)
    if args.dry_run:
        for r in plan.runs:
            print(f"{r.path}  " + " ".join(f"{k}={toml_value(v)}" for k, v in r.overrides.items()))
        return 0
    results = run_plan(plan, binary=args.mfsim, jobs=args.jobs, reuse=not args.force, progress=not args.quiet)
    counts = {k: sum(r.status == k for r in results) for k in ("ran", "skipped", "failed")}
    print(f"{len(results)} runs: {counts['ran']} ran, {counts['skipped']} skipped (up to date), "
          f"{counts['failed']} failed; index: {Path(args.output) / 'index.json'}")
    for r in results:
        if r.status == "failed":
            print(f"failed: {r.path}: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"plot": _plot, "summary": _summary, "sweep": _sweep, "curves": _curves,
               "launch": _launch}[args.command]
    try:
        return command(args)
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (NotAnMfsimFile, KeyError, ValueError, IndexError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. a file that kept changing under every read
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1

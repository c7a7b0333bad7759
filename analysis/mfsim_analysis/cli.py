"""The command line: plot, summary, sweep. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .run import NotAnMfsimFile, open_run

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
    plot.add_argument("--dpi", type=int, default=110)

    summary = sub.add_parser("summary", help="final observables, particle groups, parameters and config")
    summary.add_argument("file", metavar="RUN.h5")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sweep = sub.add_parser("sweep", help="a quantity across runs, with a log-log power-law fit")
    sweep.add_argument("files", nargs="+", metavar="RUN.h5")
    sweep.add_argument("--x", required=True, metavar="KEY", help="config key or quantity, e.g. model.width")
    sweep.add_argument("--y", required=True, action="append", metavar="QUANTITY",
                       help="e.g. final:test_loss, min:loss, t=2:loss, or a config key (repeatable)")
    sweep.add_argument("--stat", choices=("none", "mean", "std"), default="none",
                       help="aggregate the runs sharing an x value (e.g. seeds): their mean or std")
    sweep.add_argument("--level", type=float, default=0.95, help="confidence level of the slope (0.95)")
    sweep.add_argument("--no-fit", action="store_true")
    sweep.add_argument("-o", "--output", metavar="DIR", help="also write the plot sweep_<y>_vs_<x>.png here")
    sweep.add_argument("--json", action="store_true", help="print JSON instead of a table")
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
                            coords=coords, groups=args.group, dpi=args.dpi):
        print(path)
    return 0


def _summary(args) -> int:
    from .summary import format_summary, summarize

    with open_run(args.file) as run:
        s = summarize(run)
    print(json.dumps(s, indent=2, default=str) if args.json else format_summary(s))
    return 0


def _sweep(args) -> int:
    from .sweep import format_sweep, plot_sweep, sweep

    runs = [open_run(f) for f in args.files]
    s = sweep(runs, args.x, args.y, stat=args.stat, fit=not args.no_fit, level=args.level)
    plot_path = None
    if args.output:
        numeric = all(isinstance(r["x"], (int, float)) for r in s.rows)
        if not numeric:
            raise ValueError(f"--x {args.x}: cannot plot non-numeric values on a log axis")
        Path(args.output).mkdir(parents=True, exist_ok=True)
        plot_path = Path(args.output) / f"sweep_{_slug('_'.join(args.y))}_vs_{_slug(args.x)}.png"
        plot_sweep(s, plot_path)
    if args.json:
        print(json.dumps({"x": s.x, "y": s.ys, "stat": s.stat, "rows": s.rows,
                          "fits": {y: f.as_dict() for y, f in s.fits.items()}, "fit_errors": s.fit_errors,
                          "plot": str(plot_path) if plot_path else None}, indent=2, default=str))
    else:
        print(format_sweep(s))
        if plot_path:
            print(f"plot: {plot_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"plot": _plot, "summary": _summary, "sweep": _sweep}[args.command]
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

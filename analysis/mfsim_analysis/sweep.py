"""`sweep FILES... --x KEY --y QUANTITY`: one row per run (or per x value), and a log–log fit.

A quantity is a config key or /parameters attribute ("model.width", "raw_learning_rate"), or
KIND:OBSERVABLE with KIND one of final, initial, min, max, mean, or t=T (the value observed at
the flow time closest to T): "final:test_loss", "t=2:loss".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fit import PowerLawFit, fit_power_law
from .run import Run

__all__ = ["quantity", "Sweep", "sweep", "format_sweep", "plot_sweep", "STATS"]

_REDUCERS: dict[str, Callable[[np.ndarray], float]] = {
    "final": lambda v: v[-1], "initial": lambda v: v[0], "min": np.min, "max": np.max, "mean": np.mean,
}

STATS = ("none", "mean", "std")


def quantity(spec: str) -> Callable[[Run], Any]:
    """The function run -> value that a quantity spec names (see the module docstring)."""
    match = re.fullmatch(r"(final|initial|min|max|mean|t=([^:]+)):(.+)", spec)
    if not match:
        return lambda run: run.get(spec)
    kind, at, name = match.groups()
    if at is not None:
        try:
            t = float(at)
        except ValueError:
            raise ValueError(f"{spec}: t=T needs a number (got {at!r})") from None

    def value(run: Run) -> float:
        if name not in run.observables:
            raise KeyError(f"{run.path}: no observable {name!r}")
        obs = run.observables[name]
        if len(obs) == 0:
            raise KeyError(f"{run.path}: observable {name!r} has no complete row yet")
        v = obs.value.astype(float)
        if v.ndim != 1:
            raise ValueError(f"{run.path}: observable {name!r} is not a scalar series")
        return float(obs.at_time(t)) if at is not None else float(_REDUCERS[kind](v))

    return value


@dataclass
class Sweep:
    x: str
    ys: list[str]
    stat: str
    rows: list[dict[str, Any]]  # {"x", y..., "file" or "runs"}
    fits: dict[str, PowerLawFit] = field(default_factory=dict)
    fit_errors: dict[str, str] = field(default_factory=dict)


def sweep(runs: Sequence[Run], x: str, ys: Sequence[str], *, stat: str = "none", fit: bool = True,
          level: float = 0.95) -> Sweep:
    """Evaluates the quantities on every run; with stat mean or std, aggregates the runs that share
    an x value (e.g. seeds) into one row; then fits y ≈ C·x^slope on log–log axes for each y."""
    if stat not in STATS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} (got {stat!r})")
    fx, fys = quantity(x), [quantity(y) for y in ys]
    points = [{"x": fx(r), **{y: f(r) for y, f in zip(ys, fys)}, "file": r.path} for r in runs]
    points.sort(key=lambda p: (_sort_key(p["x"]), p["file"]))
    if stat == "none":
        rows = points
    else:
        rows = []
        for xv in dict.fromkeys(p["x"] for p in points):
            group = [p for p in points if p["x"] == xv]
            row: dict[str, Any] = {"x": xv, "runs": len(group)}
            for y in ys:
                v = np.asarray([p[y] for p in group], dtype=float)
                row[y] = float(v.mean()) if stat == "mean" else float(v.std(ddof=1)) if v.size > 1 else float("nan")
            rows.append(row)
    result = Sweep(x, list(ys), stat, rows)
    if fit:
        for y in ys:
            try:
                result.fits[y] = fit_power_law([r["x"] for r in rows], [r[y] for r in rows], level)
            except (ValueError, TypeError) as e:
                result.fit_errors[y] = str(e)
    return result


def _sort_key(v: Any) -> tuple:
    return (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))


def _column(y: str, stat: str) -> str:
    return y if stat == "none" else f"{stat}({y})"


def format_sweep(s: Sweep) -> str:
    header = [s.x] + [_column(y, s.stat) for y in s.ys] + (["file"] if s.stat == "none" else ["runs"])
    rows = []
    for r in s.rows:
        cells = [_cell(r["x"])] + [_cell(r[y]) for y in s.ys]
        cells.append(r["file"] if s.stat == "none" else str(r["runs"]))
        rows.append(cells)
    widths = [max(len(c[j]) for c in [header] + rows) for j in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    for y in s.ys:
        if y in s.fits:
            lines.append(f"fit {_column(y, s.stat)} ~ {s.x}^slope: {s.fits[y].describe()}")
        elif y in s.fit_errors:
            lines.append(f"no fit for {_column(y, s.stat)}: {s.fit_errors[y]}")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def plot_sweep(s: Sweep, path) -> None:
    """A log–log plot of the rows with each fitted power law."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, y in enumerate(s.ys):
        xs = np.asarray([r["x"] for r in s.rows], dtype=float)
        vs = np.asarray([r[y] for r in s.rows], dtype=float)
        ax.plot(xs, vs, "o", color=f"C{i}", label=_column(y, s.stat))
        if y in s.fits:
            f = s.fits[y]
            grid = np.geomspace(xs[xs > 0].min(), xs.max(), 50)
            ax.plot(grid, f(grid), "-", color=f"C{i}", alpha=0.7,
                    label=f"slope {f.slope:+.3f}, {100 * f.level:g}% CI [{f.ci[0]:+.3f}, {f.ci[1]:+.3f}]")
    ax.set(xscale="log", yscale="log", xlabel=s.x, ylabel=", ".join(_column(y, s.stat) for y in s.ys))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

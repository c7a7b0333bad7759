"""`sweep FILES|DIR --x KEY --y QUANTITY [--hue KEY] [--stat mean]`: a quantity across runs, with
error bars and, on request (fit=True, `--fit power`), a log–log power-law fit (slope with its
confidence interval and R²) per curve.

A quantity is
  * a config key or /parameters attribute: "model.width", "ntk_lambda0", "raw_learning_rate"; a
    key without its section when no other section has it ("beta" is model.beta);
  * KIND:OBSERVABLE with KIND one of final, initial, min, max, mean, or t=T (the value observed
    at the flow time closest to T): "final:test_loss", "t=2:loss"; a bare observable name is its
    final value ("test_loss" = "final:test_loss");
  * an arithmetic expression of those: + − * / ** (or ^) and log, log10, exp, sqrt, abs:
    "gram_lambda_min/ntk_lambda0", "test_loss-loss", "min:gram_lambda_min/(model.beta**2*ntk_lambda0)".

With --stat mean (or median), the runs sharing (hue, x) (e.g. seeds) become one point whose error
bar is the standard error of the mean (--err sem, the default), a percentile bootstrap confidence
interval at --level (--err bootstrap), the standard deviation (--err std) or none.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fit import PowerLawFit, fit_power_law
from .run import Run

__all__ = ["quantity", "PastEnd", "Sweep", "sweep", "format_sweep", "plot_sweep", "STATS", "ERRORS", "bootstrap_ci"]

_REDUCERS: dict[str, Callable[[np.ndarray], float]] = {
    "final": lambda v: v[-1], "initial": lambda v: v[0], "min": np.min, "max": np.max, "mean": np.mean,
}
_FUNCTIONS: dict[str, Callable] = {"log": np.log, "log10": np.log10, "exp": np.exp, "sqrt": np.sqrt, "abs": abs}

STATS = ("none", "mean", "median", "std")
FEW_RUNS = 3  # error bars from fewer runs are flagged
ERRORS = ("sem", "bootstrap", "std", "none")

_KIND = r"(?:final|initial|min|max|mean|t=[^:\s]*?):"
_ATOM = re.compile(rf"(?:{_KIND})?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Add,
            ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def _atom(spec: str) -> Callable[[Run], Any]:
    """One name: KIND:OBSERVABLE, a dotted config key, or an undotted observable (final value)
    or /parameters attribute."""
    match = re.fullmatch(r"(final|initial|min|max|mean|t=([^:]*)):(.+)", spec)
    if not match:
        if "." in spec:
            return lambda run: run.get(spec)

        def bare(run: Run) -> Any:
            if spec in run.observables:
                return _observable(run, spec, "final", None)
            try:
                return run.get(spec)
            except KeyError:
                pass
            # A key of one config section, without its section: "beta" is model.beta.
            matches = [k for k in run.flat_config() if k.rsplit(".", 1)[-1] == spec]
            if len(matches) == 1:
                return run.get(matches[0])
            if matches:
                raise KeyError(f"{run.path}: {spec!r} is ambiguous ({', '.join(matches)}): name the section")
            hint = " (against flow time: mfsim-analysis curves)" if spec in ("t", "time") else ""
            raise KeyError(f"{run.path}: no observable, config key or parameter {spec!r}{hint}")

        return bare
    kind, at, name = match.groups()
    t = None
    if at is not None:
        try:
            t = float(at)
        except ValueError:
            raise ValueError(f"{spec}: t=T needs a number (got {at!r})") from None
    return lambda run: _observable(run, name, kind, t)


class PastEnd(ValueError):
    """t=T asks for a time after the run's last observation."""


def _observable(run: Run, name: str, kind: str, t: float | None) -> float:
    if name not in run.observables:
        raise KeyError(f"{run.path}: no observable {name!r}")
    obs = run.observables[name]
    if len(obs) == 0:
        raise KeyError(f"{run.path}: observable {name!r} has no complete row yet")
    v = obs.value.astype(float)
    if v.ndim != 1:
        raise ValueError(f"{run.path}: observable {name!r} is not a scalar series")
    if t is not None and t > obs.time[-1] * (1 + 1e-9) + 1e-12:
        raise PastEnd(f"{run.path}: t={t:g}:{name} is past the run's end (its last {name} is at "
                      f"t = {obs.time[-1]:g}); --past-end exclude leaves such runs out")
    return float(obs.at_time(t)) if t is not None else float(_REDUCERS[kind](v))


def quantity(spec: str) -> Callable[[Run], Any]:
    """The function run -> value that a quantity spec names (see the module docstring)."""
    spec = spec.strip().replace("^", "**")
    if _ATOM.fullmatch(spec):
        return _atom(spec)
    # An expression: the names become variables v0, v1, ...; the rest must be arithmetic.
    names: list[str] = []
    pieces: list[str] = []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch.isspace() or ch in "+-*/()":
            pieces.append(ch)
            i += 1
            continue
        number = _NUMBER.match(spec, i)
        if number:
            pieces.append(number.group())
            i = number.end()
            continue
        atom = _ATOM.match(spec, i)
        if not atom:
            bad = re.match(r"t=([^:]*):", spec[i:])
            if bad:
                raise ValueError(f"{spec}: t=T needs a number (got {bad.group(1)!r})")
            raise ValueError(f"{spec}: cannot read {spec[i:]!r} (a quantity is a name, KIND:NAME, or "
                             "+ - * / ** of them)")
        text = atom.group()
        following = spec[atom.end():].lstrip()
        if text in _FUNCTIONS and following.startswith("("):
            pieces.append(f"_f_{text}")
        else:
            if text not in names:
                names.append(text)
            pieces.append(f"v{names.index(text)}")
        i = atom.end()
    source = "".join(pieces)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ValueError(f"{spec}: not an arithmetic expression") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED) or isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id.startswith("_f_") and len(node.args) == 1):
            raise ValueError(f"{spec}: only + - * / ** and {', '.join(_FUNCTIONS)} are allowed")
    code = compile(tree, spec, "eval")
    getters = [_atom(n) for n in names]
    functions = {f"_f_{k}": f for k, f in _FUNCTIONS.items()}

    def value(run: Run) -> float:
        env = {f"v{j}": float(g(run)) for j, g in enumerate(getters)}
        with np.errstate(all="ignore"):
            try:
                return float(eval(code, {"__builtins__": {}}, {**functions, **env}))  # noqa: S307 (checked AST)
            except ZeroDivisionError:
                return float("nan")

    return value


def bootstrap_ci(values: np.ndarray, level: float = 0.95, *, statistic=np.mean, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` at `level` (fixed seed: reproducible)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = statistic(v[rng.integers(0, v.size, size=(resamples, v.size))], axis=1)
    lo, hi = np.quantile(stats, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


@dataclass
class Sweep:
    x: str
    ys: list[str]
    stat: str
    rows: list[dict[str, Any]]  # {"x", ["hue"], y..., "file"} or {..., "runs", "<y>:lo", "<y>:hi"}
    fits: dict[str, PowerLawFit] = field(default_factory=dict)  # by curve label (see curve_label)
    fit_errors: dict[str, str] = field(default_factory=dict)
    hue: str | None = None
    err: str = "none"
    level: float = 0.95
    fit_range: tuple[float, float] | None = None
    warnings: list[str] = field(default_factory=list)

    def few_runs(self) -> list[dict[str, Any]]:
        """The aggregated rows whose error bar comes from fewer than FEW_RUNS runs."""
        if self.stat == "none" or self.err == "none":
            return []
        return [r for r in self.rows if r["runs"] < FEW_RUNS]

    def curves(self) -> list[tuple[str, Any, list[dict[str, Any]]]]:
        """(y, hue value, rows) per curve, hue values in order."""
        hues = list(dict.fromkeys(r.get("hue") for r in self.rows))
        return [(y, h, [r for r in self.rows if r.get("hue") == h]) for y in self.ys for h in hues]

    def curve_key(self, y: str, hue_value: Any = None) -> str:
        """The key of a curve in fits and fit_errors: y, or "y | HUE=VALUE"."""
        return y if self.hue is None else f"{y} | {self.hue}={_cell(hue_value)}"

    def curve_label(self, y: str, hue_value: Any = None) -> str:
        column = _column(y, self.stat)
        return column if self.hue is None else f"{column} | {self.hue}={_cell(hue_value)}"


def sweep(runs: Sequence[Run], x: str, ys: Sequence[str], *, hue: str | None = None, stat: str = "none",
          err: str | None = None, fit: bool = False, level: float = 0.95,
          fit_range: tuple[float, float] | None = None, past_end: str = "error") -> Sweep:
    """Evaluates the quantities on every run; with stat mean, median or std, aggregates the runs
    that share (hue, x) (e.g. seeds) into one row with an error bar; with fit, fits y ≈ C·x^slope
    on log–log axes for each curve (each y, each hue value), over x in fit_range if given.

    A t=T quantity past a run's last observation raises PastEnd naming the run; with
    past_end="exclude" that run is left out and named in Sweep.warnings."""
    if past_end not in ("error", "exclude"):
        raise ValueError(f"--past-end must be error or exclude (got {past_end!r})")
    if stat not in STATS:
        raise ValueError(f"--stat must be one of {', '.join(STATS)} (got {stat!r})")
    err = err or ("sem" if stat == "mean" else "bootstrap" if stat == "median" else "none")
    if err not in ERRORS:
        raise ValueError(f"--err must be one of {', '.join(ERRORS)} (got {err!r})")
    if err != "none" and stat not in ("mean", "median"):
        raise ValueError(f"--err {err} needs --stat mean or median")
    if stat == "median" and err in ("sem", "std"):
        raise ValueError("--stat median takes --err bootstrap or none")
    fx, fh, fys = quantity(x), quantity(hue) if hue else None, [quantity(y) for y in ys]
    points, warnings = [], []
    for r in runs:
        try:
            p = {"x": fx(r), **{y: f(r) for y, f in zip(ys, fys)}, "file": r.path}
        except PastEnd as e:
            if past_end == "error":
                raise
            warnings.append(f"left out {e.args[0].split('; --past-end')[0]}")
            continue
        if fh:
            p["hue"] = fh(r)
        points.append(p)
    if not points:
        raise ValueError("no run is left: every run ends before the time asked for")
    points.sort(key=lambda p: (_sort_key(p.get("hue")), _sort_key(p["x"]), p["file"]))
    if stat == "none":
        rows = points
    else:
        rows = []
        for key in dict.fromkeys((p.get("hue"), p["x"]) for p in points):
            group = [p for p in points if (p.get("hue"), p["x"]) == key]
            row: dict[str, Any] = {"x": key[1], "runs": len(group)}
            if hue:
                row["hue"] = key[0]
            for y in ys:
                v = np.asarray([p[y] for p in group], dtype=float)
                row[y], lo, hi = _aggregate(v, stat, err, level)
                if err != "none":
                    row[f"{y}:lo"], row[f"{y}:hi"] = lo, hi
            rows.append(row)
    result = Sweep(x, list(ys), stat, rows, hue=hue, err=err, level=level, fit_range=fit_range,
                   warnings=warnings)
    few = result.few_runs()
    if few:
        result.warnings.append(_few_runs_text(result, few))
    if fit:
        for y, h, curve in result.curves():
            label = result.curve_key(y, h)
            use = [r for r in curve if _in_range(r["x"], fit_range)]
            try:
                result.fits[label] = fit_power_law([r["x"] for r in use], [r[y] for r in use], level)
            except (ValueError, TypeError) as e:
                result.fit_errors[label] = str(e)
    return result


def _aggregate(v: np.ndarray, stat: str, err: str, level: float) -> tuple[float, float, float]:
    nan = float("nan")
    if stat == "std":
        return (float(v.std(ddof=1)) if v.size > 1 else nan), nan, nan
    centre = float(np.median(v)) if stat == "median" else float(v.mean())
    if err == "sem":
        half = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else nan
        return centre, centre - half, centre + half
    if err == "std":
        half = float(v.std(ddof=1)) if v.size > 1 else nan
        return centre, centre - half, centre + half
    if err == "bootstrap":
        lo, hi = bootstrap_ci(v, level, statistic=np.median if stat == "median" else np.mean)
        return centre, lo, hi
    return centre, nan, nan


def _in_range(x: Any, fit_range: tuple[float, float] | None) -> bool:
    if fit_range is None:
        return True
    try:
        return fit_range[0] <= float(x) <= fit_range[1]
    except (TypeError, ValueError):
        return False


def _sort_key(v: Any) -> tuple:
    if v is None:
        return (0, 0.0, "")
    return (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))


def _column(y: str, stat: str) -> str:
    return y if stat == "none" else f"{stat}({y})"


def _error_name(s: Sweep) -> str:
    return {"sem": "± 1 standard error", "std": "± 1 std", "bootstrap": f"{100 * s.level:g}% bootstrap CI",
            "none": ""}[s.err]


def format_sweep(s: Sweep) -> str:
    header = [s.x] + ([s.hue] if s.hue else []) + [_column(y, s.stat) for y in s.ys]
    if s.err != "none":
        header += [f"{y} {'[lo, hi]' if s.err == 'bootstrap' else '±'}" for y in s.ys]
    header += ["file"] if s.stat == "none" else ["runs"]
    rows = []
    for r in s.rows:
        cells = [_cell(r["x"])] + ([_cell(r.get("hue"))] if s.hue else []) + [_cell(r[y]) for y in s.ys]
        if s.err != "none":
            for y in s.ys:
                lo, hi = r.get(f"{y}:lo", float("nan")), r.get(f"{y}:hi", float("nan"))
                cells.append(f"[{lo:.4g}, {hi:.4g}]" if s.err == "bootstrap" else f"{(hi - lo) / 2:.4g}")
        cells.append(r["file"] if s.stat == "none" else str(r["runs"]))
        rows.append(cells)
    widths = [max(len(c[j]) for c in [header] + rows) for j in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    if s.err != "none":
        lines.append(f"error: {_error_name(s)} over the runs of each point")
    where = f" over {s.fit_range[0]:g} <= {s.x} <= {s.fit_range[1]:g}" if s.fit_range else ""
    for y, h, _ in s.curves():
        key, label = s.curve_key(y, h), s.curve_label(y, h)
        if key in s.fits:
            lines.append(f"fit {label} ~ {s.x}^slope{where}: {s.fits[key].describe()}")
        elif key in s.fit_errors:
            lines.append(f"no fit for {label}: {s.fit_errors[key]}")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _few_runs_text(s: Sweep, few: Sequence[dict[str, Any]]) -> str:
    points = ", ".join(f"{_cell(r['x'])}" + (f" ({s.hue}={_cell(r.get('hue'))})" if s.hue else "") + f": {r['runs']}"
                       for r in few)
    return f"error bars from fewer than {FEW_RUNS} runs at {s.x} = {points}"


_MARKERS = ("o", "s", "^", "D", "v", "P")


def _dodge(xs: np.ndarray, k: int, count: int, log: bool, spacing: float) -> np.ndarray:
    """Shifts curve k of count sideways by a few percent of the grid spacing, so that curves
    with equal values do not hide each other (the fits use the true x)."""
    if count < 2:
        return xs
    offset = (k - (count - 1) / 2) * 0.06 * spacing / (count - 1)
    return xs * 10.0**offset if log else xs + offset


def plot_sweep(s: Sweep, path=None, *, xscale: str | None = None, yscale: str | None = None, dpi: int = 110):
    """One panel per y quantity (each with its own y axis), sharing the x axis with ticks at the
    grid values; error bars; a fitted power law only where fitted, its slope, CI and R² in the
    legend; the legend right of the panels; a warning on the figure where an error bar comes from
    fewer than FEW_RUNS runs. Log axes unless a value is not positive (then linear). Saved to path
    if given; returns the Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .curves import group_colours
    from .ticks import grid_ticks, readable_log_axis

    hues = list(dict.fromkeys(r.get("hue") for r in s.rows))
    colours = group_colours(hues) if s.hue else ["C0"]
    all_x = np.asarray([r["x"] for r in s.rows], dtype=float)
    finite_x = np.unique(all_x[np.isfinite(all_x)])
    xscale = xscale or ("log" if finite_x.size and np.all(finite_x > 0) else "linear")
    logx = xscale == "log"
    grid = np.log10(finite_x) if logx else finite_x
    spacing = float(np.min(np.diff(grid))) if grid.size > 1 else 1.0
    fig, axes = plt.subplots(len(s.ys), 1, figsize=(7.4, 1.6 + 2.6 * len(s.ys)), sharex=True, squeeze=False,
                             layout="constrained")
    axes = axes[:, 0]
    for ax, y in zip(axes, s.ys):
        values = np.asarray([r[y] for r in s.rows], dtype=float)
        values = values[np.isfinite(values)]
        scale = yscale or ("log" if values.size and np.all(values > 0) else "linear")
        for k, h in enumerate(hues):
            rows = [r for r in s.rows if r.get("hue") == h]
            color = colours[k]
            marker = _MARKERS[k % len(_MARKERS)]
            xs = np.asarray([r["x"] for r in rows], dtype=float)
            vs = np.asarray([r[y] for r in rows], dtype=float)
            shown = _dodge(xs, k, len(hues), logx, spacing)
            label = f"{s.hue} = {_cell(h)}" if s.hue else _column(y, s.stat)
            if s.err != "none":
                lo = np.asarray([r.get(f"{y}:lo", np.nan) for r in rows], dtype=float)
                hi = np.asarray([r.get(f"{y}:hi", np.nan) for r in rows], dtype=float)
                yerr = np.vstack([np.clip(vs - lo, 0, None), np.clip(hi - vs, 0, None)])
                yerr[~np.isfinite(yerr)] = 0
                ax.errorbar(shown, vs, yerr=yerr, fmt=marker + "-", color=color, capsize=3, ms=5, lw=0.8,
                            label=label)
            else:
                ax.plot(shown, vs, marker + "-", color=color, ms=5, lw=0.8, label=label)
            fit = s.fits.get(s.curve_key(y, h))
            if fit is not None:
                used = xs[[_in_range(v, s.fit_range) for v in xs]]
                used = used[used > 0]
                line = np.geomspace(used.min(), used.max(), 50)
                ci = "" if not np.isfinite(fit.ci[0]) else f" [{fit.ci[0]:+.2f}, {fit.ci[1]:+.2f}]"
                ax.plot(line, fit(line), "--", color=color, alpha=0.8, lw=1.2,
                        label=f"fit: slope {fit.slope:+.2f}{ci}, R² {fit.r2:.2f}")
        ax.set_yscale(scale)
        if scale == "log":
            ax.autoscale_view()
            readable_log_axis(ax, "y")
        ax.set_ylabel(_column(y, s.stat), fontsize="medium" if len(_column(y, s.stat)) <= 30 else "small")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  frameon=False)
    axes[-1].set_xscale(xscale)
    axes[-1].margins(x=0.08)
    grid_ticks(axes[-1], finite_x)
    axes[-1].set_xlabel(s.x)
    parts = [f"{len(s.rows)} points"]
    if s.stat != "none":
        runs = [r["runs"] for r in s.rows]
        parts.append(f"{min(runs)}–{max(runs)} runs each" if min(runs) != max(runs) else f"{runs[0]} runs each")
    if s.err != "none":
        parts.append(f"error bars: {_error_name(s)}")
    if s.fits:
        parts.append(f"fits: {100 * s.level:g}% CI of the slope"
                     + (f", {s.fit_range[0]:g} ≤ x ≤ {s.fit_range[1]:g}" if s.fit_range else ""))
    if len(hues) > 1:
        parts.append("points shifted sideways per curve for legibility")
    title = "\n".join(textwrap.wrap("; ".join(parts), 80, break_long_words=False))
    few = s.few_runs()
    if few:
        title = "warning: " + "\n".join(textwrap.wrap(_few_runs_text(s, few), 80, break_long_words=False)) + "\n" + title
    fig.suptitle(title, fontsize="small", color="firebrick" if few else "black")
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig

"""`curves RUNS… --y OBS --group KEY [--band se|ci95|range] [--time-scale EXPR]`: an observable
against flow time, averaged over the runs that share a value of KEY (their seeds), with a band.

Per group, the runs' series are put on one time grid: their common observation times when every
run observed at the same times, else the union of their times inside the range all of them cover,
each run interpolated linearly onto it. The curve is the mean over the runs; the band is
  se    mean ± one standard error s/√n (s: the sample standard deviation, n runs),
  ci95  mean ± t_{0.975, n−1}·s/√n (Student t 95% confidence interval of the mean),
  range the smallest to the largest run.
A group of one run has no band; a band from fewer than 3 runs is flagged in the figure. Where an
observable has a reliability flag (`<name>_reliable`, the KL estimates) and any run of a group
flags it unreliable at a grid time, the group's curve is dashed there and a warning says so.

--time-scale multiplies each run's flow time by an expression of its config and parameters
(`beta^2`, `model.beta**2`, `1/flow.dt`): with t·β², lazy (large β) and mean-field runs share an
axis (their dynamics run on the time scale 1/β², docs/workflow.md).

    from mfsim_analysis import curves
    c = curves(["runs/m64_s1.h5", ...], ["loss"], "model.width", band="ci95")
    c.groups[0].value, c.groups[0].runs, c.groups[0].time, c.groups[0].mean["loss"], .lo, .hi
    c.plot("loss_by_width.png")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .labels import style_of
from .run import Run, open_run
from .sweep import quantity
from .ticks import readable_log_axis

__all__ = ["BANDS", "Group", "Curves", "curves", "band_of", "group_colours", "FEW_SEEDS"]

BANDS = ("se", "ci95", "range", "none")
FEW_SEEDS = 3  # bands from fewer runs than this are flagged
_BAND_NAMES = {"se": "± 1 standard error", "ci95": "95% CI of the mean (Student t)", "range": "min–max over runs",
               "none": "no band"}


def band_of(values: np.ndarray, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) over axis 0 of values[run][time]; lo = hi = NaN with fewer than 2 runs."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    mean = v.mean(axis=0)
    nan = np.full_like(mean, np.nan)
    if band == "none" or n < 2:
        return mean, nan, nan
    if band == "range":
        return mean, v.min(axis=0), v.max(axis=0)
    se = v.std(axis=0, ddof=1) / math.sqrt(n)
    half = se if band == "se" else stats.t.ppf(0.975, n - 1) * se
    return mean, mean - half, mean + half


@dataclass
class Group:
    value: Any  # the group key's value
    runs: int
    files: list[str]
    time: np.ndarray  # the common grid (scaled time)
    mean: dict[str, np.ndarray] = field(default_factory=dict)  # by observable
    lo: dict[str, np.ndarray] = field(default_factory=dict)
    hi: dict[str, np.ndarray] = field(default_factory=dict)
    # by observable with a reliability flag: True where every run flags it reliable
    reliable: dict[str, np.ndarray] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "runs": self.runs, "files": self.files, "time": self.time.tolist(),
                "mean": {k: v.tolist() for k, v in self.mean.items()},
                "lo": {k: v.tolist() for k, v in self.lo.items()},
                "hi": {k: v.tolist() for k, v in self.hi.items()},
                "reliable": {k: v.tolist() for k, v in self.reliable.items()}}


@dataclass
class Curves:
    ys: list[str]
    group: str
    band: str
    time_scale: str | None
    groups: list[Group]
    warnings: list[str] = field(default_factory=list)
    outputs: int = 1  # the runs' common model.outputs (1 when they differ): the axis labels

    @property
    def numeric(self) -> bool:
        return all(isinstance(g.value, (int, float)) and not isinstance(g.value, bool) for g in self.groups)

    def few_seed_groups(self) -> list[Group]:
        return [g for g in self.groups if g.runs < FEW_SEEDS] if self.band != "none" else []

    def colours(self) -> list[Any]:
        return group_colours([g.value for g in self.groups])

    def plot(self, path: str | os.PathLike | None = None, *, xscale: str = "linear",
             yscale: str | None = None, dpi: int = 110):
        """The figure (one panel per observable, shared time axis, legend to the right of the
        panels); saved to path if given. Returns the matplotlib Figure."""
        return _plot(self, path, xscale=xscale, yscale=yscale, dpi=dpi)


def group_colours(values: Sequence[Any]) -> list[Any]:
    """One colour per value: a colour scale (viridis without its faint yellow end, logarithmic when
    the values are positive and span a factor 4 or more) for numbers, the categorical cycle
    (tab10, tab20 beyond 10 values) otherwise."""
    import matplotlib

    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric:
        cmap = matplotlib.colormaps["tab10" if len(values) <= 10 else "tab20"]
        return [cmap(k % cmap.N) for k in range(len(values))]
    v = np.asarray(values, dtype=float)
    if np.all(v > 0) and v.max() / v.min() >= 4:
        v = np.log(v)
    span = np.ptp(v)
    pos = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    return [matplotlib.colormaps["viridis"](0.8 * p) for p in pos]


def _sort_key(v: Any) -> tuple:
    return (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0.0, str(v))


def _series(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in run.observables:
        raise KeyError(f"{run.path}: no observable {name!r}")
    obs = run.observables[name]
    v = np.asarray(obs.value, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{run.path}: observable {name!r} is not a scalar series")
    if len(obs) == 0:
        raise ValueError(f"{run.path}: observable {name!r} has no complete row yet")
    return np.asarray(obs.time, dtype=float), v


def _time_scale(run: Run, expr: str | None) -> float:
    if not expr:
        return 1.0
    try:
        scale = float(quantity(expr)(run))
    except KeyError as e:
        raise KeyError(f"--time-scale {expr}: {e.args[0] if e.args else e}") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{run.path}: --time-scale {expr} is {scale:g}, not a positive number")
    return scale


def curves(runs: Sequence[Run | str | os.PathLike], ys: Sequence[str] | str, group: str, *, band: str = "se",
           time_scale: str | None = None) -> Curves:
    """Means and bands of the observables `ys` against (scaled) flow time, one group per value of
    the config key `group` (see the module docstring)."""
    if isinstance(ys, str):
        ys = [ys]
    if not ys:
        raise ValueError("curves needs at least one observable (--y)")
    if band not in BANDS:
        raise ValueError(f"--band must be one of {', '.join(BANDS)} (got {band!r})")
    runs = [r if isinstance(r, Run) else open_run(r) for r in runs]
    if not runs:
        raise ValueError("curves needs at least one run")
    key = quantity(group)
    members: dict[Any, list[Run]] = {}
    for r in runs:
        members.setdefault(key(r), []).append(r)
    outputs = {r.outputs for r in runs}
    result = Curves(list(ys), group, band, time_scale, [], outputs=outputs.pop() if len(outputs) == 1 else 1)
    for value in sorted(members, key=_sort_key):
        group_runs = members[value]
        scales = [_time_scale(r, time_scale) for r in group_runs]
        series = {y: [_series(r, y) for r in group_runs] for y in ys}
        times = [s * t for (t, _), s in zip(series[ys[0]], scales)]
        for y in ys[1:]:
            for r, s, (t, _) in zip(group_runs, scales, series[y]):
                if not np.array_equal(s * t, times[group_runs.index(r)]):
                    raise ValueError(f"{r.path}: {y!r} and {ys[0]!r} are observed at different times")
        if all(t.shape == times[0].shape and np.array_equal(t, times[0]) for t in times):
            grid = times[0]
        else:
            lo, hi = max(t[0] for t in times), min(t[-1] for t in times)
            if hi < lo:
                raise ValueError(f"{group}={value}: the runs' time ranges do not overlap")
            grid = np.unique(np.concatenate([t[(t >= lo) & (t <= hi)] for t in times]))
            ends = [t[-1] for t in times]
            if max(ends) > hi * (1 + 1e-9):
                result.warnings.append(f"{group}={value}: the runs end between t = {min(ends):g} and "
                                       f"{max(ends):g}; the curve stops at {hi:g}, where all of them end")
        g = Group(value, len(group_runs), [r.path for r in group_runs], grid)
        for y in ys:
            values = np.stack([np.interp(grid, s * t, v) for (t, v), s in zip(series[y], scales)])
            g.mean[y], g.lo[y], g.hi[y] = band_of(values, band)
            flag = f"{y}_reliable"
            if all(flag in r.observables for r in group_runs):
                # A grid time between two observations is reliable only if both neighbours are.
                ok = np.stack([np.interp(grid, s * t, v) for (t, v), s in
                               zip((_series(r, flag) for r in group_runs), scales)]) >= 1.0
                g.reliable[y] = ok.all(axis=0)
                if not g.reliable[y].all():
                    result.warnings.append(f"{group}={value}: {y} is flagged unreliable by some run at "
                                           f"{int((~g.reliable[y]).sum())} of {grid.size} times (dashed)")
        result.groups.append(g)
    few = result.few_seed_groups()
    if few:
        result.warnings.append(_few_seeds_text(result, few))
    return result


def _few_seeds_text(c: Curves, few: Sequence[Group]) -> str:
    which = ", ".join(f"{_value_text(g.value)} ({g.runs})" for g in few)
    return f"bands from fewer than {FEW_SEEDS} seeds: {c.group} = {which}"


def _value_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _time_label(c: Curves) -> str:
    if not c.time_scale:
        return "flow time t"
    return f"t · {c.time_scale.replace('**', '^')}"


def _yscale(name: str, values: np.ndarray, asked: str | None) -> str:
    finite = values[np.isfinite(values)]
    positive = finite.size > 0 and np.all(finite > 0)
    if asked:
        return asked
    style = style_of(name, finite)
    return "log" if positive and (style.scale in ("log", "kl") or
                                  (finite.max() / finite.min() > 100)) else "linear"


def _plot(c: Curves, path, *, xscale: str, yscale: str | None, dpi: int):
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = c.colours()
    height = 2.2 + 2.0 * len(c.ys)
    fig, axes = plt.subplots(len(c.ys), 1, figsize=(7.6, height), sharex=True, squeeze=False,
                             layout="constrained")
    axes = axes[:, 0]
    few = {id(g) for g in c.few_seed_groups()}
    for ax, y in zip(axes, c.ys):
        for g, colour in zip(c.groups, colours):
            t, m = g.time, g.mean[y]
            keep = t > 0 if xscale == "log" else np.ones(t.shape, bool)
            seeds = f"{g.runs} seed{'s' if g.runs != 1 else ''}" + (" (few)" if id(g) in few else "")
            label = f"{_value_text(g.value)}  ({seeds})"
            if y in g.reliable and not g.reliable[y].all():
                shaky = ~g.reliable[y]
                shaky = shaky | np.roll(shaky, 1) | np.roll(shaky, -1)  # joined to their neighbours
                ax.plot(t[keep], np.where(shaky, m, np.nan)[keep], color=colour, lw=1.2, ls="--")
                m = np.where(g.reliable[y], m, np.nan)
                label += ", dashed: unreliable"
            ax.plot(t[keep], m[keep], color=colour, lw=1.6, label=label)
            if np.any(np.isfinite(g.lo[y])):
                ax.fill_between(t[keep], g.lo[y][keep], g.hi[y][keep], color=colour, alpha=0.22, lw=0,
                                hatch="//" if id(g) in few else None)
        every = np.concatenate([np.concatenate([g.mean[y], g.lo[y], g.hi[y]]) for g in c.groups])
        scale = _yscale(y, every, yscale)
        if scale == "log":
            finite = every[np.isfinite(every)]
            if finite.size and np.all(finite > 0):
                ax.set_yscale("log")
                ax.autoscale_view()
                readable_log_axis(ax, "y")
        else:
            ax.set_yscale(scale)
        label = style_of(y, outputs=c.outputs).label
        ax.set_ylabel(label if label != y else y)
        ax.set_title(y, fontsize="small", loc="left")
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].set_xscale(xscale)
    if xscale == "log":
        axes[-1].autoscale_view()
        readable_log_axis(axes[-1], "x")
    axes[-1].set_xlabel(_time_label(c))
    band = _BAND_NAMES[c.band]
    legend = axes[0].legend(title=f"{c.group}\n(mean; band: {band})", fontsize="small", title_fontsize="small",
                            loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    legend._legend_box.align = "left"  # the title flush with the entries (no public setter in 3.6)
    few_groups = c.few_seed_groups()
    if few_groups:
        fig.suptitle("warning: " + _few_seeds_text(c, few_groups), color="firebrick", fontsize="small")
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig

"""Tick marks a reader can read: at least three labelled ticks on a log axis, and ticks at the grid
values of a sweep (matplotlib's defaults label only the powers of ten, so an axis spanning less
than a decade or two shows one label, or none)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["log_ticks", "readable_log_axis", "grid_ticks", "tick_text"]

_SUBS = ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))


def tick_text(v: float) -> str:
    """A short label: 0.002, 30, 1.5e+05; powers of ten far from 1 as 10^k."""
    if v == 0:
        return "0"
    k = math.log10(abs(v))
    if abs(k - round(k)) < 1e-9 and not -3 <= round(k) <= 4:
        return f"$10^{{{round(k)}}}$" if v > 0 else f"$-10^{{{round(k)}}}$"
    return f"{v:.3g}"


def log_ticks(lo: float, hi: float, *, most: int = 8) -> list[float]:
    """At least three (at most about `most`) round values in [lo, hi], 0 < lo < hi: powers of
    ten (every k-th if the range spans many decades), else 1-3, 1-2-5, 1-2-3-5 or 1..9 times them, else
    (a range narrower than a factor 2 or so) evenly spaced round values, else three geometrically
    spaced values rounded to two significant digits."""
    from matplotlib.ticker import MaxNLocator

    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"log ticks need 0 < lo < hi (got {lo}, {hi})")
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in _SUBS:
        ticks = [s * 10.0**k for k in range(first, last + 1) for s in subs]
        ticks = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) >= 3:
            step = math.ceil(len(ticks) / most)
            return ticks[::step] if len(ticks[::step]) >= 3 else ticks
    even = [float(f"{t:.6g}") for t in MaxNLocator(5, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9) and t > 0]
    if len(even) >= 3:
        return even
    return [float(f"{v:.2g}") for v in np.geomspace(lo, hi, 5)[1:4]]


def readable_log_axis(ax, which: str = "y") -> None:
    """Freezes the current limits of a log axis and puts labelled ticks from log_ticks on it."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
    if not (0 < lo < hi):
        return
    (ax.set_ylim if which == "y" else ax.set_xlim)(lo, hi)
    axis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10)))
    axis.set_minor_formatter(NullFormatter())


def grid_ticks(ax, values: Sequence[float], which: str = "x", *, most: int = 12) -> None:
    """Major ticks exactly at the grid values (at most `most` of them: every k-th), no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = sorted({float(x) for x in values if math.isfinite(float(x))})
    if not v:
        return
    step = math.ceil(len(v) / most)
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(FixedLocator(v[::step]))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_locator(NullLocator())

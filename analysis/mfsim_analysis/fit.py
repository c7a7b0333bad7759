"""Power-law fits y ≈ C·x^slope by least squares on log–log axes, with a confidence interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PowerLawFit", "fit_power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    slope: float
    intercept: float  # log10 C
    stderr: float  # standard error of the slope
    ci: tuple[float, float]  # confidence interval of the slope (Student t, n − 2 dof)
    level: float
    n: int  # points used (positive, finite x and y)
    r2: float

    def __call__(self, x) -> np.ndarray:
        return 10.0 ** (self.intercept + self.slope * np.log10(np.asarray(x, dtype=float)))

    def describe(self) -> str:
        pct = f"{100 * self.level:g}%"
        return (f"slope {self.slope:+.3f} ± {self.stderr:.3f} ({pct} CI [{self.ci[0]:+.3f}, "
                f"{self.ci[1]:+.3f}], {self.n} points, R² {self.r2:.3f})")

    def as_dict(self) -> dict:
        return {"slope": self.slope, "intercept_log10": self.intercept, "stderr": self.stderr,
                "ci": list(self.ci), "level": self.level, "n": self.n, "r2": self.r2}


def fit_power_law(x, y, level: float = 0.95) -> PowerLawFit:
    """Ordinary least squares of log10 y on log10 x over the points with x, y > 0 and finite.

    The interval is slope ± t_{(1+level)/2, n−2} · stderr; it needs at least 3 points (NaN below).
    """
    from scipy import stats  # here: importing it costs a second that plot and summary need not pay

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log10(x[keep]), np.log10(y[keep])
    n = lx.size
    if n < 2 or np.ptp(lx) == 0:
        raise ValueError(f"a power-law fit needs 2 distinct positive x values (got {n} usable points)")
    r = stats.linregress(lx, ly)
    if n >= 3:
        half = stats.t.ppf(0.5 + level / 2, n - 2) * r.stderr
        stderr = float(r.stderr)
    else:
        half = stderr = float("nan")
    return PowerLawFit(float(r.slope), float(r.intercept), stderr,
                       (float(r.slope - half), float(r.slope + half)), level, n, float(r.rvalue**2))

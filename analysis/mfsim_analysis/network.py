"""The network function f evaluated in numpy from stored particles (independent of the C++ code).

Model A (MATH.md §2.1): f(x) = (β/m) Σ_k a_k σ(w_k·x + b_k), particle columns a, w_1..w_d[, b].
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit

from .run import Frame, Run

__all__ = ["activation", "two_layer_predict", "predict"]


def activation(name: str, kappa: float = 1.0):
    """σ as a numpy function; the same definitions as mfsim's activations (MATH.md §1.3)."""
    functions = {
        "relu": lambda u: np.maximum(u, 0.0),
        "tanh": np.tanh,
        "sigmoid": expit,
        "softplus": lambda u: np.logaddexp(0.0, kappa * u) / kappa,
        "erf": erf,
        "gelu": lambda u: 0.5 * u * (1.0 + erf(u / np.sqrt(2.0))),
    }
    if name not in functions:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(functions)})")
    return functions[name]


def two_layer_predict(frame: Frame, x: np.ndarray, *, beta: float, sigma, chunk: int = 4096) -> np.ndarray:
    """f(x_i) for every row of x from one frame of /particles/two_layer.

    Sums over particles in chunks, so memory stays O(n · chunk) whatever the width.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    a, w = frame["a"], frame.block("w")
    b = frame["b"] if "b" in frame.columns else np.zeros_like(a)
    total = np.zeros(x.shape[0])
    for start in range(0, a.size, chunk):
        s = slice(start, start + chunk)
        total += sigma(x @ w[s].T + b[s]) @ a[s]
    return beta * total / a.size


def predict(run: Run, x: np.ndarray, frame: int | Frame = -1) -> np.ndarray:
    """f(x) of a two-layer run at a frame (index or Frame), with the run's β and σ."""
    if run.model != "two_layer":
        raise ValueError(f"{run.path}: predict() supports the two_layer model, not {run.model!r}")
    if not isinstance(frame, Frame):
        frame = run.particles["two_layer"].frame(frame)
    sigma = activation(run.get("model.activation"), float(run.get("model.softplus_kappa", 1.0)))
    return two_layer_predict(frame, x, beta=float(run.get("model.beta")), sigma=sigma)

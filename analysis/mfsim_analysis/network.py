"""The network function f evaluated in numpy from stored particles (independent of the C++ code).

Model A (MATH.md §2.1): f(x) = (β/m) Σ_k a_k σ(w_k·x + b_k), particle columns a, w_1..w_d[, b].
Model B (MATH.md §3.1): z_{l+1} = z_l + (α/(LM)) Σ_m u_{l,m} σ0(w_{l,m}·z_l + b_{l,m}), z_0 = x;
f(x) = (β/K) Σ_k a_k σh(v_k·z_L); blocks u_1..u_d, w_1..w_d, b (row l·M + j), head a, v_1..v_d.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermeval
from scipy.special import erf, expit

from .run import Frame, Run

__all__ = ["activation", "two_layer_predict", "resnet_predict", "predict"]


def activation(name: str, kappa: float = 1.0, hermite=None):
    """σ as a numpy function; the same definitions as mfsim's activations (MATH.md §1.3).

    hermite: the coefficients c_0 … c_p of σ = Σ c_i He_i for name "hermite"
    (model.hermite_coefficients)."""
    functions = {
        "relu": lambda u: np.maximum(u, 0.0),
        "tanh": np.tanh,
        "sigmoid": expit,
        "softplus": lambda u: np.logaddexp(0.0, kappa * u) / kappa,
        "erf": erf,
        "gelu": lambda u: 0.5 * u * (1.0 + erf(u / np.sqrt(2.0))),
        "linear": lambda u: u,
        "quadratic": lambda u: u * u,
        "hermite": lambda u: hermeval(u, hermite),
    }
    if name == "hermite" and not hermite:
        raise ValueError("activation 'hermite' needs its coefficients (model.hermite_coefficients)")
    if name not in functions:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(functions)})")
    return functions[name]


def two_layer_predict(frame: Frame, x: np.ndarray, *, beta: float, sigma, chunk: int = 4096) -> np.ndarray:
    """f(x_i) for every row of x from one frame of /particles/two_layer: shape (n,), or (n, c) for a
    run with model.outputs = c > 1 (columns a_1..a_c).

    Sums over particles in chunks, so memory stays O(n · chunk) whatever the width.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    a, w = (frame["a"] if "a" in frame.columns else frame.block("a")), frame.block("w")
    m = a.shape[0]
    b = frame["b"] if "b" in frame.columns else np.zeros(m)
    total = np.zeros((x.shape[0],) + a.shape[1:])
    for start in range(0, m, chunk):
        s = slice(start, start + chunk)
        total += sigma(x @ w[s].T + b[s]) @ a[s]
    return beta * total / m


def resnet_predict(blocks: Frame, head: Frame, x: np.ndarray, *, alpha: float, beta: float, sigma0,
                   sigma_h) -> np.ndarray:
    """f(x_i) for every row of x from one frame of /particles/resnet_blocks and one of resnet_head:
    shape (n,), or (n, c) for a run with model.outputs = c > 1 (head columns a_1..a_c)."""
    z = np.atleast_2d(np.asarray(x, dtype=float)).copy()
    layers = blocks.layers()  # [L][M][2d+1]
    d = z.shape[1]
    L, M = layers.shape[0], layers.shape[1]
    for layer in layers:
        u, w, b = layer[:, :d], layer[:, d:2 * d], layer[:, 2 * d]
        z = z + (alpha / (L * M)) * sigma0(z @ w.T + b) @ u
    a, v = (head["a"] if "a" in head.columns else head.block("a")), head.block("v")
    return beta * (sigma_h(z @ v.T) @ a) / a.shape[0]


def predict(run: Run, x: np.ndarray, frame: int | Frame = -1) -> np.ndarray:
    """f(x) at a frame (index; for model A also a Frame), with the run's parameters.

    Model B pairs the blocks' and the head's frames of the same index (the writer snapshots both
    groups at the same steps)."""
    kappa = float(run.get("model.softplus_kappa", 1.0))
    hermite = run.get("model.hermite_coefficients", None)
    if run.model == "resnet":
        if isinstance(frame, Frame):
            raise ValueError("predict() on a resnet run takes a frame index (it reads both particle groups)")
        blocks, head = run.particles["resnet_blocks"].frame(frame), run.particles["resnet_head"].frame(frame)
        if blocks.step != head.step:
            raise ValueError(f"{run.path}: frame {frame} of the blocks (step {blocks.step}) and of the head "
                             f"(step {head.step}) differ")
        return resnet_predict(blocks, head, x, alpha=float(run.get("model.alpha")), beta=float(run.get("model.beta")),
                              sigma0=activation(run.get("model.activation"), kappa, hermite),
                              sigma_h=activation(run.get("model.head_activation"), kappa, hermite))
    if run.model != "two_layer":
        raise ValueError(f"{run.path}: predict() supports the two_layer and resnet models, not {run.model!r}")
    if not isinstance(frame, Frame):
        frame = run.particles["two_layer"].frame(frame)
    sigma = activation(run.get("model.activation"), kappa, hermite)
    return two_layer_predict(frame, x, beta=float(run.get("model.beta")), sigma=sigma)

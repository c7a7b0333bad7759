"""How each observable is drawn: its label, the panel it shares, and its scale.

Observables not listed here still appear, each in a panel of its own, on a log scale when their
values are positive and span more than two decades. Adding a name here only makes it prettier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["Style", "style_of", "order_key", "panel_title", "PANELS"]


@dataclass(frozen=True)
class Style:
    label: str
    panel: str  # observables with the same panel share axes
    scale: str = "linear"  # "linear", "log", "abslog" (log of |value|) or "kl" (log, symlog if < 0)
    linestyle: str | None = None  # fixed line style (e.g. one per KL estimator); None: by position
    part: str = ""  # the particle group's label (blocks, head): one colour per part in the KL panel


# Panel key -> (title, y-axis label), in the order the dashboard shows them.
PANELS: dict[str, tuple[str, str]] = {
    "loss": ("Loss", "L"),
    "gram": ("Gram matrix eigenvalues", "λ"),
    "gram_spectrum": ("Gram spectrum", "eigenvalues of G"),
    "gram_ratio": ("λ_min(G) / β²λ₀ (NTK reference)", "λ_min(G(t)) / β²λ₀"),
    "kl": ("KL(ρ_t ‖ ρ_0)", "KL (nats)"),
    "norms": ("Path norms", "norm"),
    "weighted_norm": ("Weighted path norm (ResNet)", "‖θ‖_WP"),
    "w2": ("Movement", "W₂ path length"),
    "bound": ("Bound (A12), apart: far above the loss", "bound / L(t)"),
    "identity": ("Energy identity (A11)", "relative error"),
    "accuracy": ("Accuracy", "fraction with sign f(x) = y"),
    "margin": ("Margin", "min_i y_i f(x_i)"),
    "normalised_margin": ("Normalised margin", "margin / P₂"),
    "free_energy": ("Free energy gap F_λ(ρ_t) − F_∞", "F_λ(ρ_t) − F_∞ (F_∞: mean of the last quarter)"),
    "free_energy_terms": ("Free energy terms", "value"),
    "gibbs": ("Distance to the proximal Gibbs measure", "KL(ρ_t ‖ ρ̂_t)"),
    "entropy": ("Entropy of the particle law (k-NN)", "H (nats)"),
    "temperature": ("Temperature", "λ(t)"),
}

_KNOWN: dict[str, Style] = {
    "loss": Style("training loss", "loss", "log"),
    "test_loss": Style("test loss", "loss", "log"),
    "loss_bound": Style("bound (A12): L(0)·exp(−(2/n)∫λ_min)", "loss", "log"),
    "gram_lambda_min": Style("λ_min(G)", "gram", "log"),
    "gram_lambda_max": Style("λ_max(G)", "gram", "log", "--"),
    "gram_blocks_lambda_min": Style("λ_min(G₁), blocks", "gram", "log"),
    "gram_head_lambda_min": Style("λ_min(G₂), head", "gram", "log"),
    "gram_spectrum": Style("spectrum of G", "gram_spectrum", "log"),
    "path_norm_l1": Style("ℓ1 path norm P₁", "norms"),
    "path_norm_l2": Style("ℓ2 path norm P₂", "norms"),
    "path_norm_weighted": Style("weighted path norm", "weighted_norm", "log"),
    "rademacher_bound": Style("Rademacher bound 2P₁√(2 log(2d′)/n)", "norms", "linear", "--"),
    "w2_path_length": Style("W₂ path length ∫‖v‖ dt", "w2"),
    "energy_identity_error": Style("|rᵀGr/n² − mean|v|²| / mean|v|²", "identity", "abslog"),
    # Classification (model.loss = "logistic"; with c outputs "cross_entropy": _MULTICLASS).
    # The normalised margin has a panel of its own: P₂ is large, and on the margin's axes it is a
    # flat line at 0.
    "train_accuracy": Style("train accuracy", "accuracy"),
    "test_accuracy": Style("test accuracy", "accuracy", "linear", "--"),
    "margin": Style("margin min_i y_i f(x_i)", "margin"),
    "normalised_margin": Style("normalised margin (÷ P₂)", "normalised_margin"),
    # Mean-field Langevin dynamics (docs/langevin.md).
    "free_energy": Style("F_λ(ρ_t) − F_∞", "free_energy", "log"),
    "weight_decay_term": Style("(λ'/2) E|θ|²", "free_energy_terms"),
    "path_norm_penalty_term": Style("μ P_ε", "free_energy_terms"),
    "entropy_term": Style("−λ H", "free_energy_terms"),
    "gibbs_gap": Style("KL(ρ_t ‖ ρ̂_t)", "gibbs", "log"),
    "temperature": Style("λ(t)", "temperature"),
}

# With c = model.outputs > 1 outputs (MATH.md §1.5): the prediction is argmax_j f_j(x), the margin
# that of the true class over the best other one.
_MULTICLASS_PANELS: dict[str, tuple[str, str]] = {
    "accuracy": ("Accuracy (argmax over the outputs)", r"fraction with $\arg\max_j f_j(x) = y$"),
    "margin": ("Margin (true class over the best other)", r"$\min_i\,(f_{y_i}(x_i) - \max_{j \neq y_i} f_j(x_i))$"),
}
_MULTICLASS: dict[str, Style] = {
    "margin": Style(r"margin $\min_i\,(f_{y_i} - \max_{j \neq y_i} f_j)$", "margin"),
}

_KL_PARTS = {"blocks": "blocks", "head": "head"}
# One line style per estimator (the colour is the part, or the run in an overlay).
_KL_METHODS = {
    "transport": ("transport", "-"),
    "knn": ("k-NN", "--"),
    "knn_corrected": ("k-NN − bias at t = 0", "-."),
    "knn_two_sample": ("two-sample k-NN", ":"),
    "knn_ellipsoid": ("k-NN, local ellipsoids", (0, (3, 1, 1, 1))),
    "knn_bias_t0": ("k-NN bias at t = 0", (0, (8, 2, 1, 2, 1, 2))),
}


def style_of(name: str, values: np.ndarray | None = None, outputs: int = 1) -> Style:
    """The style of an observable of a run with `outputs` outputs (model.outputs); the KLs
    (kl_METHOD, kl_blocks_METHOD, kl_head_METHOD) share the KL panel, one line style per
    estimator."""
    if outputs > 1 and name in _MULTICLASS:
        return _MULTICLASS[name]
    if name in _KNOWN:
        return _KNOWN[name]
    if name.endswith("_layers"):  # one value per layer: a layer × time heat map of its own
        base = style_of(name[: -len("_layers")])
        return Style(f"{base.label}, per layer", f"layers:{name}", "layers", None, base.part)
    match = re.fullmatch(r"entropy_(?:(blocks|head)_)?knn", name)
    if match:
        part = match.group(1)
        return Style(f"H, {_KL_PARTS[part]}" if part else "H", "entropy", "linear", None, part or "")
    match = re.fullmatch(r"kl_(?:(blocks|head)_)?(.+)", name)
    if match:
        part, method = match.groups()
        label, linestyle = _KL_METHODS.get(method, (method.replace("_", " "), None))
        prefix = f"KL {_KL_PARTS[part]}, " if part else "KL, "
        return Style(prefix + label, "kl", "kl", linestyle, part or "")
    if name.startswith("path_norm"):
        return Style(name.replace("_", " "), "norms")
    if re.fullmatch(r"rademacher_.+_bound", name):
        return Style(f"Rademacher bound ({name.split('_')[1]})", "norms", "linear", "--")
    return Style(name, f"other:{name}", _auto_scale(values))


def order_key(name: str) -> tuple[int, str]:
    """Known observables in the order listed above, then the others by name."""
    known = list(_KNOWN)
    return (known.index(name) if name in known else len(known), name)


def _auto_scale(values: np.ndarray | None) -> str:
    if values is None:
        return "linear"
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size and np.all(v > 0) and v.max() / v.min() > 100:
        return "log"
    return "linear"


def panel_title(panel: str, outputs: int = 1) -> tuple[str, str]:
    """(title, y-axis label) of a panel for runs with `outputs` outputs (model.outputs)."""
    if outputs > 1 and panel in _MULTICLASS_PANELS:
        return _MULTICLASS_PANELS[panel]
    if panel in PANELS:
        return PANELS[panel]
    name = panel.split(":", 1)[-1]
    return name, name

"""Figures: the observables dashboard of a run, overlays of several runs, particle views.

Everything is generic over the names in the file: each observable goes to the panel that
labels.style_of gives it, and each particle group gets a view built from its column names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .labels import PANELS, Style, order_key, panel_title, style_of  # noqa: E402
from .ticks import readable_log_axis  # noqa: E402
from .run import Run  # noqa: E402

__all__ = ["dashboard", "overlay", "particle_view", "run_labels", "write_plots", "default_coordinates",
           "stationary_value", "is_companion"]

_LINESTYLES = ("-", "--", ":", "-.")
_IGNORED_KEYS = {"output.path", "init.path", "data.path", "init.frame"}


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short labels: the config keys whose values differ between the runs, else the file names."""
    if len(runs) > 1:
        flats = [r.flat_config() for r in runs]
        keys = sorted(set().union(*flats) - _IGNORED_KEYS, key=_key_priority)
        differing = [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]
        if differing:
            return [", ".join(f"{k.split('.')[-1]}={f.get(k)}" for k in differing[:4]) for f in flats]
    return [Path(r.path).stem for r in runs]


_SECTIONS = ("model", "init", "data", "flow", "diagnostics", "output")


def _key_priority(key: str) -> tuple[int, str]:
    """Labels name the model first, then the seeds and data, then the integrator."""
    section = key.split(".")[0]
    return (_SECTIONS.index(section) if section in _SECTIONS else len(_SECTIONS), key)


def _describe(run: Run) -> str:
    c = run.get
    parts = [run.model]
    if run.model == "two_layer":
        parts.append(f"m={c('model.width', '?')} σ={c('model.activation', '?')} β={c('model.beta', '?')}")
    elif run.model == "resnet":
        parts.append(f"L={c('model.depth', '?')} M={c('model.width', '?')} K={c('model.head_width', '?')} "
                     f"α={c('model.alpha', '?')} β={c('model.beta', '?')} σ0={c('model.activation', '?')} "
                     f"σh={c('model.head_activation', '?')}")
    if run.outputs > 1:
        parts.append(f"c={run.outputs} outputs, {c('model.loss', '?')} loss")
    parts.append(f"d={c('data.dim', '?')} n={c('data.n_train', '?')}")
    parts.append(f"{c('flow.integrator', '?')} dt={c('flow.dt', '?')}")
    return "  ".join(str(p) for p in parts)


def _outputs(runs: Sequence[Run]) -> int:
    """The runs' common number of outputs (model.outputs), for the labels; 1 when they differ
    (the labels of one output are then the ones drawn)."""
    outputs = {run.outputs for run in runs}
    return outputs.pop() if len(outputs) == 1 else 1


def _panels(runs: Sequence[Run]) -> dict[str, list[tuple[str, Style]]]:
    """Panel key -> [(observable name, style)], known panels first, then the others by name."""
    found: dict[str, list[tuple[str, Style]]] = {}
    outputs = _outputs(runs)
    for run in runs:
        for name in run.observables:
            if name.startswith("rademacher") and not rademacher_valid(run, name):
                continue
            if is_companion(name, run.observables):  # drawn with the estimate it belongs to
                continue
            obs = run.observables[name]
            style = style_of(name, obs.value if obs.value.ndim == 1 else None, outputs)
            entries = found.setdefault(style.panel, [])
            if name not in [n for n, _ in entries]:
                entries.append((name, style))
    if "loss" in found and any(n == "loss_bound" for n, _ in found["loss"]) and not _bound_informative(runs):
        found["loss"] = [e for e in found["loss"] if e[0] != "loss_bound"]
        found["bound"] = [("loss_bound", Style("bound (A12) / training loss", "bound", "log"))]
    if len(runs) > 1:  # heat maps do not overlay
        found = {p: e for p, e in found.items() if not p.startswith("layers:")}
    if any(r.lambda0 and "gram_lambda_min" in r.observables for r in runs):
        found["gram_ratio"] = [("gram_lambda_min", Style("λ_min(G(t)) / β²λ₀", "gram_ratio", "log"))]
    order = [p for p in PANELS if p in found] + sorted(p for p in found if p not in PANELS)
    return {p: sorted(found[p], key=lambda e: order_key(e[0])) for p in order}


def _bound_informative(runs: Sequence[Run], decades: float = 1.0) -> bool:
    """Whether the bound (A12) belongs on the loss axes: within `decades` decades of the training
    loss at every observation of every run. Far above it, it flattens the loss curves to a line
    at the bottom, so it gets a panel of its own (as its ratio to the loss)."""
    for run in runs:
        if "loss_bound" not in run.observables or "loss" not in run.observables:
            continue
        bound, loss = run.observables["loss_bound"], run.observables["loss"]
        at = np.searchsorted(loss.step, bound.step).clip(0, len(loss) - 1)
        with np.errstate(all="ignore"):
            ratio = np.asarray(bound.value, dtype=float) / np.asarray(loss.value, dtype=float)[at]
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        if ratio.size and ratio.max() > 10.0**decades:
            return False
    return True


def _draw_layers(ax, run: Run, name: str, style: Style) -> str:
    """A layer × time heat map of an observable with a layer axis ([T][L]); cells whose
    `<name>_reliable` flag is 0 are crossed out. Returns the note for the title ("" if none)."""
    obs = run.observables[name]
    v = np.asarray(obs.value, dtype=float)
    t = np.asarray(obs.time, dtype=float)
    if v.ndim != 2 or v.shape[0] == 0:
        return ""
    # Cell edges: halfway between observation times (the first and last cells as wide as their neighbours).
    if t.size > 1:
        mid = (t[1:] + t[:-1]) / 2
        edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    else:
        edges = np.array([t[0] - 0.5, t[0] + 0.5])
    layers = np.arange(v.shape[1] + 1) - 0.5
    finite = v[np.isfinite(v)]
    norm = None
    if style_of(name[: -len("_layers")]).scale in ("log", "kl") and finite.size and np.all(finite > 0) \
            and finite.max() / finite.min() > 100:
        from matplotlib.colors import LogNorm

        norm = LogNorm(finite.min(), finite.max())
    mesh = ax.pcolormesh(edges, layers, v.T, cmap="viridis", shading="flat", norm=norm)
    bar = ax.figure.colorbar(mesh, ax=ax, pad=0.02)
    bar.set_label(style.label.split(",")[0], fontsize="small")
    note = ""
    flag = f"{name}_reliable"
    if flag in run.observables and np.shape(run.observables[flag].value) == v.shape:
        bad = np.argwhere(np.asarray(run.observables[flag].value) < 0.5)
        if bad.size:
            ax.plot(t[bad[:, 0]], bad[:, 1], "x", color="white", ms=4, mew=0.8)
            note = f"× unreliable: {bad.shape[0]} of {v.size} cells"
    ax.set_ylim(-0.5, v.shape[1] - 0.5)
    if v.shape[1] <= 12:
        ax.set_yticks(np.arange(v.shape[1]))
    return note


def is_companion(name: str, observables) -> bool:
    """`<name>_stderr` and `<name>_reliable`: an estimate's standard error and reliability flag,
    drawn with the estimate (a band, and its unreliable stretches dashed and grey), not as series of
    their own."""
    for suffix in ("_stderr", "_reliable"):
        if name.endswith(suffix) and name[: -len(suffix)] in observables:
            return True
    return False


def _draw_estimate(ax, run: Run, name: str, t, v, style: Style, **kwargs) -> bool:
    """An estimate with its companions: a ±1 standard-error band, and where `<name>_reliable` is 0
    the curve dashed and grey (mfsim flags a value whose error bound exceeds max(0.1 nats, 5 %):
    docs/diagnostics.md). False where the run has no flag for it (then nothing is drawn)."""
    flag_name = f"{name}_reliable"
    if flag_name not in run.observables or np.asarray(v).ndim != 1:
        return False
    flag = np.asarray(run.observables[flag_name].value, dtype=float) > 0.5
    t, v = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
    if flag.shape != v.shape:
        return False
    err_name = f"{name}_stderr"
    if err_name in run.observables:
        err = np.asarray(run.observables[err_name].value, dtype=float)
        if err.shape == v.shape:
            ax.fill_between(t, v - err, v + err, color=kwargs.get("color", "0.5"), alpha=0.15, lw=0)
    solid = np.where(flag, v, np.nan)
    # The unreliable stretches, joined to their reliable neighbours so that the curve is unbroken.
    shaky = np.where(~flag | np.roll(~flag, 1) | np.roll(~flag, -1), v, np.nan)
    label = kwargs.pop("label", None)
    if flag.any():
        ax.plot(t, solid, label=label, **kwargs)
        label = f"{label} (unreliable: dashed)" if label and not flag.all() else None
    elif label:
        label = f"{label} (unreliable)"
    if not flag.all():
        grey = dict(kwargs, color="0.6", linestyle="--")
        ax.plot(t, shaky, label=label, **grey)
    return True


def stationary_value(time, value, fraction: float = 0.25) -> float:
    """The stationary value of a series that settles: its mean over the last `fraction` of the
    run's time (the free energy's F_∞, up to the entropy estimator's noise)."""
    time, value = np.asarray(time, dtype=float), np.asarray(value, dtype=float)
    return float(np.mean(value[time >= time[-1] - fraction * (time[-1] - time[0])]))


def rademacher_valid(run: Run, name: str = "rademacher_bound") -> bool:
    """The Rademacher bound 2P₁√(2 log(2d′)/n) holds for the two-layer ReLU network (1-Lipschitz,
    positively homogeneous) with ‖(x, 1)‖_∞ ≤ 1; not for other activations, nor for the ResNet
    head (its inputs are z_L, not x). docs/corrections.md."""
    if run.model != "two_layer" or name != "rademacher_bound":
        return False
    if str(run.get("model.activation", "")) != "relu":
        return False
    x = run.data.x_train
    return x.size == 0 or float(np.max(np.abs(x))) <= 1 + 1e-12


def _draw_series(ax, t, v, style: Style, **kwargs) -> None:
    v = np.asarray(v, dtype=float)
    if style.scale == "abslog":
        v = np.abs(v)
    if v.ndim == 1:
        ax.plot(t, v, **kwargs)
        return
    rows = v.reshape(v.shape[0], -1)
    label = kwargs.pop("label", None)
    kwargs.setdefault("alpha", 0.5)
    for j in range(rows.shape[1]):
        ax.plot(t, rows[:, j], lw=0.6, label=label if j == 0 else None, **kwargs)


def run_colours(count: int) -> list:
    """One colour per run of an overlay, none repeated: the default cycle up to 10 runs, tab20 up
    to 20, viridis beyond."""
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        cmap = plt.get_cmap("tab20")
        return [cmap(i) for i in range(count)]
    cmap = plt.get_cmap("viridis")
    return [cmap(0.9 * i / (count - 1)) for i in range(count)]


def _draw_panel(ax, panel: str, entries, runs: Sequence[Run], labels: Sequence[str],
                time_scales: Sequence[float] | None = None, time_label: str = "flow time t") -> None:
    title, ylabel = panel_title(panel, _outputs(runs))
    time_scales = time_scales or [1.0] * len(runs)
    if panel.startswith("layers:"):
        name, style = entries[0]
        note = _draw_layers(ax, runs[0], name, style)
        ax.set(xlabel="flow time t", ylabel="layer l")
        ax.set_title(style.label + (f"\n({note})" if note else ""), fontsize="medium" if not note else "small")
        return
    several = len(runs) > 1
    colours = run_colours(len(runs))
    parts = list(dict.fromkeys(style.part for _, style in entries))
    for i, (run, run_label) in enumerate(zip(runs, labels)):
        for j, (name, style) in enumerate(entries):
            if name not in run.observables or len(run.observables[name]) == 0:
                continue
            obs = run.observables[name]
            value = obs.value
            if panel == "gram_ratio":
                if not run.lambda0:
                    continue
                value = obs.value / (run.ntk_gram_scale * run.lambda0)
            if panel == "free_energy":
                value = obs.value - stationary_value(obs.time, obs.value)
            if panel == "bound":
                loss = run.observables["loss"]
                at = np.searchsorted(loss.step, obs.step).clip(0, len(loss) - 1)
                value = np.asarray(obs.value, dtype=float) / np.asarray(loss.value, dtype=float)[at]
            # Several runs: the colour is the run (the figure's legend), the line style the entry.
            kwargs = {"label": (style.label if i == 0 else None) if several else style.label}
            linestyle = style.linestyle or (_LINESTYLES[j % len(_LINESTYLES)] if several else "-")
            if several:
                kwargs.update(color=colours[i], linestyle=linestyle)
            elif panel == "kl":  # one colour per part, one line style per estimator
                kwargs.update(color=f"C{parts.index(style.part) % 10}", linestyle=linestyle)
            else:
                kwargs.update(color=f"C{j % 10}", linestyle=linestyle)
            if style.linestyle and not isinstance(style.linestyle, str):
                kwargs["lw"] = 1.0
            t = obs.time * time_scales[i]
            if not _draw_estimate(ax, run, name, t, value, style, **kwargs):
                _draw_series(ax, t, value, style, **kwargs)
        if panel == "gram" and run.lambda0 is not None:
            ax.axhline(run.ntk_gram_scale * run.lambda0, color=colours[i] if several else "k", lw=1.2, ls=":",
                       label="β²λ₀ (NTK limit of λ_min(G(0)))" if i == 0 else None)
    if panel == "gram_ratio":
        ax.axhline(1.0, color="k", lw=1, ls=":", label="1 (infinite width, t = 0)")
        ax.axhline(0.5, color="k", lw=0.8, ls="--", label="1/2: (T3) holds above")
    scale = entries[0][1].scale
    if scale == "kl":
        _kl_scale(ax)
    elif scale in ("log", "abslog") and _has_positive(ax):
        ax.set_yscale("log", nonpositive="mask")
        ax.autoscale_view()
        readable_log_axis(ax, "y")
    ax.set_title(title)
    ax.set_xlabel(time_label)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    legend_title = None
    if panel == "norms" and any(n.startswith("rademacher") for r in runs for n in r.observables) and not any(
            n.startswith("rademacher") for n, _ in entries):
        # In the legend's title, not over the data (where it would cross a curve).
        legend_title = "Rademacher bound not drawn:\nvalid for two-layer ReLU only"
    if several:  # which entry is which line style (in grey: the colours are the runs)
        if len(entries) > 1 or legend_title:
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], color="0.3", ls=line.get_linestyle(), label=line.get_label())
                       for line in ax.get_lines() if not line.get_label().startswith("_")]
            if handles:
                ax.legend(handles=handles, fontsize="xx-small", loc="best", title=legend_title,
                          title_fontsize="xx-small")
    elif ax.get_legend_handles_labels()[0]:
        if panel == "kl":  # many curves: the legend beside the axes, not over the data
            handles = None
            if not several and len(parts) > 1:  # colour = part, line style = estimator
                from matplotlib.lines import Line2D

                methods = list(dict.fromkeys((style.label.split(", ", 1)[-1], style.linestyle or "-")
                                             for _, style in entries))
                handles = ([Line2D([], [], color=f"C{k % 10}", label=part or "all") for k, part in enumerate(parts)]
                           + [Line2D([], [], color="0.3", ls=ls, label=m) for m, ls in methods])
            ax.legend(handles=handles, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      borderaxespad=0)
        else:
            legend = ax.legend(fontsize="x-small", loc="best", title=legend_title, title_fontsize="xx-small")
            legend.get_title().set_color("0.4")


def _kl_scale(ax) -> None:
    """Log y for the KL panel; symlog when an estimate is negative (kNN bias), so that negative
    values are shown, not dropped; values below 1e-12 at t = 0 (an exact 0 up to rounding) do not
    set the range."""
    values = []
    for line in ax.get_lines():
        t, v = (np.asarray(a, dtype=float) for a in line.get_data())
        keep = np.isfinite(v) & ~((t == 0) & (np.abs(v) < 1e-12))
        values.append(v[keep])
    v = np.concatenate(values) if values else np.zeros(0)
    if v.size == 0:
        return
    if np.any(v < 0):
        nonzero = np.abs(v[np.abs(v) >= 1e-12])
        thresh = 10.0 ** np.floor(np.log10(np.percentile(nonzero, 10))) if nonzero.size else 1e-3
        ax.set_yscale("symlog", linthresh=float(max(thresh, 1e-6)))
        ax.axhline(0, color="0.5", lw=0.6)
        ax.text(0.01, 0.01, f"symlog: linear for |KL| < {max(thresh, 1e-6):.0e}", transform=ax.transAxes,
                fontsize="xx-small", color="0.4", va="bottom")
    elif np.any(v > 0):
        ax.set_yscale("log", nonpositive="mask")
        positive = v[v > 0]
        ax.set_ylim(positive.min() / 2, positive.max() * 2)


def _has_positive(ax) -> bool:
    return any(np.any(np.asarray(line.get_ydata(), dtype=float) > 0) for line in ax.get_lines())


def _observables_figure(runs: Sequence[Run], labels: Sequence[str], title: str, time_scale: str | None = None):
    panels = _panels(runs)
    n = max(1, len(panels))
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    rows = (n + cols - 1) // cols
    # Several runs: one legend for the runs, right of the panels, in a strip wide enough for it.
    legend_in = 0.8 + 0.065 * max((len(s) for s in labels), default=0) if len(runs) > 1 else 0.0
    panels_in = 5.2 * cols
    fig, axes = plt.subplots(rows, cols, figsize=(panels_in + legend_in, 3.6 * rows + 0.6), squeeze=False)
    scales, time_label = None, "flow time t"
    if time_scale:
        from .curves import _time_scale

        scales = [_time_scale(run, time_scale) for run in runs]
        time_label = f"t · {time_scale.replace('**', '^')}"
    for ax, (panel, entries) in zip(axes.flat, panels.items()):
        _draw_panel(ax, panel, entries, runs, labels, scales, time_label)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no observables yet", ha="center", va="center")
    fig.suptitle(title, fontsize="medium")
    right = panels_in / (panels_in + legend_in)
    fig.tight_layout(rect=(0, 0, right, 1))
    if len(runs) > 1:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, lw=2, label=label) for c, label in zip(run_colours(len(runs)), labels)]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(right, 0.95), fontsize="x-small",
                   title=f"{len(runs)} runs", title_fontsize="small", frameon=False)
    fig.panels = list(panels)  # what was drawn, for callers and tests
    return fig


def dashboard(run: Run):
    """The observables of one run: loss, Gram eigenvalues with β²λ₀, KL, norms, movement, ..."""
    last = ""
    if "loss" in run.observables and len(run.observables["loss"]):
        loss = run.observables["loss"]
        last = f"   t = {loss.time[-1]:g}, L = {loss.final:.4g}"
    return _observables_figure([run], [Path(run.path).stem], f"{Path(run.path).name}: {_describe(run)}{last}")


def overlay(runs: Sequence[Run], labels: Sequence[str] | None = None, time_scale: str | None = None):
    """The observables of several runs on the same axes, one colour per run; with `time_scale`
    (an expression of each run's config, e.g. "beta^2"), against t times it."""
    labels = list(labels) if labels is not None else run_labels(runs)
    return _observables_figure(runs, labels, f"{len(runs)} runs", time_scale)


def _column_kinds(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(vector blocks, scalar columns): columns w_1..w_d form the block "w"; "a", "b" are scalars."""
    vectors = list(dict.fromkeys(m.group(1) for c in columns if (m := re.fullmatch(r"(.+)_\d+", c))))
    scalars = [c for c in columns if not re.fullmatch(r".+_\d+", c)]
    return vectors, scalars


def default_coordinates(columns: Sequence[str]) -> tuple[str, str]:
    """(a, |w|) for the two-layer units, (a, |v|) for the ResNet head, (|u|, |w|) for its blocks."""
    vectors, scalars = _column_kinds(columns)
    if scalars and vectors and scalars[0] == "a":
        return "a", f"|{vectors[0]}|"
    if len(vectors) >= 2:
        return f"|{vectors[0]}|", f"|{vectors[1]}|"
    if scalars and vectors:
        return scalars[0], f"|{vectors[0]}|"
    return columns[0], columns[min(1, len(columns) - 1)]


def _layer_quantities(columns: Sequence[str]) -> list[str]:
    vectors, scalars = _column_kinds(columns)
    return [f"|{v}|" for v in vectors] + scalars


def particle_view(run: Run, group: str, *, frames: int = 4, coords: Sequence[str] | None = None,
                  max_points: int = 20000, movement_frames: int = 24, clip: bool = True):
    """Particles of one group: scatter plots at several frames, histograms, movement from t = 0;
    for a group with slices > 1 (ResNet blocks), per-layer statistics.

    Frames are read one at a time; at most `max_points` particles (a fixed random subset) are drawn.
    With `clip`, the axes span the 0.5–99.5 percentiles (the figure says how many points fall
    outside); clip=False shows every point. Antithetic pairs (rows 2j, 2j + 1: (a, w), (−a, w))
    are drawn as filled and open markers; ResNet blocks are coloured by layer, with a colour bar.
    """
    g = run.particles[group]
    xname, yname = coords if coords else default_coordinates(g.columns)
    shown = g.spread_frames(frames)
    layered = g.slices > 1
    quantities = _layer_quantities(g.columns) if layered else []
    subset = _particle_subset(g.n_particles, max_points)
    data = _read_particle_frames(g, xname, yname, shown, g.spread_frames(movement_frames), subset, quantities)

    ncols = max(len(shown), 3, len(quantities) + 1)
    nrows = 2 + (1 if layered else 0)
    fig = plt.figure(figsize=(3.6 * ncols, 3.3 * nrows + 0.6))
    grid = fig.add_gridspec(nrows, ncols)
    title = f"{Path(run.path).name}: /particles/{group} ({g.n_particles} particles × {g.dim}, {len(g)} frames)"
    fig.suptitle(title, fontsize="medium")
    if not data.scatter:
        fig.text(0.5, 0.5, "no complete frame yet", ha="center")
        return fig

    antithetic = bool(run.get("init.antithetic", False)) and g.n_particles % 2 == 0
    drawn, outside = _draw_scatters(fig, grid, g, data.scatter, (xname, yname), subset, antithetic, clip)
    _note_what_is_drawn(fig, clip, outside, drawn, g.n_particles)
    _draw_histograms(fig, grid, data.scatter, (xname, yname), drawn, clip)
    _draw_movement(fig.add_subplot(grid[1, 2]), data.movement)
    if layered:
        _draw_layer_panels(fig, grid, g.slices, quantities, data, ncols, len(g) - 1)
    fig.tight_layout(rect=(0, 0.025, 1, 1))
    return fig


@dataclass
class _ParticleFrames:
    """What particle_view draws, gathered in one pass over the frames (each read once):
    scatter: frame → (t, x, y) of the drawn subset; movement: (t, RMS distance from frame 0);
    for layered groups at the first and last frames, layer_stats: frame → (t, {quantity: [slices][N/slices]})
    and layer_moves: frame → (t, mean distance from frame 0 per layer)."""

    scatter: dict[int, tuple[float, np.ndarray, np.ndarray]] = field(default_factory=dict)
    movement: list[tuple[float, float]] = field(default_factory=list)
    layer_stats: dict[int, tuple[float, dict[str, np.ndarray]]] = field(default_factory=dict)
    layer_moves: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)


def _particle_subset(n_particles: int, max_points: int):
    """A fixed random subset of max_points particle rows (sorted), or all rows."""
    rng = np.random.default_rng(0)
    return (np.sort(rng.choice(n_particles, max_points, replace=False))
            if n_particles > max_points else slice(None))


def _read_particle_frames(g, xname: str, yname: str, shown, moved, subset, quantities) -> _ParticleFrames:
    data = _ParticleFrames()
    first = g.frame(0) if len(g) else None
    last = len(g) - 1
    for i in sorted(set(shown) | set(moved) | ({last} if len(g) else set())):
        f = g.frame(i)
        if i in shown:
            data.scatter[i] = (f.time, f[xname][subset], f[yname][subset])
        if i in moved:
            data.movement.append((f.time, float(np.sqrt(np.mean(np.sum((f.value - first.value) ** 2, axis=1))))))
        if g.slices > 1 and i in (0, last):
            data.layer_stats[i] = (f.time, {q: f[q].reshape(g.slices, -1) for q in quantities})
            d = np.sqrt(np.sum((f.value - first.value) ** 2, axis=1)).reshape(g.slices, -1)
            data.layer_moves[i] = (f.time, d.mean(axis=1))
    return data


def _draw_scatters(fig, grid, g, scatter, names: tuple[str, str], subset, antithetic: bool,
                   clip: bool) -> tuple[int, int]:
    """One scatter panel per shown frame in the first row, on shared (clipped) limits; returns
    (points drawn per frame, points outside the axes in all panels)."""
    xname, yname = names
    allx = np.concatenate([s[1] for s in scatter.values()])
    ally = np.concatenate([s[2] for s in scatter.values()])
    xlim, ylim = (_limits(allx), _limits(ally)) if clip else (_limits(allx, 0), _limits(ally, 0))
    drawn = allx.size // len(scatter)
    size, alpha = float(np.clip(4000 / drawn, 2, 16)), float(np.clip(2000 / drawn, 0.3, 0.8))
    layered = g.slices > 1
    # ResNet blocks: colour by layer (row l*M + j belongs to layer l).
    layer_of = (np.arange(g.n_particles) // (g.n_particles // g.slices))[subset] if layered else None
    second = (np.arange(g.n_particles) % 2 == 1)[subset] if antithetic else np.zeros(drawn, dtype=bool)
    outside_total = 0
    for col, (i, (t, xs, ys)) in enumerate(sorted(scatter.items())):
        ax = fig.add_subplot(grid[0, col])
        last_panel = col == len(scatter) - 1
        for member, marker_kwargs in ((~second, {"lw": 0}), (second, {"facecolors": "none", "lw": 0.7})):
            if not np.any(member):
                continue
            label = None
            if antithetic:
                # The twin flips the output weights: a (one output), the block a_1 … a_c (c
                # outputs, "a"), or the ResNet blocks' u.
                flipped = "u" if layered else re.sub(r"_\d+$", "", g.columns[0])
                label = ("first of a pair" if marker_kwargs["lw"] == 0
                         else f"antithetic twin ({flipped} → −{flipped})")
            colour = (_layer_colours(g.slices, layer_of[member], marker_kwargs) if layered
                      else _frame_colour(col, marker_kwargs))
            artist = ax.scatter(xs[member], ys[member], s=size, alpha=alpha, label=label, **colour, **marker_kwargs)
            if layered and "c" in colour and last_panel:
                _layer_colour_bar(fig, ax, artist, g.slices)
        outside = int(np.sum((xs < xlim[0]) | (xs > xlim[1]) | (ys < ylim[0]) | (ys > ylim[1])))
        outside_total += outside
        ax.set(xlim=xlim, ylim=ylim, xlabel=xname, ylabel=yname, title=f"frame {i}, t = {t:g}")
        if clip and outside:
            ax.text(0.99, 0.01, f"{outside} of {xs.size} outside the axes", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize="xx-small", color="0.35")
        if antithetic and col == 0:
            ax.legend(fontsize="xx-small", loc="best", markerscale=max(1.0, 12 / size))
        ax.grid(True, alpha=0.3)
    return drawn, outside_total


def _frame_colour(col: int, marker_kwargs: dict) -> dict:
    """The panel's colour C<col>: the fill of filled markers, the edge of open ones."""
    return {"edgecolors": f"C{col}"} if "facecolors" in marker_kwargs else {"color": f"C{col}"}


def _layer_colours(slices: int, layers: np.ndarray, marker_kwargs: dict) -> dict:
    """One viridis colour per layer: mapped through c for filled markers, as edge colours for open
    ones (which take their colour from the edge)."""
    cmap = plt.get_cmap("viridis", slices)
    if "facecolors" in marker_kwargs:
        return {"edgecolors": cmap(layers)}
    return {"c": layers, "cmap": cmap, "vmin": -0.5, "vmax": slices - 0.5}


def _layer_colour_bar(fig, ax, artist, slices: int) -> None:
    bar = fig.colorbar(artist, ax=ax, pad=0.02)
    bar.set_label("layer l")
    bar.set_ticks(np.unique(np.linspace(0, slices - 1, min(slices, 9)).round()))
    bar.solids.set_alpha(1)


def _note_what_is_drawn(fig, clip: bool, outside_total: int, drawn: int, n_particles: int) -> None:
    """The footnote: the clipping of the axes and the subset of particles drawn, when they apply."""
    notes = []
    if clip:
        notes.append("axes clipped to the 0.5–99.5 percentiles of the points shown"
                     + (f" ({outside_total} point{'s' if outside_total > 1 else ''} outside in all; "
                        "plot --all-points shows them)" if outside_total else ""))
    if drawn < n_particles:
        notes.append(f"{drawn} of {n_particles} particles drawn (a fixed random subset)")
    if notes:
        fig.text(0.5, 0.005, "; ".join(notes), ha="center", va="bottom", fontsize="x-small", color="0.35")


def _draw_histograms(fig, grid, scatter, names: tuple[str, str], drawn: int, clip: bool) -> None:
    """Second row, first two panels: the histogram of each coordinate at every shown frame."""
    for col, (name, k) in enumerate(((names[0], 1), (names[1], 2))):
        ax = fig.add_subplot(grid[1, col])
        values = [(s[0], s[k]) for _, s in sorted(scatter.items())]
        lo, hi = _limits(np.concatenate([v for _, v in values]), 0.5 if clip else 0)
        bins = np.linspace(lo, hi, int(np.clip(np.sqrt(drawn), 10, 50)) + 1)
        for c, (t, v) in enumerate(values):
            ax.hist(v, bins=bins, histtype="step", density=True, color=f"C{c}", label=f"t = {t:g}")
        ax.set(xlabel=name, ylabel="density", title=f"histogram of {name}")
        ax.legend(fontsize="x-small")


MOVEMENT_MIN_FRAMES = 3


def _draw_movement(ax, movement: Sequence[tuple[float, float]]) -> None:
    """The RMS distance from frame 0 against time; with fewer than 3 frames, a note instead (two
    points make a straight line whatever the particles did)."""
    ax.set(xlabel="flow time t", ylabel="RMS |θ_k(t) − θ_k(0)|",
           title="movement from t = 0 (≥ W₂(ρ_t, ρ₀))")
    if len(movement) < MOVEMENT_MIN_FRAMES:
        ax.text(0.5, 0.5, f"not drawn: {len(movement)} snapshot{'s' if len(movement) != 1 else ''}, "
                f"needs ≥ {MOVEMENT_MIN_FRAMES}\n(output.snapshot_every)", transform=ax.transAxes,
                ha="center", va="center", fontsize="small", color="0.4")
        return
    ts, ds = zip(*movement)
    ax.plot(ts, ds, "o-", ms=3)
    ax.grid(True, alpha=0.3)


def _draw_layer_panels(fig, grid, slices: int, quantities: Sequence[str], data: _ParticleFrames, ncols: int,
                       last: int) -> None:
    """Third row (layered groups): mean ± std of each quantity per layer at the first and last
    frames, and the movement per layer at the last."""
    layers = np.arange(slices)
    many = slices > 12  # error bars at every layer would be a thicket: a line and a ±std band
    for col, q in enumerate(quantities):
        ax = fig.add_subplot(grid[2, col])
        for c, (i, (t, stats)) in enumerate(sorted(data.layer_stats.items())):
            v = stats[q]
            mean, std = v.mean(axis=1), v.std(axis=1)
            if many:
                ax.plot(layers, mean, "-", color=f"C{c}", lw=1.2, label=f"t = {t:g}")
                ax.fill_between(layers, mean - std, mean + std, color=f"C{c}", alpha=0.2, lw=0)
            else:
                ax.errorbar(layers, mean, yerr=std, fmt="o-", ms=3, capsize=2, color=f"C{c}", label=f"t = {t:g}")
        ax.set(xlabel="layer l", ylabel=f"mean ± std of {q}", title=f"{q} per layer")
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
    ax = fig.add_subplot(grid[2, ncols - 1])
    t, per_layer = data.layer_moves[last]
    ax.plot(layers, per_layer, "o-", ms=3)
    ax.set(xlabel="layer l", ylabel="mean |θ(t) − θ(0)|", title=f"movement per layer at t = {t:g}")
    ax.grid(True, alpha=0.3)


def _limits(v: np.ndarray, percent: float = 0.5) -> tuple[float, float]:
    """[lo, hi] spanning the `percent`..100−`percent` percentiles of v, padded by 5%."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(v, [percent, 100 - percent])
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return float(lo - pad), float(hi + pad)


def _unique_stems(runs: Sequence[Run]) -> list[str]:
    stems = [Path(r.path).stem for r in runs]
    return [s if stems.count(s) == 1 else f"{s}-{i}" for i, s in enumerate(stems)]


def write_plots(runs: Sequence[Run], outdir: str | os.PathLike, *, particles: bool = True, frames: int = 4,
                coords: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                dpi: int = 110, clip: bool = True, time_scale: str | None = None) -> list[Path]:
    """Writes <stem>.dashboard.png and <stem>.<group>.png per run, and overlay.png for several runs
    (against t times `time_scale` if given)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)

    for run, stem in zip(runs, _unique_stems(runs)):
        save(dashboard(run), f"{stem}.dashboard.png")
        if particles:
            for group in run.particles:
                if groups and group not in groups:
                    continue
                save(particle_view(run, group, frames=frames, coords=coords, clip=clip), f"{stem}.{group}.png")
    if len(runs) > 1:
        save(overlay(runs, time_scale=time_scale), "overlay.png")
    return written

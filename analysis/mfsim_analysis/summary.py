"""`summary RUN.h5`: the final observables, the particle groups, the parameters and the config."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .labels import order_key
from .run import Run

__all__ = ["summarize", "format_summary"]

_LONG_PARAMETERS = {"config", "config_resolved"}


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON-friendly Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def summarize(run: Run) -> dict[str, Any]:
    """Everything `summary` shows, as plain Python values (what --json prints)."""
    observables = {}
    for name in sorted(run.observables, key=order_key):
        obs = run.observables[name]
        entry: dict[str, Any] = {"rows": len(obs), "shape": list(obs.value.shape[1:])}
        if len(obs):
            entry.update(step=int(obs.step[-1]), time=float(obs.time[-1]),
                         initial=_plain(obs.initial), final=_plain(obs.final))
        observables[name] = entry
    particles = {
        name: {"frames": len(g), "particles": g.n_particles, "dim": g.dim, "columns": list(g.columns),
               "slices": g.slices, "last_step": int(g.step[-1]) if len(g) else None,
               "last_time": float(g.time[-1]) if len(g) else None}
        for name, g in run.particles.items()
    }
    return {
        "file": run.path,
        "mfsim_version": run.mfsim_version,
        "model": run.model,
        "observables": observables,
        "particles": particles,
        "lambda0": run.lambda0,
        "ntk_gram_scale": run.ntk_gram_scale,
        "parameters": {k: v for k, v in run.parameters.items() if k not in _LONG_PARAMETERS},
        "config": run.config,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        flat = np.ravel(np.asarray(value, dtype=float))
        return f"[{flat.size} values {flat.min():.4g} .. {flat.max():.4g}]" if flat.size else "[]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[j]) for r in [header] + rows) for j in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header)] + [line(r) for r in rows]


def format_summary(s: dict[str, Any]) -> str:
    p = s["parameters"]
    out = [f"{s['file']}  (mfsim {s['mfsim_version']}, model {s['model']}, "
           f"{p.get('backend', '?')}, {p.get('precision', '?')})", ""]
    if s["observables"]:
        rows = [[name, str(o["rows"]), _fmt(o.get("step")), _fmt(o.get("time")), _fmt(o.get("initial")),
                 _fmt(o.get("final"))] for name, o in s["observables"].items()]
        out += _table(["observable", "rows", "step", "time", "initial", "final"], rows)
    else:
        out.append("no observables")
    out.append("")
    if s["particles"]:
        rows = [[name, str(g["frames"]), str(g["particles"]), str(g["dim"]), str(g["slices"]),
                 _fmt(g["last_step"]), _fmt(g["last_time"]), " ".join(g["columns"])]
                for name, g in s["particles"].items()]
        out += _table(["particles", "frames", "N", "D", "slices", "last step", "last time", "columns"], rows)
        out.append("")
    if s["lambda0"] is not None:
        scale = s["ntk_gram_scale"]
        out += [f"lambda_0 = lambda_min(K) (NTK reference)  {s['lambda0']:.6g};  limit of lambda_min(G(0)): "
                f"{scale:.6g} * lambda_0 = {scale * s['lambda0']:.6g}", ""]
    out.append("parameters")
    out += ["  " + line for line in _table(["name", "value"], [[k, str(v)] for k, v in sorted(p.items())])[1:]]
    out += ["", "config (resolved)"]
    flat: list[list[str]] = []

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat.append([f"{prefix}{k}", _toml(v)])

    walk(s["config"], "")
    out += ["  " + line for line in _table(["key", "value"], flat)[1:]]
    return "\n".join(out)

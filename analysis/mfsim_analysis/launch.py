"""`launch CONFIG --grid KEY=V1,V2,... [--seeds K] [--jobs J] -o DIR`: runs a grid of mfsim runs.

Each run is `mfsim run CONFIG -o DIR/runs/NAME.h5 --set KEY=VALUE ...` for one point of the product
of the --grid keys (and, with --seeds K, of init.seed = 1..K); `--link KEY=GRID_KEY` gives KEY
the grid key's value in each run (model.head_width=model.width). A run whose file already exists is
skipped when the file's /parameters/config_resolved equals what mfsim resolves for the run now
(`mfsim run ... --print-config`: the config itself is compared, not just the end time) and the
run finished (reached t_end, the step count or loss_tol). DIR/index.json lists every run: its file,
overrides, status (ran, skipped, failed), seconds and, on failure, mfsim's message.

    from mfsim_analysis.launch import Plan, run_plan
    plan = Plan.grid("base.toml", {"model.width": [32, 64]}, seeds=3, out="runs/widths")
    results = run_plan(plan, binary="build/simulations/mfsim", jobs=2)
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from .run import NotAnMfsimFile, open_run

__all__ = ["parse_value", "parse_grid", "parse_link", "toml_value", "run_name", "RunSpec", "Plan", "RunResult",
           "run_plan", "find_mfsim", "resolved_config", "up_to_date", "INDEX"]

INDEX = "index.json"


def parse_value(text: str) -> Any:
    """A --grid or --set value as TOML reads it (32 → int, 0.5 → float, true, "relu", [..]);
    a bare word that is not TOML (relu) is taken as a string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_values(text: str) -> list[str]:
    """Splits on the commas that are not inside brackets or quotes: 1,2,["a","b"]."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def parse_link(specs: Iterable[str]) -> dict[str, str]:
    """["model.head_width=model.width"] → {"model.head_width": "model.width"}."""
    link: dict[str, str] = {}
    key_form = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+"
    for spec in specs:
        key, sep, source = (part.strip() for part in spec.partition("="))
        if not sep or not re.fullmatch(key_form, key) or not re.fullmatch(key_form, source):
            raise ValueError(f"--link {spec!r}: expected SECTION.KEY=SECTION.GRID_KEY "
                             "(e.g. model.head_width=model.width)")
        if key in link:
            raise ValueError(f"--link {key} given twice")
        link[key] = source
    return link


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """["model.width=32,64", "model.beta=1,2"] → {"model.width": [32, 64], "model.beta": [1, 2]}."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", key):
            raise ValueError(f"--grid {spec!r}: expected SECTION.KEY=V1,V2,... (e.g. model.width=32,64)")
        if key in grid:
            raise ValueError(f"--grid {key} given twice")
        parsed = [parse_value(v) for v in _split_values(values)]
        if not parsed:
            raise ValueError(f"--grid {spec!r}: no values")
        grid[key] = parsed
    return grid


def toml_value(value: Any) -> str:
    """A Python value as the TOML text of --set KEY=VALUE."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def _name_value(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else toml_value(value).strip('"')
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def run_name(overrides: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    """File stem of a run: width=32_seed=1 (the last key component, or the whole key where two
    keys share their last component)."""
    keys = list(keys if keys is not None else overrides)
    last = [k.split(".")[-1] for k in keys]
    names = [k.split(".")[-1] if last.count(k.split(".")[-1]) == 1 else k.replace(".", "-") for k in keys]
    return "_".join(f"{n}={_name_value(overrides[k])}" for n, k in zip(names, keys)) or "run"


@dataclass(frozen=True)
class RunSpec:
    path: Path
    overrides: dict[str, Any]


@dataclass
class Plan:
    config: Path
    runs: list[RunSpec]
    out: Path | None = None  # the folder of index.json (None: no index)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    link: dict[str, str] = field(default_factory=dict)  # key -> the grid key whose value it takes

    @classmethod
    def grid(cls, config, grid: dict[str, list[Any]], *, seeds: int = 0, seed_key: str = "init.seed",
             first_seed: int = 1, fixed: dict[str, Any] | None = None, link: dict[str, str] | None = None,
             out) -> "Plan":
        """The product of the grid (and of seeds 1..K under seed_key), files DIR/runs/NAME.h5;
        `fixed` overrides apply to every run (not in the names); `link` {KEY: GRID_KEY} sets KEY to
        GRID_KEY's value in every run (model.head_width follows model.width; not in the names)."""
        out = Path(out)
        full = dict(grid)
        if seeds:
            if seed_key in full:
                raise ValueError(f"--seeds and --grid {seed_key} both set {seed_key}")
            full[seed_key] = list(range(first_seed, first_seed + seeds))
        link = dict(link or {})
        for key, source in link.items():
            if source not in full:
                raise ValueError(f"--link {key}={source}: {source} is not a --grid key")
            if key in full or key in (fixed or {}):
                raise ValueError(f"--link {key}={source}: {key} is also set by --grid or --set")
        keys = list(full)
        runs = []
        for values in product(*full.values()) if keys else [()]:
            point = dict(zip(keys, values))
            linked = {key: point[source] for key, source in link.items()}
            runs.append(RunSpec(out / "runs" / f"{run_name(point, keys)}.h5",
                                {**(fixed or {}), **point, **linked}))
        names = [r.path for r in runs]
        if len(set(names)) != len(names):
            raise ValueError("two grid points give the same file name (values that differ only in "
                             "characters a file name cannot hold)")
        return cls(Path(config), runs, out, full, dict(fixed or {}), link)


@dataclass
class RunResult:
    path: Path
    overrides: dict[str, Any]
    status: str  # "ran", "skipped" or "failed"
    seconds: float = 0.0
    error: str = ""

    def as_dict(self, root: Path | None) -> dict[str, Any]:
        file = os.path.relpath(self.path, root) if root else str(self.path)
        out = {"file": file, "overrides": self.overrides, "status": self.status, "seconds": round(self.seconds, 3)}
        if self.error:
            out["error"] = self.error
        return out


def find_mfsim(given: str | os.PathLike | None = None) -> Path:
    """--mfsim (which must exist), else $MFSIM_EXECUTABLE, else build/simulations/mfsim of this
    checkout, else mfsim on PATH: the one binary finder of the analysis package and the experiments."""
    if given:
        if not Path(given).is_file():
            raise ValueError(f"no mfsim binary at {given}")
        return Path(given)
    here = Path(__file__).resolve().parents[2] / "build" / "simulations" / "mfsim"
    for candidate in (os.environ.get("MFSIM_EXECUTABLE"), here, shutil.which("mfsim")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ValueError(f"no mfsim binary (tried $MFSIM_EXECUTABLE, {here} and PATH): build it, or pass --mfsim")


def _command(binary: Path, config: Path, spec: RunSpec) -> list[str]:
    command = [str(binary), "run", str(config), "-o", str(spec.path)]
    for key, value in spec.overrides.items():
        command += ["--set", f"{key}={toml_value(value)}"]
    return command


def resolved_config(binary: Path, config: Path, spec: RunSpec) -> str:
    """What mfsim resolves the run's config to (mfsim run ... --print-config); raises ValueError
    with mfsim's message when the config or an override is refused."""
    result = subprocess.run(_command(binary, config, spec) + ["--print-config"], capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"{spec.path.name}: {result.stderr.strip() or 'mfsim --print-config failed'}")
    return result.stdout


def _finished(run) -> bool:
    if "loss" not in run.observables or len(run.observables["loss"]) == 0:
        return False
    loss = run.observables["loss"]
    flow = run.config.get("flow", {})
    t_end, steps, tol = flow.get("t_end"), flow.get("steps"), flow.get("loss_tol", 0.0)
    if t_end is not None and loss.time[-1] >= float(t_end) - 1e-9 * max(1.0, abs(float(t_end))):
        return True
    if steps is not None and loss.step[-1] >= int(steps):
        return True
    return bool(tol) and float(loss.value[-1]) <= float(tol)


def up_to_date(path: Path, expected_resolved: str) -> bool:
    """The file exists, is an mfsim run of exactly this resolved config, and finished."""
    if not Path(path).is_file():
        return False
    try:
        with open_run(path, attempts=2) as run:
            return run.parameters.get("config_resolved") == expected_resolved and _finished(run)
    except (NotAnMfsimFile, KeyError, OSError, ValueError):
        return False


class _Progress:
    """A progress bar on stderr (a line per run when stderr is not a terminal)."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.skipped, self.failed = total, 0, 0, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()

    def update(self, result: RunResult) -> None:
        self.done += 1
        self.skipped += result.status == "skipped"
        self.failed += result.status == "failed"
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(1, self.total))
        elapsed = time.monotonic() - self.start
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} runs"
        extra = f" ({self.skipped} skipped, {self.failed} failed) {elapsed:.0f} s"
        if self.tty:
            self.stream.write(f"\r{bar}{extra}" + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(f"{bar}{extra}: {result.status} {result.path.name}"
                              + (f": {result.error}" if result.error else "") + "\n")
        self.stream.flush()


def run_plan(plan: Plan, *, binary: str | os.PathLike | None = None, jobs: int = 2, reuse: bool = True,
             cost: Callable[[dict], float] | None = None, progress: bool = True, stream=None,
             keep_going: bool = True) -> list[RunResult]:
    """Runs the plan's runs `jobs` at a time (each its own mfsim process), skipping those up to
    date when `reuse`; the costliest first when `cost` is given. Writes DIR/index.json. With
    keep_going false, the first failure raises RuntimeError (after the index is written)."""
    binary = find_mfsim(binary)
    if not plan.config.is_file():
        raise ValueError(f"{plan.config}: no such config file")
    order = sorted(plan.runs, key=lambda s: cost(s.overrides), reverse=True) if cost else list(plan.runs)
    bar = _Progress(len(order), stream, progress)
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:  # one core per run rather than oversubscribing
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))

    def one(spec: RunSpec) -> RunResult:
        start = time.monotonic()
        try:
            expected = resolved_config(binary, plan.config, spec)
        except ValueError as e:
            return RunResult(spec.path, spec.overrides, "failed", time.monotonic() - start, str(e))
        if reuse and up_to_date(spec.path, expected):
            return RunResult(spec.path, spec.overrides, "skipped", time.monotonic() - start)
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(_command(binary, plan.config, spec) + ["--force", "-q"],
                                capture_output=True, text=True, env=env)
        seconds = time.monotonic() - start
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            return RunResult(spec.path, spec.overrides, "failed", seconds, message)
        return RunResult(spec.path, spec.overrides, "ran", seconds)

    results: dict[Path, RunResult] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, s) for s in order]):
            r = future.result()
            results[r.path] = r
            bar.update(r)
    ordered = [results[s.path] for s in plan.runs]
    if plan.out is not None:
        write_index(plan, ordered, binary)
    failed = [r for r in ordered if r.status == "failed"]
    if failed and not keep_going:
        raise RuntimeError(f"{len(failed)} of {len(ordered)} runs failed; first: {failed[0].path.name}: "
                           f"{failed[0].error}")
    return ordered


def write_index(plan: Plan, results: Sequence[RunResult], binary: Path) -> Path:
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    index = {
        "config": str(plan.config.resolve()),
        "mfsim": str(binary),
        "grid": plan.grid,
        "set": plan.fixed,
        "link": plan.link,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": [r.as_dict(out) for r in results],
    }
    path = out / INDEX
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def index_files(folder: str | os.PathLike) -> list[Path]:
    """The run files a launch folder holds: those of DIR/index.json that exist (not failed),
    else every DIR/**/*.h5."""
    folder = Path(folder)
    index = folder / INDEX
    if index.is_file():
        runs = json.loads(index.read_text())["runs"]
        return [folder / r["file"] for r in runs if r["status"] != "failed" and (folder / r["file"]).is_file()]
    return sorted(folder.rglob("*.h5"))

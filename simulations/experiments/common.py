"""What every experiment script shares: the mfsim binary (found as `mfsim-analysis launch` finds
it), running a set of configurations in parallel (two at a time by default: the machines these run
on have two cores), the common command line, and writing the figure and the numbers.

An experiment describes each run as (output path, {key: value} overrides of its TOML config);
`run_all` skips runs already complete when --reuse is given, and runs the rest, the costliest
first so that the pool ends on short runs.

The scripts import the analysis package: run them with `PYTHONPATH=analysis` from the repository
root (as their ctest entries do), or after `pip install ./analysis`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

try:
    from mfsim_analysis.launch import Plan, RunSpec, find_mfsim, run_plan, toml_value
except ModuleNotFoundError as e:
    if e.name != "mfsim_analysis":
        raise
    sys.exit(f"{Path(sys.argv[0]).name}: error: the mfsim_analysis package is not importable: run the "
             "experiments with PYTHONPATH=analysis from the repository root, or pip install ./analysis")

REPO = Path(__file__).resolve().parents[2]

__all__ = ["REPO", "BASE_CONFIG", "write_config", "parser", "mfsim_binary", "sklearn_data", "run_all", "save_figure",
           "write_report", "Timer", "pyplot"]

# The configuration every experiment starts from: the two-layer tanh network on a ReLU teacher, on
# the sphere in d = 5, n = 20. Each experiment states only what it changes (write_config).
BASE_CONFIG = {
    "model": {"kind": "two_layer", "activation": "tanh", "width": 64, "beta": 1.0, "bias": True},
    "data": {"kind": "teacher", "dim": 5, "n_train": 20, "n_test": 100, "inputs": "sphere", "teacher_width": 1,
             "teacher_activation": "relu", "seed": 1},
    "init": {"kind": "gaussian", "seed": 1, "antithetic": False},
    "flow": {"integrator": "heun", "dt": 0.1, "t_end": 1.0},
    "output": {"observe_every": 10, "snapshot_every": 1000000},
}


def write_config(path: Path, title: str, changes: dict) -> Path:
    """Writes BASE_CONFIG with `changes` to `path` as TOML under a `# title` line: a "section.key"
    entry sets one key, a "section" entry with a dict replaces the whole section (the ResNet's
    model). The runs then vary it further through --set."""
    sections = {name: dict(keys) for name, keys in BASE_CONFIG.items()}
    for key, value in changes.items():
        if "." in key:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = value
        else:
            sections[key] = dict(value)
    lines = [f"# {title}"]
    for section, keys in sections.items():
        lines += ["", f"[{section}]"] + [f"{name} = {toml_value(value)}" for name, value in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def parser(doc: str, *, seeds: str | None = None) -> argparse.ArgumentParser:
    """The options every experiment has: --out, --quick, --jobs, --mfsim, --reuse."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    p.add_argument("--out", required=True, type=Path, help="folder for the runs and the figure")
    p.add_argument("--quick", action="store_true", help="a small version (seconds) for the tests")
    if seeds:
        p.add_argument("--seeds", type=int, help=f"number of initialisation seeds ({seeds})")
    p.add_argument("--jobs", type=int, default=2, help="mfsim runs at once (default 2)")
    p.add_argument("--mfsim", help="the mfsim binary (default: $MFSIM_EXECUTABLE, build/simulations/mfsim, PATH)")
    p.add_argument("--reuse", action="store_true", help="keep runs already complete in DIR/runs")
    return p


def mfsim_binary(given: str | None, script: str) -> Path:
    """--mfsim, else $MFSIM_EXECUTABLE, else build/simulations/mfsim, else PATH (the analysis
    package's find_mfsim); exits with one line naming `script` when there is none."""
    try:
        return find_mfsim(given)
    except ValueError as e:
        sys.exit(f"{script}: error: {e}")


def sklearn_data(binary: Path, out: Path, dataset: str, script: str, *import_options: str) -> Path:
    """OUT/DATASET.h5: one of scikit-learn's bundled data sets (shipped by Debian's python3-sklearn,
    no download), exported by simulations/data/export_sklearn.py and read by `mfsim data import`
    with `import_options`; exits with one line naming `script` when scikit-learn is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sys.exit(f"{script}: error: scikit-learn is not installed (apt-get install python3-sklearn)")
    csv, data = out / f"{dataset}.csv", out / f"{dataset}.h5"
    subprocess.run([sys.executable, str(REPO / "simulations/data/export_sklearn.py"), dataset, str(csv)],
                   check=True, capture_output=True)
    subprocess.run([str(binary), "data", "import", str(csv), "-o", str(data), "--force", "--label-column", "target",
                    *import_options], check=True, capture_output=True)
    return data


def run_all(binary: Path, config: Path, runs: list[tuple[Path, dict]], *, jobs: int = 2, reuse: bool = False,
            cost=None) -> int:
    """Runs `mfsim run config -o path --set key=value ...` for each (path, overrides) through the
    sweep machinery (mfsim_analysis.launch, as `mfsim-analysis launch` does); returns how many ran.
    With `reuse`, a run whose file holds the same resolved config and finished is kept; `cost`
    orders the runs, largest first. Raises RuntimeError naming the first run that failed."""
    plan = Plan(Path(config), [RunSpec(Path(p), dict(sets)) for p, sets in runs])
    results = run_plan(plan, binary=binary, jobs=jobs, reuse=reuse, cost=cost, progress=False,
                       keep_going=False)
    return sum(r.status == "ran" for r in results)


def save_figure(fig, path: Path, dpi: int = 80) -> None:
    """PNG small enough to commit (the gallery keeps each well under 150 kB). Every panel that
    shows data must say what its y axis is: a figure with an unlabelled one is refused (the quick
    experiment tests run every figure through here)."""
    import matplotlib.pyplot as plt

    unlabelled = [ax.get_title() or f"panel {i + 1}" for i, ax in enumerate(fig.axes)
                  if ax.has_data() and not ax.get_ylabel()]
    if unlabelled:
        plt.close(fig)
        raise ValueError(f"{path.name}: panels without a y label: {', '.join(unlabelled)}")

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def write_report(path: Path, report: dict) -> None:
    def plain(v):
        if hasattr(v, "as_dict"):
            return v.as_dict()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if hasattr(v, "tolist"):
            return v.tolist()
        return v

    path.write_text(json.dumps(plain(report), indent=2))


class Timer:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.start


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

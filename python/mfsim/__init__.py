"""mfsim in-process: configure, run and inspect mean-field simulations from Python.

    import mfsim
    cfg = mfsim.Config.from_toml("simulations/configs/two_layer_meanfield.toml")
    sim = mfsim.Simulation(cfg.with_overrides({"model.width": 4096, "flow.t_end": 20}))
    result = sim.run(output="runs/a.h5")         # output=None: nothing written
    result.observables["loss"].values

The simulator is the library the `mfsim` binary runs (same config keys, checks and numbers); see
docs/python.md. The analysis package comes with it: mfsim.analysis, mfsim.open(path).
"""

from __future__ import annotations

import atexit
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from . import _core

__all__ = [
    "Config", "Data", "Simulation", "Result", "Observable", "NonFiniteError", "initialize",
    "backend", "open",
]

__version__ = "0.1.0"

NonFiniteError = _core.NonFiniteError
NonFiniteError.__doc__ = ("The flow produced a non-finite loss or particle; the simulation holds the "
                          "last finite state (and the output file ends on it).")


def initialize(num_threads: int | None = None) -> None:
    """Starts Kokkos with `num_threads` threads (a host backend's; ignored by Serial). Optional:
    the first Data, Config or Simulation starts it with the backend's default. Kokkos is finalised
    at interpreter exit."""
    _core.initialize(num_threads)


def backend() -> dict:
    """The Kokkos backend, its threads, the precision and the kernels' instruction set."""
    return _core.backend()


@atexit.register
def _finalize() -> None:
    _core.finalize()


# ---- config ------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    """A Python value as a TOML value (what the CLI's --set takes after '=')."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(os.fspath(value))  # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) as a config value")


def _overrides(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """{"model.width": 8} or {"model": {"width": 8}} -> ["model.width=8"]."""
    out = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _overrides(value, name + ".")
        else:
            out.append(f"{name}={_toml_value(value)}")
    return out


class Config:
    """A run configuration: the CLI's TOML keys, validated as the CLI validates them.

    Config({"model.width": 512, "flow": {"dt": 0.05}}) starts from the defaults;
    Config.from_toml(path) from a file; with_overrides({...}) is the CLI's --set. A bad key or
    value raises ValueError with the CLI's one-line message.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None):
        self._path: str | None = None
        self._text = ""
        self._source = "<python>"
        self._list = _overrides(settings or {})
        self._core = _core.parse_config(self._text, self._list, self._source)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "Config":
        self = cls.__new__(cls)
        self._path, self._text, self._source, self._list = os.fspath(path), "", os.fspath(path), []
        self._core = _core.load_config(self._path, [])
        return self

    def with_overrides(self, settings: Mapping[str, Any]) -> "Config":
        """A new Config: this one with `settings` applied on top (dotted keys or nested dicts)."""
        other = Config.__new__(Config)
        other._path, other._text, other._source = self._path, self._text, self._source
        other._list = self._list + _overrides(settings)
        other._core = other._parsed(other._list)
        return other

    def _parsed(self, overrides: list[str]):
        if self._path is not None:
            return _core.load_config(self._path, overrides)
        return _core.parse_config(self._text, overrides, self._source)

    @property
    def resolved(self) -> str:
        """Every key with its value (TOML), as the run's /parameters/config_resolved stores it."""
        return self._core.resolved

    def to_dict(self) -> dict:
        import tomllib
        return tomllib.loads(self.resolved)

    def __getitem__(self, key: str) -> Any:
        """cfg["model.width"]: a resolved value."""
        node: Any = self.to_dict()
        for part in key.split("."):
            node = node[part]
        return node

    def __repr__(self) -> str:
        origin = self._path or "defaults"
        return f"mfsim.Config({origin!r}, overrides={self._list!r})"


# ---- data --------------------------------------------------------------------------------------

def _features(name: str, a: Any) -> np.ndarray:
    x = np.asarray(a)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name}: has dtype {x.dtype}; the inputs must be numbers")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: has shape {x.shape}; the inputs must be 2-D (samples x dim)")
    return x


def _labels(name: str, a: Any) -> np.ndarray:
    y = np.asarray(a)
    if y.dtype.kind not in "fiub":
        raise ValueError(f"{name}: has dtype {y.dtype}; the labels must be numbers")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0].copy()
    if y.ndim != 1:
        raise ValueError(f"{name}: has shape {y.shape}; the labels must be 1-D (one per sample)")
    return y


def _require_finite(name: str, a: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        where = ", ".join(str(int(i)) for i in bad[0])
        raise ValueError(f"{name}[{where}] = {a[tuple(bad[0])]}; the data must hold finite values")


class Data:
    """Training and test samples from arrays (float32/float64, C or Fortran order), copied into
    mfsim's memory once; the arrays given are not kept. x: (n, d), y: (n,). x_test/y_test may be
    left out (no test loss)."""

    def __init__(self, x_train, y_train, x_test=None, y_test=None):
        x = _features("x_train", x_train)
        y = _labels("y_train", y_train)
        if (x_test is None) != (y_test is None):
            raise ValueError("x_test and y_test: give both or neither")
        if x_test is None:
            xt, yt = np.zeros((0, x.shape[1])), np.zeros(0)
        else:
            xt, yt = _features("x_test", x_test), _labels("y_test", y_test)
        if x.shape[0] == 0:
            raise ValueError("x_train: has 0 rows (no training samples)")
        if x.shape[1] == 0:
            raise ValueError("x_train: has dimension 0")
        for xs, ys, part in ((x, y, "train"), (xt, yt, "test")):
            if xs.shape[0] != ys.shape[0]:
                raise ValueError(f"x_{part} has {xs.shape[0]} rows but y_{part} has {ys.shape[0]}")
        if xt.shape[1] != x.shape[1]:
            raise ValueError(f"x_test has dimension {xt.shape[1]}, the training inputs {x.shape[1]}")
        for name, a in (("x_train", x), ("y_train", y), ("x_test", xt), ("y_test", yt)):
            _require_finite(name, a)
        self.n_train, self.dim = x.shape
        self.n_test = xt.shape[0]
        self._core = _core.Data(x, y, xt, yt)

    def __repr__(self) -> str:
        return f"mfsim.Data(n_train={self.n_train}, n_test={self.n_test}, dim={self.dim})"


# ---- runs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Observable:
    """One observable's rows: steps, times, values (values[i] of shape () or the observable's)."""
    steps: np.ndarray
    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Result:
    """What a run() did: its observables (name -> Observable), the final step and time, why it
    stopped (steps, t_end, loss_tol, callback, signal), and the output file written, if any."""
    observables: dict
    step: int
    time: float
    loss: float
    stopped_by: str
    steps_run: int
    seconds: float
    output: str | None

    def __getitem__(self, name: str) -> Observable:
        return self.observables[name]


def _tqdm_progress(enabled: bool | None):
    """A progress function drawing a tqdm bar (tqdm.auto: a widget in a notebook), or None."""
    if enabled is False:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise ValueError("progress=True needs tqdm (pip install tqdm)") from None
        return None, None
    bar = tqdm(unit="step", leave=False)

    def update(done, step, time, loss, final):
        bar.n = done
        bar.set_postfix(t=f"{time:.4g}", loss=f"{loss:.4g}", refresh=False)
        bar.refresh()
        if final:
            bar.close()
    return update, bar


class Simulation:
    """A simulation held in memory: the config's model and initial particles, on the config's
    data or on `data` (mfsim.Data). Construction checks everything the CLI checks (ValueError,
    nothing written). run() runs the config's flow from the current state; step(n), evaluate(),
    predict(x) and particles(group) give finer control."""

    def __init__(self, config: Config | Mapping[str, Any] | str | os.PathLike,
                 data: Data | None = None):
        if isinstance(config, (str, os.PathLike)):
            config = Config.from_toml(config)
        elif not isinstance(config, Config):
            config = Config(config)
        if data is not None and not isinstance(data, Data):
            data = Data(*data)
        self.config = config
        self.data = data
        self._core = _core.Simulation(config._core, data._core if data is not None else None)
        self._warn_notes()

    def _warn_notes(self) -> None:
        notes = self._core.notes().strip()
        if notes:
            import warnings
            for line in notes.splitlines():
                warnings.warn(line, stacklevel=3)

    @property
    def time(self) -> float:
        """The flow time of the current state."""
        return self._core.time

    @property
    def step_index(self) -> int:
        """The step number of the current state."""
        return self._core.step_index

    @property
    def groups(self) -> list[str]:
        """The model's particle groups (two_layer; resnet_blocks, resnet_head, ...)."""
        return self._core.groups()

    def columns(self, group: str) -> list[str]:
        """The names of a group's coordinates (a, w_0, ..., b)."""
        return self._core.columns(group)

    def particles(self, group: str | None = None, *, copy: bool = False) -> np.ndarray:
        """The group's current particles (rows: particles, columns: columns(group)): a read-only
        view of mfsim's memory, no copy; it stays valid while the simulation lives and follows
        the state as the flow moves it. copy=True: a writable copy, which keeps this state.
        For torch, jax or cupy without a copy: particles_dlpack(group)."""
        if group is None:
            group = self.groups[0]
        view = self._core.particles(group)
        return np.array(view) if copy else view

    def particles_dlpack(self, group: str | None = None):
        """The group's current particles for a DLPack consumer, without a copy:
        torch.from_dlpack(sim.particles_dlpack()), jax.dlpack.from_dlpack(...),
        np.from_dlpack(...). A view of the state, valid while the simulation lives, that follows
        the state as the flow moves it; in a CUDA build it is GPU memory. Treat it as read-only:
        a consumer asking for a versioned capsule (DLPack >= 1.0) gets it marked read-only, an
        older one (numpy 1.x, torch 1.x) cannot be told, and a write through it would change
        the state the next step starts from. The object also supports the buffer protocol
        (np.asarray gives a read-only view)."""
        if group is None:
            group = self.groups[0]
        return self._core.particles_dlpack(group)

    def run(self, output: str | os.PathLike | None = None, *, overwrite: bool = False,
            callback: Callable[[dict], Any] | None = None, every: int = 0,
            progress: bool | None = None) -> Result:
        """Runs the config's flow from the current state (flow.steps more steps, or to
        flow.t_end, or to flow.loss_tol) and returns its observables from memory.

        output: an H5MD file to write as `mfsim run -o output` writes it (None: nothing on disk);
        an existing file is refused unless overwrite. callback(point), every `every` steps (0:
        output.observe_every) and at the first and last point, sees point["step"], ["time"],
        ["loss"] and ["observables"]; returning False ends the run there. Ctrl-C ends the run at
        the next point, writes it, and raises KeyboardInterrupt. progress: a tqdm bar (None: when
        tqdm is installed).
        """
        if every < 0:
            raise ValueError("every: must be at least 0")
        config = self.config
        if output is not None:
            config = config.with_overrides({"output.path": os.fspath(output)})
        update, bar = _tqdm_progress(progress)
        try:
            rows, info = self._core.run(config._core, output is not None, overwrite, callback, every,
                                        update)
        finally:
            if bar is not None:
                bar.close()
        self._warn_notes()
        observables = {name: Observable(*series) for name, series in rows.items()}
        return Result(observables=observables, step=info["step"], time=info["time"],
                      loss=info["loss"], stopped_by=info["stopped_by"],
                      steps_run=info["steps_run"], seconds=info["seconds"],
                      output=os.fspath(output) if output is not None else None)

    def step(self, n: int = 1) -> int:
        """Takes n steps of flow.dt (not observed, not written; no end time or loss tolerance).
        Returns the steps taken (fewer after Ctrl-C, which then raises KeyboardInterrupt)."""
        return self._core.step(int(n))

    def evaluate(self) -> dict:
        """The full-batch training loss and the test loss of the current state."""
        return self._core.evaluate()

    def predict(self, x) -> np.ndarray:
        """The network's outputs f(x) at the current state, one per row of x."""
        return self._core.predict(_features("x", x))

    def __repr__(self) -> str:
        return (f"mfsim.Simulation(groups={self.groups}, step={self.step_index}, "
                f"time={self.time:.6g})")


def open(path: str | os.PathLike, **kwargs):
    """Opens an mfsim output file with the analysis reader (mfsim_analysis.open_run)."""
    from mfsim_analysis import open_run
    return open_run(path, **kwargs)


def __getattr__(name: str):
    # mfsim.analysis without its own import statement, loaded on first use so that `import mfsim`
    # does not pull in matplotlib.
    if name == "analysis":
        import importlib
        return importlib.import_module(".analysis", __name__)
    raise AttributeError(f"module 'mfsim' has no attribute {name!r}")

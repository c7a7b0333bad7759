"""Reading an mfsim H5MD file: `open_run(path)` gives a `Run`.

A Run is a snapshot of the file as it was when opened: each time series counts only its complete
rows (a row whose `step`, `time` and `value` all exist, with steps increasing), so a file that the
mfsim binary is still writing reads as the frames finished so far. Particle frames are read one at
a time on demand; observables and data are small and read on first use.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

__all__ = ["NotAnMfsimFile", "open_run", "Run", "Observable", "ParticleGroup", "Frame", "Data"]


class NotAnMfsimFile(ValueError):
    """The path cannot be read as an mfsim output: missing, not HDF5, or not written by mfsim."""


def open_run(path: str | os.PathLike, *, attempts: int = 20, wait_s: float = 0.05) -> "Run":
    """Opens an mfsim H5MD file read-only, without HDF5 file locking (mfsim may still be writing).

    A file caught in the middle of a write can momentarily fail to open; such failures are retried
    `attempts` times, `wait_s` apart. Raises NotAnMfsimFile with a one-line message otherwise.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NotAnMfsimFile(f"{path}: no such file")
    if os.path.isdir(path):
        raise NotAnMfsimFile(f"{path}: is a directory, not an mfsim H5MD file")
    if not h5py.is_hdf5(path):
        raise NotAnMfsimFile(f"{path}: not an HDF5 file, so not an mfsim H5MD file")
    last_error: Exception | None = None
    for _ in range(max(1, attempts)):
        try:
            source = _File(path, attempts, wait_s)
        except OSError as e:
            last_error = e
            time.sleep(wait_s)
            continue
        try:
            return Run(path, source)
        except NotAnMfsimFile:
            source.close()
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as e:  # metadata caught mid-write
            source.close()
            last_error = e
            time.sleep(wait_s)
    raise NotAnMfsimFile(f"{path}: cannot read the file ({last_error})")


class _File:
    """The open HDF5 file, for reads of rows that were complete when the Run was opened.

    While mfsim appends, a reader's view of the file goes stale: a read may then fail (the chunk
    index points past the end the reader knows of). Such a read reopens the file and tries again;
    the rows asked for are never rewritten, so the retry returns what the first read would have.
    """

    def __init__(self, path: str, attempts: int, wait_s: float):
        self.path, self.attempts, self.wait_s = path, max(1, attempts), wait_s
        self.handle = h5py.File(path, "r", locking=False)

    def read(self, name: str, selection: Any = ()) -> np.ndarray:
        last_error: Exception | None = None
        for attempt in range(self.attempts):
            try:
                if attempt:
                    self.reopen()
                return np.asarray(self.handle[name][selection])
            except (OSError, KeyError, RuntimeError) as e:
                last_error = e
                time.sleep(self.wait_s)
        raise OSError(f"{self.path}: cannot read /{name} ({last_error})")

    def reopen(self) -> None:
        self.handle.close()
        self.handle = h5py.File(self.path, "r", locking=False)

    def close(self) -> None:
        if self.handle:
            self.handle.close()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _attribute(value: Any) -> Any:
    """A /parameters attribute as Python: numbers (mfsim writes plain numbers as numeric
    attributes) as int or float, anything else as text."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (np.integer, int)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return _attribute(value.reshape(())[()])
    return _text(value)


def _texts(value: Any) -> list[str]:
    return [_text(v) for v in np.atleast_1d(value)]


def _committed_rows(steps: np.ndarray, committed_step: int) -> int:
    """The leading rows whose steps increase up to the commit marker (after them, the rows of a run
    killed mid-write may hold anything, such as a step still the fill value)."""
    ok = steps <= committed_step
    ok[1:] &= steps[1:] > steps[:-1]
    return int(ok.size if ok.all() else np.argmin(ok))


def _complete_rows(element: h5py.Group) -> int:
    """Rows of an H5MD time series that are complete: step, time and value all have them.

    mfsim commits rows at each flush: the root attribute `committed_step` says that every row at or
    before that step is complete on disk, so only those count (a run killed mid-write leaves every
    counted frame with its observation rows). Files without the marker (older mfsim) count every
    row whose step, time and value exist, except a last step row still holding the fill value (not
    larger than the step before it).
    """
    if not all(k in element for k in ("step", "time", "value")):
        return 0
    rows = min(element[k].shape[0] if element[k].ndim else 1 for k in ("step", "time", "value"))
    committed = element.file.attrs.get("committed_step")
    if committed is not None:
        return _committed_rows(np.asarray(element["step"][:rows]), int(np.asarray(committed).reshape(())))
    if rows >= 2:
        steps = element["step"][max(0, rows - 2) : rows]
        if steps[-1] <= steps[0]:
            rows -= 1
    return rows


@dataclass(frozen=True)
class Observable:
    """One observable: value[i] was computed at step[i], flow time time[i]."""

    name: str
    step: np.ndarray
    time: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    @property
    def final(self) -> Any:
        return self.value[-1]

    @property
    def initial(self) -> Any:
        return self.value[0]

    def at_time(self, t: float) -> Any:
        """The value observed at the flow time closest to t."""
        return self.value[int(np.argmin(np.abs(self.time - t)))]


class Observables(Mapping):
    """The /observables of a run, by name; each is read on first access."""

    def __init__(self, source: _File):
        self._source = source
        group = source.handle.get("observables")
        # Rows complete when the run was opened: later reads stop there.
        self._rows = {name: _complete_rows(element) for name, element in group.items()} if group else {}
        self._cache: dict[str, Observable] = {}

    def __getitem__(self, name: str) -> Observable:
        if name not in self._rows:
            raise KeyError(f"no observable {name!r} (the file has {', '.join(self._rows) or 'none'})")
        if name not in self._cache:
            rows, read = slice(0, self._rows[name]), self._source.read
            self._cache[name] = Observable(
                name,
                read(f"observables/{name}/step", rows).astype(np.int64),
                read(f"observables/{name}/time", rows).astype(float),
                read(f"observables/{name}/value", rows),
            )
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(frozen=True)
class Frame:
    """One particle snapshot: value[k] is particle k, its columns named by `columns`."""

    index: int
    step: int
    time: float
    value: np.ndarray  # [N][D]
    columns: tuple[str, ...]
    slices: int = 1
    log_density: np.ndarray | None = None

    def __getitem__(self, column: str) -> np.ndarray:
        """A column by name ("a", "w_1", "b"), or the row norm of a block ("|w|", "|u|")."""
        if column.startswith("|") and column.endswith("|"):
            return np.linalg.norm(self.block(column[1:-1]), axis=1)
        try:
            return self.value[:, self.columns.index(column)]
        except ValueError:
            raise KeyError(f"no column {column!r} (columns: {', '.join(self.columns)})") from None

    def block(self, prefix: str) -> np.ndarray:
        """The columns prefix_1..prefix_d as an [N][d] array (e.g. block("w") gives the weights)."""
        index = [j for j, c in enumerate(self.columns) if re.fullmatch(re.escape(prefix) + r"_\d+", c)]
        if not index:
            raise KeyError(f"no columns {prefix}_1.. (columns: {', '.join(self.columns)})")
        return self.value[:, index]

    def layers(self) -> np.ndarray:
        """The particles as [slices][N/slices][D]: for the ResNet blocks, [L][M][2d+1], row l*M+j."""
        return self.value.reshape(self.slices, -1, self.value.shape[1])


class ParticleGroup:
    """A group of /particles: frames are read from the file one at a time, when asked for."""

    def __init__(self, name: str, source: _File):
        self.name = name
        self._source = source
        group = source.handle[f"particles/{name}"]
        position = group["position"]
        self._value_path = f"particles/{name}/position/value"
        self.n_frames = _complete_rows(position)
        self.step = np.asarray(position["step"][: self.n_frames], dtype=np.int64)
        self.time = np.asarray(position["time"][: self.n_frames], dtype=float)
        value = position["value"]
        _, self.n_particles, self.dim = value.shape
        attrs = value.attrs
        self.columns = tuple(_texts(attrs["columns"])) if "columns" in attrs else tuple(
            f"c{j}" for j in range(self.dim)
        )
        self.init_std = np.asarray(attrs["init_std"], dtype=float) if "init_std" in attrs else None
        self.slices = int(np.atleast_1d(group.attrs.get("slices", 1))[0])
        self._log_density_steps = None
        if "log_density" in group:
            element = group["log_density"]
            self._log_density_steps = np.asarray(element["step"][: _complete_rows(element)])

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return (f"ParticleGroup({self.name!r}, {self.n_frames} frames of {self.n_particles} x "
                f"{self.dim}, columns {', '.join(self.columns)})")

    @property
    def has_log_density(self) -> bool:
        return self._log_density_steps is not None and self._log_density_steps.size > 0

    def frame(self, index: int) -> Frame:
        """Frame `index` (negative counts from the last complete frame)."""
        i = index + self.n_frames if index < 0 else index
        if not 0 <= i < self.n_frames:
            raise IndexError(f"/particles/{self.name}: frame {index} out of range "
                             f"({self.n_frames} complete frames)")
        log_density = None
        if self.has_log_density:
            match = np.flatnonzero(self._log_density_steps == self.step[i])
            if match.size:
                log_density = self._source.read(f"particles/{self.name}/log_density/value", int(match[0]))
        return Frame(i, int(self.step[i]), float(self.time[i]), self._source.read(self._value_path, i),
                     self.columns, self.slices, log_density)

    __getitem__ = frame

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n_frames):
            yield self.frame(i)

    def frame_at_time(self, t: float) -> Frame:
        """The frame whose flow time is closest to t."""
        return self.frame(int(np.argmin(np.abs(self.time - t))))

    def spread_frames(self, count: int) -> list[int]:
        """Up to `count` frame indices spread evenly from the first to the last frame."""
        if self.n_frames == 0:
            return []
        return sorted(set(np.linspace(0, self.n_frames - 1, min(count, self.n_frames)).round().astype(int)))


@dataclass(frozen=True)
class Data:
    """The training and test sets stored in /data."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


_MISSING = object()

# /parameters attribute ntk_lambda0 is what mfsim writes (docs/diagnostics.md); the others are
# accepted as well, as attributes or datasets, so that a file from another writer still shows λ₀.
_LAMBDA0_NAMES = ("ntk_lambda0", "lambda_0", "lambda0", "ntk_lambda_0", "ntk_lambda_min", "lambda_0_ntk")


def _find_lambda0(handle: h5py.File) -> float | None:
    """λ₀ = λ_min of the NTK reference Gram, wherever the file keeps it (attribute or dataset)."""
    places = [handle.get(p) for p in ("parameters", "observables/gram_lambda_min", "observables")]
    for place in [p for p in places if p is not None]:
        for name in _LAMBDA0_NAMES:
            if name in place.attrs:
                return float(_attribute(place.attrs[name]))
            if isinstance(place, h5py.Group) and name in place:
                item = place[name]
                if isinstance(item, h5py.Group) and "value" in item:
                    item = item["value"]
                if isinstance(item, h5py.Dataset) and item.size:
                    return float(np.ravel(item[()])[-1])
    return None


class Run:
    """An mfsim output file, opened read-only. Use `open_run(path)` to create one."""

    def __init__(self, path: str, source: _File):
        self.path = path
        self._source = source
        handle = source.handle
        creator = handle.get("h5md/creator")
        name = _text(creator.attrs.get("name", "")) if creator is not None else ""
        if "h5md" not in handle or name != "mfsim":
            what = "no /h5md group" if "h5md" not in handle else f"creator is {name or 'not named'!r}"
            raise NotAnMfsimFile(f"{path}: not an mfsim H5MD file ({what}, expected creator 'mfsim')")
        self.mfsim_version = _text(creator.attrs.get("version", ""))
        params = handle.get("parameters")
        # numbers as int/float (numeric attributes, or older files' numeric text), text as str
        self.parameters: dict[str, Any] = (
            {k: _attribute(v) for k, v in params.attrs.items()} if params is not None else {}
        )
        self.config_text = self.parameters.get("config", "")
        resolved = self.parameters.get("config_resolved", "")
        self.config: dict[str, Any] = tomllib.loads(resolved) if resolved else {}
        self.observables = Observables(source)
        self.particles: dict[str, ParticleGroup] = {}
        if "particles" in handle:
            for group_name, group in handle["particles"].items():
                if "position" in group and "value" in group["position"]:
                    self.particles[group_name] = ParticleGroup(group_name, source)
        self.lambda0 = _find_lambda0(handle)
        # λ_min(G(0)) → ntk_gram_scale · λ₀ as the width grows; β² for the two-layer model.
        scale = self.parameters.get("ntk_gram_scale")
        self.ntk_gram_scale = float(scale) if scale else float(self.get("model.beta", 1.0)) ** 2
        self._data: Data | None = None

    def __repr__(self) -> str:
        return (f"Run({self.path!r}, model={self.model!r}, observables=[{', '.join(self.observables)}], "
                f"particles=[{', '.join(self.particles)}])")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    @property
    def file(self) -> h5py.File:
        """The h5py file, for what this class does not cover (read-only, no locking)."""
        return self._source.handle

    @property
    def model(self) -> str:
        return self.parameters.get("model") or str(self.get("model.kind", "unknown"))

    @property
    def outputs(self) -> int:
        """c = model.outputs: the network's outputs (1 in files from before vector outputs)."""
        return int(self.get("model.outputs", 1))

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """A config value by dotted key ("model.width"), else a /parameters attribute by name."""
        node: Any = self.config
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = _MISSING
                break
        if node is _MISSING and key in self.parameters:
            node = _number_or_text(self.parameters[key])
        if node is _MISSING:
            if default is _MISSING:
                raise KeyError(f"{self.path}: no config key or parameter {key!r}")
            return default
        return node

    @property
    def data(self) -> Data:
        if self._data is None:
            def read(split: str, name: str, dims: int) -> np.ndarray:
                if f"data/{split}/{name}" not in self.file:
                    return np.zeros((0,) * dims)
                return self._source.read(f"data/{split}/{name}").astype(float)

            self._data = Data(read("train", "x", 2), read("train", "y", 1),
                              read("test", "x", 2), read("test", "y", 1))
        return self._data

    def flat_config(self) -> dict[str, Any]:
        """The resolved config as {"section.key": value}."""
        out: dict[str, Any] = {}

        def walk(node: dict, prefix: str) -> None:
            for k, v in node.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                else:
                    out[f"{prefix}{k}"] = v

        walk(self.config, "")
        return out


def _number_or_text(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text

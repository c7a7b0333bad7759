"""docs/file-format.md lists every observable the binary writes: runs of model A (every
diagnostic), model A with Langevin noise (free energy, entropy, Gibbs gap), model A with the
logistic loss, model A on the population risk and model B (labelled groups) write exactly the
documented names between them; the population run's /data/teacher holds the documented arrays."""

import re

import h5py
import numpy as np
from conftest import REPO, config_command, run_command
from numpy.polynomial.hermite_e import hermeval

DOC = REPO / "docs" / "file-format.md"
CONFIGS = REPO / "simulations" / "configs"

COMMON = {"data.n_train": 12, "data.n_test": 20, "output.observe_every": 5, "output.snapshot_every": 10}
RUNS = {
    "two_layer": ("two_layer_meanfield.toml", {
        "model.width": 64, "model.activation": '"softplus"', "data.dim": 3, "flow.integrator": '"heun"',
        "flow.dt": 0.05, "flow.t_end": 0.5, "diagnostics.kl": '["transport", "knn"]', "diagnostics.knn_k": 3,
        "diagnostics.gram_spectrum": "true", "diagnostics.gram_matrix": "true"}),
    "langevin": ("two_layer_langevin.toml", {
        "model.width": 64, "data.dim": 2, "flow.t_end": 0.5, "flow.path_norm_penalty": 0.01,
        "diagnostics.knn_k": 3, "diagnostics.knn_every": 5, "diagnostics.gibbs_samples": 256}),
    "logistic": ("two_layer_meanfield.toml", {
        "model.width": 64, "model.loss": '"logistic"', "data.dim": 3, "flow.integrator": '"heun"',
        "flow.dt": 0.05, "flow.t_end": 0.5, "diagnostics.kl": "[]"}),
    "population": ("population_erf.toml", {
        "model.width": 16, "data.dim": 3, "flow.t_end": 0.5, "diagnostics.kl": "[]"}),
    "resnet": ("resnet_meanfield.toml", {
        "model.depth": 2, "model.width": 16, "model.head_width": 16, "data.dim": 2, "flow.t_end": 1.0,
        "diagnostics.kl": '["transport", "knn"]', "diagnostics.knn_k": 3, "diagnostics.path_norm": "true",
        "diagnostics.gram_layers": "true"}),
}


def documented_patterns() -> list[str]:
    text = DOC.read_text()
    table = text.split("<!-- observables: begin -->")[1].split("<!-- observables: end -->")[0]
    names = []
    for line in table.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def as_regex(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(re.escape("[_<label>]"), "(?:_blocks|_head)?") + r"\Z")


def run(tmp_path, name: str):
    config, settings = RUNS[name]
    out = tmp_path / f"{name}.h5"
    run_command(config_command(CONFIGS / config, out,
                               *(f"{key}={value}" for key, value in {**COMMON, **settings}.items())))
    return out


def written_names(tmp_path) -> set[str]:
    names = set()
    for name in RUNS:
        with h5py.File(run(tmp_path, name), "r") as f:
            names |= set(f["observables"])
    return names


def test_every_observable_written_is_documented_and_every_documented_one_written(tmp_path):
    patterns = documented_patterns()
    assert len(patterns) > 40
    names = written_names(tmp_path)
    undocumented = sorted(n for n in names if not any(as_regex(p).match(n) for p in patterns))
    assert not undocumented, f"written but not in docs/file-format.md: {undocumented}"
    unwritten = sorted(p for p in patterns if not any(as_regex(p).match(n) for n in names))
    assert not unwritten, f"in docs/file-format.md but written by none of the runs: {unwritten}"


def test_population_teacher_is_written_as_documented(tmp_path):
    layout = DOC.read_text().split("## Observables")[0]
    entry = layout.split("/data/teacher")[1].split("/parameters")[0]  # the entry and its notes
    attributes = {"output_scale", "activation", "hermite_coefficients", "covariance_diagonal"}
    documented = set(re.findall(r"\b(w|a|" + "|".join(attributes) + r")\b", entry))
    assert documented == {"w", "a"} | attributes
    with h5py.File(run(tmp_path, "population"), "r") as f:
        teacher = f["data/teacher"]
        assert set(teacher) == {"w", "a"}
        assert set(teacher.attrs) == {"output_scale", "activation", "covariance_diagonal"}
        assert teacher.attrs["activation"] == "erf"
        assert list(teacher.attrs["covariance_diagonal"]) == [1.0, 1.0, 1.0]
        assert teacher["w"].shape == (2, 3) and teacher["a"].shape == (2,)
        assert abs(teacher.attrs["output_scale"] - 2 ** -0.5) < 1e-15
        assert "population_teacher_energy" in f["parameters"].attrs
        assert f["data/train/x"].shape == (0, 3)


def test_single_index_teacher_reproduces_the_test_labels_from_the_file(tmp_path):
    """A Hermite-link teacher on anisotropic inputs: /data/teacher alone (w, a, output_scale,
    hermite_coefficients, covariance_diagonal) gives the labels of the Monte-Carlo test set."""
    out = tmp_path / "single_index.h5"
    run_command(config_command(CONFIGS / "population_single_index.toml", out, "model.width=16",
                               "data.n_test=200", "flow.t_end=0.1", "diagnostics.kl=[]"))
    with h5py.File(out, "r") as f:
        teacher = f["data/teacher"]
        assert teacher.attrs["activation"] == "hermite"
        c = np.asarray(teacher.attrs["hermite_coefficients"])
        variance = np.asarray(teacher.attrs["covariance_diagonal"])
        assert list(c) == [0.0, 1.0, 0.5, 0.3]
        assert list(variance) == [0.25, 0.25, 0.25, 0.25, 0.1, 0.1, 0.05, 0.05]
        x, y = f["data/test/x"][:], f["data/test/y"][:]
        w, a = f["data/teacher/w"][:], f["data/teacher/a"][:]
        expected = teacher.attrs["output_scale"] * hermeval(x @ w.T, c) @ a
        assert np.allclose(y, expected, rtol=1e-12, atol=1e-12)
        # The inputs have the recorded covariance (200 samples: within 5 standard errors).
        assert np.all(np.abs(x.var(axis=0) / variance - 1) < 5 * np.sqrt(2 / 200))

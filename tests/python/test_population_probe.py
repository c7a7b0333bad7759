"""The population flow's Gram diagnostics on a probe set (diagnostics.probe_samples).

The Gram matrix G_ij = (β²/m) Σ_k ∇_θ h(x_i; θ_k)·∇_θ h(x_j; θ_k) of model A (MATH.md §2.5) is
rebuilt here with numpy from the particles and the probe inputs that mfsim wrote (/data/probe/x),
for the erf student h = a erf(w·x): ∇_a h = erf(w·x), ∇_w h = a erf'(w·x) x; its eigenvalues from
numpy's dense solver must equal gram_lambda_min, gram_lambda_max and gram_spectrum to rounding
(1e-10 relative: mfsim sums G in a different order). The NTK reference λ₀ on the probe set is
rebuilt from the arcsine kernel, K = E[erf(u) erf(v)] + σ_a² x·x' E[erf'(u) erf'(v)] with
E[erf' erf'] = 4 / (π √((1 + 2q₁₁)(1 + 2q₂₂) − 4q₁₂²)), q = σ_w² x·x'.
"""

import h5py
import numpy as np
import pytest
from scipy.special import erf

import conftest

BETA, STD_A, STD_W = 1.3, 0.8, 0.6
TOML = """
[model]
width = 24
activation = "erf"
bias = false
beta = {beta}
[data]
kind = "population"
dim = 5
teacher_width = 2
n_test = 0
seed = 4
covariance_diagonal = [1.0, 0.5, 2.0, 1.0, 0.25]
[init]
std_a = {std_a}
std_w = {std_w}
seed = 3
[flow]
integrator = "rk4"
dt = 0.05
steps = 20
[output]
observe_every = 5
snapshot_every = 5
[diagnostics]
probe_samples = 30
gram_spectrum = true
kl = []
"""


def run(tmp_path, name, *settings, check=True):
    out = tmp_path / f"{name}.h5"
    return out, conftest.run_config(TOML.format(beta=BETA, std_a=STD_A, std_w=STD_W), out, *settings,
                                    check=check)


def gram(theta, x):
    a, w = theta[:, 0], theta[:, 1:]
    z = x @ w.T                                   # [n][m]
    s, ds = erf(z), 2 / np.sqrt(np.pi) * np.exp(-z * z)
    g = s @ s.T + (x @ x.T) * ((ds * a**2) @ ds.T)
    return BETA**2 / len(a) * g


def arcsine_ntk(x):
    q = STD_W**2 * (x @ x.T)
    d = np.diag(q)
    ab = np.outer(1 + 2 * d, 1 + 2 * d)
    k = 2 / np.pi * np.arcsin(2 * q / np.sqrt(ab))
    return k + STD_A**2 * (x @ x.T) * 4 / (np.pi * np.sqrt(ab - 4 * q**2))


def test_gram_on_the_probe_set_is_numpys_dense_eigenproblem(tmp_path):
    out, _ = run(tmp_path, "probe")
    with h5py.File(out, "r") as f:
        x = f["data/probe/x"][:]
        frames = f["particles/two_layer/position/value"][:]
        frame_steps = list(f["particles/two_layer/position/step"][:])
        obs = f["observables"]
        steps = obs["gram_lambda_min/step"][:]
        lmin, lmax = obs["gram_lambda_min/value"][:], obs["gram_lambda_max/value"][:]
        spectrum = obs["gram_spectrum/value"][:]
        names = set(obs)
        ntk = float(f["parameters"].attrs["ntk_lambda0"])
        scale = float(f["parameters"].attrs["ntk_gram_scale"])
    assert x.shape == (30, 5)
    # A probe set has no residual: no (A11) identity, no (A12) bound.
    assert "energy_identity_error" not in names and "loss_bound" not in names
    assert list(steps) == [0, 5, 10, 15, 20]
    for i, step in enumerate(steps):
        eigenvalues = np.linalg.eigvalsh(gram(frames[frame_steps.index(step)], x))
        print(f"step {step}: lambda_min {lmin[i]:.6e} numpy {eigenvalues[0]:.6e}")
        assert lmin[i] == pytest.approx(eigenvalues[0], rel=1e-10)
        assert lmax[i] == pytest.approx(eigenvalues[-1], rel=1e-10)
        np.testing.assert_allclose(spectrum[i], eigenvalues, rtol=1e-10, atol=1e-12 * eigenvalues[-1])
    # The particles moved, so the comparison is not one state's alone.
    assert abs(lmin[-1] - lmin[0]) > 1e-3 * lmin[0]
    assert scale == pytest.approx(BETA**2)
    assert ntk == pytest.approx(np.linalg.eigvalsh(arcsine_ntk(x))[0], rel=1e-10)


def test_probe_set_is_the_documented_stream(tmp_path):
    """N(0, diag) inputs from data.seed alone: the unit-covariance draws times √variance, the same
    for every init seed, another set for another data seed."""
    out, _ = run(tmp_path, "diagonal")
    unit, _ = run(tmp_path, "unit", "data.covariance_diagonal=[1.0, 1.0, 1.0, 1.0, 1.0]",
                  "init.seed=9")
    other, _ = run(tmp_path, "other", "data.seed=5")
    with h5py.File(out, "r") as f, h5py.File(unit, "r") as u, h5py.File(other, "r") as o:
        x, x_unit, x_other = f["data/probe/x"][:], u["data/probe/x"][:], o["data/probe/x"][:]
    variance = np.array([1.0, 0.5, 2.0, 1.0, 0.25])
    assert np.array_equal(x, x_unit * np.sqrt(variance))
    assert not np.allclose(x, x_other)
    # Standard normal draws: loose moments of 150 numbers (5 standard errors).
    assert abs(x_unit.mean()) < 5 / np.sqrt(x_unit.size)
    assert abs(x_unit.var() - 1) < 5 * np.sqrt(2 / x_unit.size)


def test_restart_is_bitwise_with_the_probe_gram(tmp_path):
    whole, _ = run(tmp_path, "whole")
    half, _ = run(tmp_path, "half", "flow.steps=10")
    rest, _ = run(tmp_path, "rest", 'init.kind="file"', f'init.path="{half}"', "flow.steps=10")
    with h5py.File(whole, "r") as w, h5py.File(rest, "r") as r:
        assert r["observables/gram_lambda_min/step"][-1] == 20
        assert np.array_equal(w["data/probe/x"][:], r["data/probe/x"][:])
        for name in ("gram_lambda_min", "gram_lambda_max", "gram_spectrum"):
            assert np.array_equal(w[f"observables/{name}/value"][-1], r[f"observables/{name}/value"][-1])
        assert np.array_equal(w["particles/two_layer/position/value"][-1],
                              r["particles/two_layer/position/value"][-1])


def expect_refused(tmp_path, message, *settings):
    """The run exits 2 with the one stderr line `message` and writes no output."""
    out, result = run(tmp_path, "refused", *settings, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert not out.exists()


def test_gram_without_a_probe_set_is_refused(tmp_path):
    expect_refused(tmp_path, "mfsim: error: diagnostics.gram: needs samples, and data.kind = \"population\" has "
                   "none: set diagnostics.probe_samples = n (a probe set of n inputs) or gram = false",
                   "diagnostics.probe_samples=0", "diagnostics.gram=true")


def test_gram_matrix_limit_names_the_probe_set(tmp_path):
    """The written matrix's limit is on the probe set's size: the message names probe_samples."""
    expect_refused(tmp_path, "mfsim: error: diagnostics.gram_matrix: the matrix is written only for "
                   "probe_samples <= 500 (got 501)", "diagnostics.probe_samples=501", "diagnostics.gram_matrix=true")

"""The population flow of erf students against the Saad–Solla order-parameter ODE.

For erf student and teacher networks on Gaussian inputs, the finite particle system (MATH.md §2.8,
(P2)) closes on the order parameters Q = W Wᵀ (students), R = W W*ᵀ (students × teacher) and the
output weights a: every kernel K and its derivatives depend on the weights through inner products
only. This test integrates that closed ODE with scipy (DOP853 at rtol = atol = 1e-12, written
from the arcsine kernel here, independently of mfsim's code) from the initial particles mfsim
wrote, and compares the order parameters of mfsim's particles along the flow.

Tolerance: mfsim integrates with RK4 at dt = 0.005 to t = 2, scipy to ≈ 1e-12. The measured
differences, 4.5e-11 (seed 2) and 2.8e-9 (seed 11), are RK4's O(dt⁴) error: at dt = 0.0025 they
fall to 1.4e-11 and 1.8e-10 (16× for seed 11). The bound 1e-8 leaves that error room and still
catches any error in the kernels, the chain rule or the β factors (a factor 2 off in ∂K/∂q11
gives differences of order 1).
"""

import h5py
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import conftest

BETA = 1.3
DT = 0.005
TOML = """
[model]
width = 4
activation = "erf"
bias = false
beta = {beta}
[data]
kind = "population"
dim = 6
teacher_width = 2
n_test = 0
[init]
std_w = 0.6
seed = {seed}
[flow]
integrator = "rk4"
dt = {dt}
t_end = 2.0
[output]
observe_every = 40
snapshot_every = 40
[diagnostics]
kl = []
"""


def kernel(q11, q12, q22):
    """The arcsine kernel E[erf(u) erf(v)] and its derivatives in q11 and q12 (MATH.md §2.8)."""
    a, b = 1 + 2 * q11, 1 + 2 * q22
    d = np.sqrt(a * b - 4 * q12**2)
    k = 2 / np.pi * np.arcsin(2 * q12 / np.sqrt(a * b))
    return k, -4 * q12 / (np.pi * a * d), 4 / (np.pi * d)


def order_parameter_rhs(m, k, beta, scale, a_star, T):
    """d/dt of (a, Q, R) for f = (β/m) Σ a_i erf(w_i·x), f* = scale Σ a*_j erf(w*_j·x)."""

    def rhs(_t, y):
        a = y[:m]
        Q = y[m:m + m * m].reshape(m, m)
        R = y[m + m * m:].reshape(m, k)
        # Sources: students (coefficient −β² a_l / m, Gram rows Q), teacher (β scale a*_j, rows T).
        dq = np.diag(Q)
        ks, k1s, k2s = kernel(dq[:, None], Q, dq[None, :])
        kt, k1t, k2t = kernel(dq[:, None], R, np.diag(T)[None, :])
        cs = -beta**2 * a / m
        ct = beta * scale * a_star
        da = ks @ cs + kt @ ct
        # dw_i = a_i [2 (Σ c K_1) w_i + Σ c K_2 w_src]; project on w_l and on w*_j.
        s1 = k1s @ cs + k1t @ ct
        G = k2s * cs[None, :]          # student sources, weights c_l K_2(i, l)
        H = k2t * ct[None, :]          # teacher sources
        dw_dot_w = a[:, None] * (2 * s1[:, None] * Q + G @ Q + H @ R.T)       # (dw_i · w_l)
        dw_dot_star = a[:, None] * (2 * s1[:, None] * R + G @ R + H @ T)     # (dw_i · w*_j)
        dQ = dw_dot_w + dw_dot_w.T
        return np.concatenate([da, dQ.ravel(), dw_dot_star.ravel()])

    return rhs


def order_parameters(theta, w_star):
    a, W = theta[:, 0], theta[:, 1:]
    return np.concatenate([a, (W @ W.T).ravel(), (W @ w_star.T).ravel()])


@pytest.mark.parametrize("seed", [2, 11])
def test_particles_follow_the_saad_solla_ode(tmp_path, seed):
    out = tmp_path / "population.h5"
    conftest.run_config(TOML.format(beta=BETA, seed=seed, dt=DT), out)
    with h5py.File(out, "r") as f:
        frames = f["particles/two_layer/position/value"][:]
        times = f["particles/two_layer/position/time"][:]
        w_star = f["data/teacher/w"][:]
        a_star = f["data/teacher/a"][:]
        scale = float(f["data/teacher"].attrs["output_scale"])
        risk = f["observables/population_risk/value"][:]
    m, k = frames.shape[1], w_star.shape[0]
    assert len(times) >= 5 and times[-1] == pytest.approx(2.0)
    rhs = order_parameter_rhs(m, k, BETA, scale, a_star, w_star @ w_star.T)
    solution = solve_ivp(rhs, (0, times[-1]), order_parameters(frames[0], w_star), method="DOP853",
                         t_eval=times, rtol=1e-12, atol=1e-12)
    assert solution.success
    errors = [np.max(np.abs(order_parameters(frames[i], w_star) - solution.y[:, i]))
              for i in range(len(times))]
    print(f"seed {seed}: max |order parameters - ODE| = {max(errors):.2e} over {len(times)} "
          f"snapshots to t = {times[-1]}")
    assert max(errors) < 1e-8
    # The flow moved: the comparison is not one of a state with itself.
    assert np.max(np.abs(solution.y[:, -1] - solution.y[:, 0])) > 0.1
    assert risk[-1] < risk[0]


def test_restart_is_bitwise(tmp_path):
    """20 steps, then a restart from that file for 20 more, against 40 steps in one run."""
    config = (TOML.format(beta=BETA, seed=3, dt=DT).replace("t_end = 2.0", "steps = 40")
              .replace("snapshot_every = 40", "snapshot_every = 20")
              .replace("observe_every = 40", "observe_every = 20"))
    conftest.run_config(config, tmp_path / "whole.h5")
    conftest.run_config(config, tmp_path / "half.h5", "flow.steps=20")
    conftest.run_config(config, tmp_path / "rest.h5", 'init.kind="file"',
                        f'init.path="{tmp_path / "half.h5"}"', "flow.steps=20")
    with h5py.File(tmp_path / "whole.h5", "r") as w, h5py.File(tmp_path / "rest.h5", "r") as r:
        assert r["particles/two_layer/position/step"][-1] == 40
        assert np.array_equal(w["particles/two_layer/position/value"][-1],
                              r["particles/two_layer/position/value"][-1])
        assert np.array_equal(w["observables/population_risk/value"][-1],
                              r["observables/population_risk/value"][-1])

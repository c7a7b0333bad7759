"""The population flow's mean-field PDE on a grid, where symmetry reduces it to the plane (a, s).

For model A without bias on the population risk of Gaussian inputs (MATH.md §2.8), with every
teacher neuron and every student's input weight on one line of R^d (d = 1, or all w ∈ R e₁),
the velocity of w stays on that line, and the mean-field PDE ∂_t ρ + ∇·(ρ v) = 0 becomes a
continuity equation for a density ρ_t(a, s) on R², s the coordinate of w along the line
(MATH.md §2.8, "Reduction to the plane"):

    v_a(s)    = β V(s) − β² ∫ K(s, s') μ(s') ds',
    v_s(a, s) = a [β V'(s) − β² ∫ ∂₁K(s, s') μ(s') ds'],
    μ(s)      = ∫ a ρ(a, s) da,          V(s) = c Σ_j a*_j K(s, s*_j),

with K(s, s') = E[σ(s x) σ(s' x)], x ~ N(0, 1). A velocity evaluation costs one N_s × N_s
matrix–vector product (the interaction needs only the moment μ) and O(N_a N_s).

The scheme is a finite-volume one on cell averages: MUSCL reconstruction (a slope limiter per
direction), upwind fluxes at the faces, zero flux through the outer boundary (mass is conserved
to rounding), and the three-stage strong-stability-preserving Runge–Kutta method in time with a
CFL-limited step. Second order in space, third in time.

    grid = Grid(n_a=200, n_s=200, half_width_a=8.0, half_width_s=8.0)
    flow = ReducedFlow(ERF, teacher_a=[1.0], teacher_s=[-1.48], teacher_scale=1.0, beta=1.0)
    rho0 = grid.gaussian(std_a=1.0, std_s=1.0)
    result = flow.solve(grid, rho0, times=[0.5, 1.0, 2.0])
    result.observables["population_risk"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Kernel", "ERF", "LINEAR", "Grid", "ReducedFlow", "Solution", "moments", "particle_observables",
           "teacher_of", "LINE_TIMES", "LINE_OBSERVABLES", "LINE_HALF_WIDTH", "line_config"]

# The reference case on the line that the CI test, the particle-error benchmark and the
# population experiment share: one erf teacher neuron drawn from data seed 4, students
# (a, s) ~ N(0, 1)², RK4 to t = 2, compared at LINE_TIMES through LINE_OBSERVABLES, the PDE solved
# on the box [−LINE_HALF_WIDTH, LINE_HALF_WIDTH]² (wide enough that no mass reaches the walls).
LINE_TIMES = (0.5, 1.0, 2.0)
LINE_OBSERVABLES = ("population_risk", "mean_a2", "mean_s2", "mean_as")
LINE_HALF_WIDTH = 7.0


def line_config(width: int, seed: int, dt: float = 0.05, every: int = 10) -> str:
    """mfsim's configuration (TOML) of the reference case on the line: `width` students from init
    `seed`, RK4 steps of `dt`, a snapshot and an observation every `every` steps (LINE_TIMES must
    fall on them)."""
    return f"""[model]
width = {width}
activation = "erf"
bias = false
beta = 1.0
[data]
kind = "population"
dim = 1
teacher_width = 1
n_test = 0
seed = 4
[init]
std_a = 1.0
std_w = 1.0
seed = {seed}
[flow]
integrator = "rk4"
dt = {dt}
t_end = 2.0
[output]
observe_every = {every}
snapshot_every = {every}
[diagnostics]
kl = []
path_norm = false
path_length = false
"""


@dataclass(frozen=True)
class Kernel:
    """K(s, s') = E[σ(s x) σ(s' x)] for x ~ N(0, 1), and ∂K/∂s, both vectorised (broadcasting)."""

    name: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    d_first: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _erf_g(s):
    return 2 * s / np.sqrt(1 + 2 * s * s)


def _erf_value(s, t):
    # Arcsine kernel (2/π) arcsin(2 s t / √((1 + 2s²)(1 + 2t²))) = (2/π) arcsin(g(s) g(t) / 2).
    return (2 / np.pi) * np.arcsin(_erf_g(s) * _erf_g(t) / 2)


def _erf_d_first(s, t):
    # d/ds: g'(s) = 2 (1 + 2s²)^(-3/2), and arcsin' = 1/√(1 − x²).
    x = _erf_g(s) * _erf_g(t) / 2
    dg = 2 / (1 + 2 * s * s) ** 1.5
    return (2 / np.pi) * dg * _erf_g(t) / 2 / np.sqrt(1 - x * x)


ERF = Kernel("erf", _erf_value, _erf_d_first)
"""σ = erf: the arcsine kernel."""

LINEAR = Kernel("linear", lambda s, t: s * t, lambda s, t: t + 0 * s)
"""σ(u) = u: K = s s'. The flow is then linear in (a, s) with a scalar rate, and Gaussian
densities stay Gaussian: the closed-form check of the solver (MATH.md §2.8)."""


@dataclass(frozen=True)
class Grid:
    """Uniform cells on [−half_width_a, half_width_a] × [−half_width_s, half_width_s]; arrays are
    indexed [i_a, i_s]."""

    n_a: int
    n_s: int
    half_width_a: float
    half_width_s: float

    @property
    def h_a(self) -> float:
        return 2 * self.half_width_a / self.n_a

    @property
    def h_s(self) -> float:
        return 2 * self.half_width_s / self.n_s

    @property
    def a(self) -> np.ndarray:
        """Cell centres in a."""
        return -self.half_width_a + self.h_a * (np.arange(self.n_a) + 0.5)

    @property
    def s(self) -> np.ndarray:
        """Cell centres in s."""
        return -self.half_width_s + self.h_s * (np.arange(self.n_s) + 0.5)

    @property
    def s_faces(self) -> np.ndarray:
        """The n_s − 1 interior faces between cells in s."""
        return -self.half_width_s + self.h_s * np.arange(1, self.n_s)

    def integrate(self, f: np.ndarray) -> float:
        """∫ f over the plane for cell averages f (the midpoint rule)."""
        return float(f.sum() * self.h_a * self.h_s)

    def gaussian(self, std_a: float, std_s: float) -> np.ndarray:
        """Cell averages of N(0, std_a²) ⊗ N(0, std_s²), exact (differences of erf at the faces);
        the mass outside the box is dropped, the rest renormalised to 1 (report the dropped mass
        with `gaussian_tail`)."""
        from scipy.special import ndtr

        def cells(n, half, h, std):
            edges = -half + h * np.arange(n + 1)
            return np.diff(ndtr(edges / std)) / h

        rho = np.outer(cells(self.n_a, self.half_width_a, self.h_a, std_a),
                       cells(self.n_s, self.half_width_s, self.h_s, std_s))
        return rho / self.integrate(rho)

    def gaussian_tail(self, std_a: float, std_s: float) -> float:
        """The mass of N(0, std_a²) ⊗ N(0, std_s²) outside the box."""
        from scipy.special import ndtr

        inside = ((1 - 2 * ndtr(-self.half_width_a / std_a)) *
                  (1 - 2 * ndtr(-self.half_width_s / std_s)))
        return float(1 - inside)


def moments(grid: Grid, rho: np.ndarray) -> dict[str, float]:
    """The moments of ρ that the particles also give: mass, E a, E s, E a², E s², E a s (midpoint
    rule on cell averages: second order)."""
    a, s = grid.a[:, None], grid.s[None, :]
    return {
        "mass": grid.integrate(rho),
        "mean_a": grid.integrate(a * rho),
        "mean_s": grid.integrate(s * rho),
        "mean_a2": grid.integrate(a * a * rho),
        "mean_s2": grid.integrate(s * s * rho),
        "mean_as": grid.integrate(a * s * rho),
    }


def _along(u: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """u[start:stop] along axis (a view)."""
    index = [slice(None)] * u.ndim
    index[axis] = slice(start, stop)
    return u[tuple(index)]


def _limited_slopes(u: np.ndarray, axis: int, limiter: str) -> np.ndarray:
    """Limited cell differences along axis (zero ghost cells outside the box)."""
    pad = [(0, 0)] * u.ndim
    pad[axis] = (1, 1)
    differences = np.diff(np.pad(u, pad), axis=axis)
    n = u.shape[axis]
    minus, plus = _along(differences, axis, 0, n), _along(differences, axis, 1, n + 1)
    same_sign = minus * plus > 0
    if limiter == "minmod":
        slope = np.where(np.abs(minus) < np.abs(plus), minus, plus)
    elif limiter == "mc":  # monotonised central: minmod(2Δ−, (Δ− + Δ+)/2, 2Δ+)
        slope = np.sign(minus) * np.minimum(np.minimum(2 * np.abs(minus), 2 * np.abs(plus)),
                                            np.abs(minus + plus) / 2)
    elif limiter == "van_leer":
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = 2 * minus * plus / (minus + plus)
    else:
        raise ValueError(f"unknown limiter {limiter!r}: minmod, mc or van_leer")
    return np.where(same_sign, slope, 0.0)


def _upwind_flux(u: np.ndarray, velocity: np.ndarray, axis: int, limiter: str) -> np.ndarray:
    """The fluxes v ρ at the n − 1 interior faces along axis: ρ reconstructed on the upwind side."""
    slope = _limited_slopes(u, axis, limiter)
    n = u.shape[axis]
    left = _along(u + slope / 2, axis, 0, n - 1)  # the cell below the face
    right = _along(u - slope / 2, axis, 1, n)  # the cell above
    return np.where(velocity > 0, velocity * left, velocity * right)


def _divergence(flux: np.ndarray, axis: int, h: float) -> np.ndarray:
    """(F_{i+1/2} − F_{i−1/2})/h with zero flux through the outer faces."""
    pad = [(0, 0)] * flux.ndim
    pad[axis] = (1, 1)
    return np.diff(np.pad(flux, pad), axis=axis) / h


@dataclass
class Solution:
    times: np.ndarray
    densities: list[np.ndarray]
    observables: dict[str, np.ndarray]
    steps: int
    boundary_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The mass in the outermost two cells of the box at each time (it must be negligible: the
    walls do not let mass out, so a density that reaches them is no longer the PDE's)."""


class ReducedFlow:
    """The reduced flow of student f = β ∫ a σ(s x) dρ against teacher f* = c Σ_j a*_j σ*(s*_j x).

    `kernel` is the student–student K, `teacher_kernel` the student–teacher one (σ* = σ by
    default)."""

    def __init__(self, kernel: Kernel, teacher_a, teacher_s, teacher_scale: float, beta: float,
                 teacher_kernel: Kernel | None = None, limiter: str = "mc"):
        self.kernel = kernel
        self.teacher_kernel = teacher_kernel or kernel
        self.teacher_a = np.asarray(teacher_a, dtype=float).ravel()
        self.teacher_s = np.asarray(teacher_s, dtype=float).ravel()
        self.teacher_scale = float(teacher_scale)
        self.beta = float(beta)
        self.limiter = limiter
        self._prepared: tuple | None = None

    def teacher_energy(self) -> float:
        """R* = ½ E[f*²] (σ* against σ*: only for σ* = σ, else pass the energy yourself)."""
        if self.teacher_kernel is not self.kernel:
            raise ValueError("teacher_energy needs σ* = σ")
        k = self.kernel.value(self.teacher_s[:, None], self.teacher_s[None, :])
        return 0.5 * self.teacher_scale**2 * float(self.teacher_a @ k @ self.teacher_a)

    def _prepare(self, grid: Grid):
        if self._prepared is not None and self._prepared[0] == grid:
            return self._prepared[1:]
        s, faces = grid.s, grid.s_faces
        tk = self.teacher_kernel
        teacher = lambda f, x: self.teacher_scale * (  # noqa: E731
            f(x[:, None], self.teacher_s[None, :]) @ self.teacher_a)
        v_centres = teacher(tk.value, s)  # V(s) at the centres: the a-velocity is evaluated there
        dv_faces = teacher(tk.d_first, faces)  # V'(s) at the s-faces
        k_centres = self.kernel.value(s[:, None], s[None, :]) * grid.h_s  # quadrature weights in
        dk_faces = self.kernel.d_first(faces[:, None], s[None, :]) * grid.h_s
        self._prepared = (grid, v_centres, dv_faces, k_centres, dk_faces)
        return self._prepared[1:]

    def velocities(self, grid: Grid, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """v_a at the centres in s (a vector: it does not depend on a) and the factor H(s) of
        v_s = a H(s) at the interior s-faces."""
        v_centres, dv_faces, k_centres, dk_faces = self._prepare(grid)
        mu = grid.h_a * (grid.a @ rho)  # μ(s) = ∫ a ρ(a, s) da at the centres
        v_a = self.beta * v_centres - self.beta**2 * (k_centres @ mu)
        h = self.beta * dv_faces - self.beta**2 * (dk_faces @ mu)
        return v_a, h

    def rate(self, grid: Grid, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """−∇·(ρ v) on the cells, and the largest stable step (CFL number 0.4 of the sum of the two
        directions' Courant numbers)."""
        v_a, h = self.velocities(grid, rho)
        va_faces = np.broadcast_to(v_a[None, :], (grid.n_a - 1, grid.n_s))
        vs_faces = grid.a[:, None] * h[None, :]
        div = (_divergence(_upwind_flux(rho, va_faces, 0, self.limiter), 0, grid.h_a) +
               _divergence(_upwind_flux(rho, vs_faces, 1, self.limiter), 1, grid.h_s))
        speed = np.max(np.abs(v_a)) / grid.h_a + np.max(np.abs(vs_faces), initial=0.0) / grid.h_s
        return -div, (0.4 / speed if speed > 0 else np.inf)

    def observables(self, grid: Grid, rho: np.ndarray) -> dict[str, float]:
        """The moments of ρ and the population risk R(ρ) = R* − β ∫ V μ + ½ β² ∬ μ K μ (its two
        terms as mfsim names them)."""
        v_centres, _, k_centres, _ = self._prepare(grid)
        mu = grid.h_a * (grid.a @ rho)
        teacher_term = -self.beta * grid.h_s * float(v_centres @ mu)
        interaction = 0.5 * self.beta**2 * grid.h_s * float(mu @ k_centres @ mu)
        out = moments(grid, rho)
        out["population_teacher_term"] = teacher_term
        out["population_interaction"] = interaction
        if self.teacher_kernel is self.kernel:
            out["population_risk"] = self.teacher_energy() + teacher_term + interaction
        return out

    def solve(self, grid: Grid, rho0: np.ndarray, times, max_dt: float = np.inf) -> Solution:
        """SSP-RK3 from t = 0 through the given times (increasing, ≥ 0), stepping onto each."""
        rho = np.array(rho0, dtype=float)
        times = np.asarray(times, dtype=float)
        t, steps = 0.0, 0
        densities, rows, edge = [], [], []
        for target in times:
            while t < target - 1e-14 * max(1.0, target):
                r1, dt = self.rate(grid, rho)
                dt = min(dt, max_dt, target - t)
                u1 = rho + dt * r1
                u2 = 0.75 * rho + 0.25 * (u1 + dt * self.rate(grid, u1)[0])
                rho = rho / 3 + (2 / 3) * (u2 + dt * self.rate(grid, u2)[0])
                t += dt
                steps += 1
            densities.append(rho.copy())
            rows.append(self.observables(grid, rho))
            edge.append(grid.integrate(rho) - grid.integrate(rho[2:-2, 2:-2]))
        observables = {key: np.array([row[key] for row in rows]) for key in rows[0]}
        return Solution(times, densities, observables, steps, np.array(edge))


def particle_observables(path, times) -> dict[str, np.ndarray]:
    """The observables of `ReducedFlow.observables` from an mfsim run on the line (d = 1, no
    bias): the moments of its particles at the snapshots at `times` and its population_risk there
    (each time must be a snapshot and an observation of the run)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["particles/two_layer/position"]
        snapshot_times, frames = group["time"][:], group["value"]
        if frames.shape[2] != 2:
            raise ValueError(f"{path}: not a run on the line (columns a, w_1 expected)")
        risk = f["observables/population_risk"]
        risk_times, risk_values = risk["time"][:], risk["value"][:]
        rows = []
        for t in times:
            i, j = int(np.argmin(np.abs(snapshot_times - t))), int(np.argmin(np.abs(risk_times - t)))
            if abs(snapshot_times[i] - t) > 1e-9 or abs(risk_times[j] - t) > 1e-9:
                raise ValueError(f"{path}: no snapshot and observation at t = {t}")
            frame = frames[i]
            a, s = frame[:, 0], frame[:, 1]
            rows.append({"mass": 1.0, "mean_a": a.mean(), "mean_s": s.mean(), "mean_a2": np.mean(a * a),
                         "mean_s2": np.mean(s * s), "mean_as": np.mean(a * s),
                         "population_risk": risk_values[j]})
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def teacher_of(path) -> dict:
    """The teacher of an mfsim run on the line, as ReducedFlow's arguments (teacher_a, teacher_s,
    teacher_scale)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {"teacher_a": f["data/teacher/a"][:].ravel(), "teacher_s": f["data/teacher/w"][:].ravel(),
                "teacher_scale": float(f["data/teacher"].attrs["output_scale"])}

"""One explicit-Euler step of model A's mean-field flow, written the way a user of each peer would.

Model A (MATH.md): f(x) = (beta/m) sum_k a_k tanh(w_k.x + b_k), L = |f - y|^2 / (2n),
v_k = -m grad_{theta_k} L, theta_k += dt v_k. Particles are rows (a, w_1..w_d, b), as in mfsim's
H5MD files.

    python step.py PEER PROBLEM.npz OUT.json --steps K [--threads T]

PROBLEM.npz holds x (n x d), y (n), theta (m x (d+2)), beta, and v_ref: mfsim's velocity at theta
(benchmarks/run_peers.py writes it). The peer computes its first velocity, compares it with v_ref
(largest |difference| over the largest |v_ref|, per block a, w, b; must be <= 1e-10), then times
K steps (wall and CPU) and writes a JSON line with the figures and its peak RSS.

Peers: numpy (dense n x m matrices, BLAS products), jax_grad (jit of the Euler step with
jax.grad of the loss: XLA fuses), jax_vmap_jacobian (per-sample Jacobians by vmap(jacrev), then
v = -(m/n) J^T r: the mean-field Langevin codes' style), keops (LazyTensor reductions: nothing of
size n x m is formed). PyTorch is not installable here (see docs/peers.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

TOLERANCE = 1e-10


def numpy_peer(x, y, theta, beta):
    n, d = x.shape
    m = theta.shape[0]
    c = beta / n

    def velocity(theta):
        a, w, b = theta[:, 0], theta[:, 1:d + 1], theta[:, d + 1]
        s = x @ w.T
        s += b
        np.tanh(s, out=s)  # S = tanh(H), n x m
        r = (beta / m) * (s @ a) - y
        v = np.empty_like(theta)
        v[:, 0] = -c * (r @ s)
        np.square(s, out=s)
        np.subtract(1.0, s, out=s)  # tanh'(H)
        s *= r[:, None]
        s *= a[None, :]  # G = diag(r) tanh'(H) diag(a)
        v[:, 1:d + 1] = -c * (s.T @ x)
        v[:, d + 1] = -c * s.sum(axis=0)
        return v

    def step(theta, dt):
        theta += dt * velocity(theta)
        return theta

    return velocity, step, lambda t: t


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def jax_grad_peer(x, y, theta, beta):
    jax, jnp = _jax()
    n, d = x.shape
    m = theta.shape[0]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(theta):
        a, w, b = theta[:, 0], theta[:, 1:d + 1], theta[:, d + 1]
        f = (beta / m) * jnp.tanh(x @ w.T + b) @ a
        return 0.5 * jnp.mean((f - y) ** 2)

    velocity = jax.jit(lambda theta: -m * jax.grad(loss)(theta))
    step = jax.jit(lambda theta, dt: theta + dt * (-m * jax.grad(loss)(theta)), donate_argnums=0)
    return velocity, step, lambda t: t.block_until_ready()


def jax_vmap_jacobian_peer(x, y, theta, beta):
    jax, jnp = _jax()
    n, d = x.shape
    m = theta.shape[0]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def f_one(theta, xi):
        a, w, b = theta[:, 0], theta[:, 1:d + 1], theta[:, d + 1]
        return (beta / m) * jnp.tanh(w @ xi + b) @ a

    def velocity(theta):
        jac = jax.vmap(jax.jacrev(f_one), in_axes=(None, 0))(theta, x)  # n x m x (d+2)
        r = jax.vmap(f_one, in_axes=(None, 0))(theta, x) - y
        return -(m / n) * jnp.tensordot(r, jac, axes=1)

    velocity = jax.jit(velocity)
    step = jax.jit(lambda theta, dt: theta + dt * velocity(theta), donate_argnums=0)
    return velocity, step, lambda t: t.block_until_ready()


def keops_peer(x, y, theta, beta):
    from pykeops.numpy import LazyTensor

    n, d = x.shape
    m = theta.shape[0]
    xt = np.ascontiguousarray(np.hstack([x, np.ones((n, 1))]))  # x~ = (x, 1)
    X = LazyTensor(xt[:, None, :])  # i: samples

    def tanh(u):  # KeOps has no tanh: 2 / (1 + e^{-2u}) - 1
        return 2.0 * (1.0 + (-2.0 * u).exp()).power(-1) - 1.0

    def velocity(theta):
        a = np.ascontiguousarray(theta[:, :1])
        wt = np.ascontiguousarray(theta[:, 1:])  # (w, b)
        Wi, Ai = LazyTensor(wt[None, :, :]), LazyTensor(a[None, :, :])
        f = (beta / m) * (Ai * tanh((X | Wi))).sum(axis=1)[:, 0]  # sum over particles j
        r = np.ascontiguousarray((f - y)[:, None])
        R = LazyTensor(r[:, None, :])
        Wj, Aj = LazyTensor(wt[None, :, :]), LazyTensor(a[None, :, :])
        s = tanh(X | Wj)
        va = (R * s).sum(axis=0)  # m x 1, sum over samples i
        vw = ((R * Aj * (1.0 - s * s)) * X).sum(axis=0)  # m x (d+1)
        return -(beta / n) * np.hstack([va, vw])

    def step(theta, dt):
        theta += dt * velocity(theta)
        return theta

    return velocity, step, lambda t: t


PEERS = {
    "numpy": numpy_peer,
    "jax_grad": jax_grad_peer,
    "jax_vmap_jacobian": jax_vmap_jacobian_peer,
    "keops": keops_peer,
}


def relative_error(v, v_ref, d):
    """Largest |v - v_ref| over the largest |v_ref|, per block (a, w, b); the worst block."""
    worst = 0.0
    for block in (slice(0, 1), slice(1, d + 1), slice(d + 1, d + 2)):
        scale = np.max(np.abs(v_ref[:, block]))
        worst = max(worst, float(np.max(np.abs(v[:, block] - v_ref[:, block])) / scale))
    return worst


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--dt", type=float, default=1e-3)
    args = p.parse_args()

    prob = np.load(args.problem)
    x, y, theta, beta, v_ref = prob["x"], prob["y"], prob["theta"], float(prob["beta"]), prob["v_ref"]
    d = x.shape[1]
    velocity, step, sync = PEERS[args.peer](x, y, theta, beta)
    result = {"peer": args.peer}

    v = np.asarray(velocity(theta.copy()))
    result["relative_error"] = err = relative_error(v, v_ref, d)
    result["verified"] = bool(err <= TOLERANCE)
    if not result["verified"]:
        result["status"] = "mismatch"
    else:
        state = theta.copy()
        if args.peer.startswith("jax"):
            import jax.numpy as jnp

            state = jnp.asarray(state)
        state = sync(step(state, args.dt))  # warm-up (compilation)
        walls, cpus = [], []
        for _ in range(args.steps):
            w0, c0 = time.perf_counter(), time.process_time()
            state = sync(step(state, args.dt))
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        result.update(status="ok", wall_s=walls, cpu_s=cpus)
    result["peak_rss_bytes"] = peak_rss_bytes()
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0 if result["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())

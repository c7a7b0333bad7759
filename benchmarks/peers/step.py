"""One explicit-Euler step of mfsim's mean-field flow, written the way a user of each peer would.

Model A (MATH.md §2): f(x) = (beta/m) sum_k a_k tanh(w_k.x + b_k), L = |f - y|^2 / (2n),
v_k = -m grad_{theta_k} L, theta_k += dt v_k. Particles are rows (a, w_1..w_d, b), as in mfsim's
H5MD files.

Model B (MATH.md §3.5, --model resnet): z_0 = x, z_{l+1} = z_l + (alpha/(L M)) sum_j u_{l,j}
tanh(w_{l,j}.z_l + b_{l,j}) (l = 0..L-1: forward Euler in depth, step 1/L), f = (beta/K) sum_k a_k
tanh(v_k.z_L); block velocities -L M grad L, head velocities -K grad L. Block rows (u_1..u_d,
w_1..w_d, b), layer-major (row l M + j), head rows (a, v_1..v_d), as in mfsim's H5MD files.

    python step.py PEER PROBLEM.npz OUT.json [--model resnet] --steps K --threads T

PROBLEM.npz (benchmarks/run_peers.py writes it) holds x (n x d), y (n), beta and mfsim's velocity
at the initial particles: theta (m x (d+2)) and v_ref for model A; blocks (L M x (2d+1)), head
(K x (d+1)), v_ref_blocks, v_ref_head, alpha and depth for model B. The peer computes its first
velocity, compares it with mfsim's (largest |difference| over the largest |v_ref|, per block of
coordinates: a, w, b or u, w, b, a, v; must be <= 1e-10), then times K steps after a warm-up
step (wall and CPU) and writes a JSON line with the figures and its peak RSS.

Model A peers: numpy (dense n x m matrices, BLAS products), jax_grad (jit of the Euler step with
jax.grad of the loss: XLA fuses), jax_vmap_jacobian (per-sample Jacobians by vmap(jacrev), then
v = -(m/n) J^T r: the mean-field Langevin codes' style), keops (LazyTensor reductions: nothing of
size n x m is formed), torch_autograd (loss.backward() and an in-place update under no_grad),
torch_manual (the numpy peer's hand-written backward in torch). Model B peers: jax_grad (jit,
lax.scan over the layers), torch_autograd (a loop over the layers, loss.backward()).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

TOLERANCE = 1e-10


def numpy_peer(x, y, theta, beta, threads):
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

    return velocity, step, lambda t: t, np.copy


def two_layer_loss(lib, x, y, beta, m, d):
    """L(theta) = |f - y|^2 / (2n) written once for jax.numpy and torch (the same calls in both)."""

    def loss(theta):
        a, w, b = theta[:, 0], theta[:, 1:d + 1], theta[:, d + 1]
        f = (beta / m) * lib.tanh(x @ w.T + b) @ a
        return 0.5 * lib.mean((f - y) ** 2)

    return loss


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def jax_grad_peer(x, y, theta, beta, threads):
    jax, jnp = _jax()
    n, d = x.shape
    m = theta.shape[0]
    loss = two_layer_loss(jnp, jnp.asarray(x), jnp.asarray(y), beta, m, d)
    velocity = jax.jit(lambda theta: -m * jax.grad(loss)(theta))
    step = jax.jit(lambda theta, dt: theta + dt * (-m * jax.grad(loss)(theta)), donate_argnums=0)
    return velocity, step, lambda t: t.block_until_ready(), jnp.asarray


def jax_vmap_jacobian_peer(x, y, theta, beta, threads):
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
    return velocity, step, lambda t: t.block_until_ready(), jnp.asarray


def keops_peer(x, y, theta, beta, threads):
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

    return velocity, step, lambda t: t, np.copy


def _torch(threads):
    import torch

    torch.set_num_threads(threads)
    return torch


def torch_autograd_peer(x, y, theta, beta, threads):
    torch = _torch(threads)
    n, d = x.shape
    m = theta.shape[0]
    loss = two_layer_loss(torch, torch.from_numpy(x), torch.from_numpy(y), beta, m, d)

    def velocity(theta):
        theta = torch.as_tensor(theta).requires_grad_(True)
        loss(theta).backward()
        return -m * theta.grad.numpy()

    def step(theta, dt):  # the usual training loop: backward(), then an in-place update
        theta.grad = None
        loss(theta).backward()
        with torch.no_grad():
            theta.add_(theta.grad, alpha=-m * dt)
        return theta

    return velocity, step, lambda t: t, lambda t: torch.from_numpy(t).requires_grad_(True)


def torch_manual_peer(x, y, theta, beta, threads):
    """The numpy peer's hand-written backward in torch (in-place, no autograd)."""
    torch = _torch(threads)
    n, d = x.shape
    m = theta.shape[0]
    c = beta / n
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def velocity(theta):
        a, w, b = theta[:, 0], theta[:, 1:d + 1], theta[:, d + 1]
        s = torch.addmm(b, x, w.T).tanh_()  # S = tanh(H), n x m
        r = (beta / m) * (s @ a) - y
        v = torch.empty_like(theta)
        v[:, 0] = -c * (r @ s)
        s.square_().neg_().add_(1.0)  # tanh'(H)
        s.mul_(r[:, None]).mul_(a[None, :])  # G = diag(r) tanh'(H) diag(a)
        v[:, 1:d + 1] = -c * (s.T @ x)
        v[:, d + 1] = -c * s.sum(dim=0)
        return v

    def step(theta, dt):
        return theta.add_(velocity(theta), alpha=dt)

    return (lambda t: velocity(torch.from_numpy(t)).numpy()), step, lambda t: t, torch.from_numpy


def _resnet_shapes(x, blocks, head, depth):
    n, d = x.shape
    return n, d, depth, blocks.shape[0] // depth, head.shape[0]


def jax_grad_resnet_peer(x, y, params, beta, threads, alpha, depth):
    jax, jnp = _jax()
    n, d, L, M, K = _resnet_shapes(x, *params, depth)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(params):
        blocks, head = params

        def layer(z, theta):  # one residual layer: z + (alpha/(L M)) sum_j u_j tanh(w_j.z + b_j)
            u, w, b = theta[:, :d], theta[:, d:2 * d], theta[:, 2 * d]
            return z + (alpha / (L * M)) * jnp.tanh(z @ w.T + b) @ u, None

        z, _ = jax.lax.scan(layer, x, blocks.reshape(L, M, 2 * d + 1))
        f = (beta / K) * jnp.tanh(z @ head[:, 1:].T) @ head[:, 0]
        return 0.5 * jnp.mean((f - y) ** 2)

    def velocity(params):
        g_blocks, g_head = jax.grad(loss)(params)
        return -L * M * g_blocks, -K * g_head

    step = jax.jit(lambda params, dt: tuple(p + dt * v for p, v in zip(params, velocity(params))),
                   donate_argnums=0)
    return (jax.jit(velocity), step, lambda t: jax.block_until_ready(t),
            lambda t: tuple(jnp.asarray(a) for a in t))


def torch_autograd_resnet_peer(x, y, params, beta, threads, alpha, depth):
    torch = _torch(threads)
    n, d, L, M, K = _resnet_shapes(x, *params, depth)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def loss(blocks, head):
        z = x
        for theta in blocks.view(L, M, 2 * d + 1):
            u, w, b = theta[:, :d], theta[:, d:2 * d], theta[:, 2 * d]
            z = z + (alpha / (L * M)) * torch.tanh(torch.addmm(b, z, w.T)) @ u
        f = (beta / K) * torch.tanh(z @ head[:, 1:].T) @ head[:, 0]
        return 0.5 * torch.mean((f - y) ** 2)

    def prepare(params):
        return tuple(torch.from_numpy(p).requires_grad_(True) for p in params)

    def velocity(params):
        blocks, head = prepare(params)
        loss(blocks, head).backward()
        return -L * M * blocks.grad.numpy(), -K * head.grad.numpy()

    def step(params, dt):
        blocks, head = params
        blocks.grad = head.grad = None
        loss(blocks, head).backward()
        with torch.no_grad():
            blocks.add_(blocks.grad, alpha=-L * M * dt)
            head.add_(head.grad, alpha=-K * dt)
        return params

    return velocity, step, lambda t: t, prepare


PEERS = {
    "two_layer": {
        "numpy": numpy_peer,
        "jax_grad": jax_grad_peer,
        "jax_vmap_jacobian": jax_vmap_jacobian_peer,
        "keops": keops_peer,
        "torch_autograd": torch_autograd_peer,
        "torch_manual": torch_manual_peer,
    },
    "resnet": {
        "jax_grad": jax_grad_resnet_peer,
        "torch_autograd": torch_autograd_resnet_peer,
    },
}


def relative_error(v, v_ref, blocks):
    """Largest |v - v_ref| over the largest |v_ref|, per block of coordinates; the worst block."""
    worst = 0.0
    for block in blocks:
        scale = np.max(np.abs(v_ref[:, block]))
        worst = max(worst, float(np.max(np.abs(v[:, block] - v_ref[:, block])) / scale))
    return worst


def load(problem, model):
    """(data, initial particles, peer's extra arguments, [(v_ref, column blocks)] per group)."""
    prob = np.load(problem)
    x, y, beta = prob["x"], prob["y"], float(prob["beta"])
    d = x.shape[1]
    if model == "two_layer":
        blocks = [slice(0, 1), slice(1, d + 1), slice(d + 1, d + 2)]  # a, w, b
        return (x, y, prob["theta"], beta), {}, [(prob["v_ref"], blocks)]
    blocks = [slice(0, d), slice(d, 2 * d), slice(2 * d, 2 * d + 1)]  # u, w, b
    head = [slice(0, 1), slice(1, d + 1)]  # a, v
    extra = {"alpha": float(prob["alpha"]), "depth": int(prob["depth"])}
    return ((x, y, (prob["blocks"], prob["head"]), beta), extra,
            [(prob["v_ref_blocks"], blocks), (prob["v_ref_head"], head)])


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("peer", choices=sorted(set().union(*PEERS.values())))
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--model", choices=sorted(PEERS), default="two_layer")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--dt", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = p.parse_args()
    if args.peer not in PEERS[args.model]:
        p.error(f"no {args.model} peer {args.peer}")

    (x, y, theta, beta), extra, refs = load(args.problem, args.model)
    velocity, step, sync, prepare = PEERS[args.model][args.peer](x, y, theta, beta, args.threads, **extra)
    result = {"peer": args.peer, "model": args.model, "threads": args.threads}

    copy = theta.copy() if args.model == "two_layer" else tuple(t.copy() for t in theta)
    v = velocity(copy)
    v = [np.asarray(v)] if args.model == "two_layer" else [np.asarray(t) for t in v]
    result["relative_error"] = err = max(relative_error(vg, ref, blocks) for vg, (ref, blocks) in zip(v, refs))
    result["verified"] = bool(err <= TOLERANCE)
    if not result["verified"]:
        result["status"] = "mismatch"
    else:
        state = prepare(theta)
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

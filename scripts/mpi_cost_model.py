#!/usr/bin/env python3
"""Predicted parallel efficiency of one velocity evaluation on P GPUs (docs/mpi.md, "Cost model").

    /usr/bin/python3 scripts/mpi_cost_model.py

Compute: flops per (particle, sample) pair, divided by an achieved per-GPU rate. Communication:
the allreduces of one evaluation, each costing a latency term plus the ring-allreduce bandwidth
term 2 (P-1)/P * bytes / B. Efficiency = T_compute(1)/P / (T_compute(1)/P + T_comm(P)). Every
assumption is a named constant below; change them to match a machine.
"""
import math

# H200: ~34 TFLOP/s fp64 vector (67 with tensor cores, which these kernels cannot use: each pair
# evaluates an activation between the dot products). Assume half of the vector peak is reached.
RATE = 0.5 * 34e12  # flop/s per GPU

# Allreduce: NCCL-like. Within a node (P <= 8): NVLink 4, ~350 GB/s bus bandwidth, ~10 us per
# small allreduce. Across nodes: InfiniBand NDR 400 Gb/s per GPU (~40 GB/s achieved), latency
# growing with the tree depth, 2 * 2.5 us per doubling beyond one node.
def allreduce_seconds(p, nbytes):
    if p == 1:
        return 0.0
    bandwidth = 350e9 if p <= 8 else 40e9
    latency = 10e-6 + (2 * 2.5e-6 * math.log2(p / 8) if p > 8 else 0.0)
    return latency + 2 * (p - 1) / p * nbytes / bandwidth


def two_layer(p, m, n, d):
    """Model A: f = allreduce of the n partial outputs; velocities are local."""
    flops = m * n * (4 * d + 40)  # forward (w.x, sigma) and backward (sigma', the d+2 sums)
    return flops / RATE, allreduce_seconds(p, 8 * n)


def resnet_per_layer(p, depth, width, head, n, d):
    """Model B as built: each layer's M particles sharded across all ranks, so every rank works
    in every layer of both passes; one allreduce of the n x d layer increment (forward) and one
    of the n x d adjoint (backward) per layer, plus the head's."""
    flops = depth * width * n * (12 * d + 60) + head * n * (4 * d + 40)
    comm = (2 * depth + 2) * allreduce_seconds(p, 8 * n * d)
    return flops / RATE, comm


def efficiency(t1, comm, p):
    return t1 / p / (t1 / p + comm)


def main():
    gpus = [8, 64, 1000]
    print(f"Assumptions: {RATE / 1e12:.0f} TFLOP/s achieved per GPU; allreduce: NVLink "
          "350 GB/s, 10 us within 8 GPUs; IB 40 GB/s per GPU, 10 us + 5 us per doubling beyond.")
    print()
    print("| model | sizes | T_compute(1 GPU) | " +
          " | ".join(f"P = {p}: comm, efficiency" for p in gpus) + " |")
    print("|---|---|---|" + "---|" * len(gpus))
    for m, n, d in [(10**7, 10**4, 100), (10**6, 10**3, 20)]:
        t1, _ = two_layer(1, m, n, d)
        cells = []
        for p in gpus:
            _, comm = two_layer(p, m, n, d)
            cells.append(f"{comm * 1e6:.0f} us, {efficiency(t1, comm, p):.0%}")
        print(f"| A, two-layer | m = {m:.0e}, n = {n:.0e}, d = {d} | {t1 * 1e3:.3g} ms | " +
              " | ".join(cells) + " |")
    for depth, width, head, n, d in [(64, 10**4, 10**4, 10**4, 100), (64, 10**5, 10**4, 10**4, 100)]:
        sizes = f"L = {depth}, M = {width:.0e}, K = {head:.0e}, n = {n:.0e}, d = {d}"
        t1, _ = resnet_per_layer(1, depth, width, head, n, d)
        cells = []
        for p in gpus:
            _, comm = resnet_per_layer(p, depth, width, head, n, d)
            cells.append(f"{comm * 1e3:.3g} ms, {efficiency(t1, comm, p):.0%}")
        print(f"| B, per-layer shards | {sizes} | {t1 * 1e3:.3g} ms | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()

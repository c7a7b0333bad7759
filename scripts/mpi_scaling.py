#!/usr/bin/env python3
"""Strong scaling of one mfsim step across MPI ranks (docs/mpi.md).

    /usr/bin/python3 scripts/mpi_scaling.py [--mfsim build-mpi/simulations/mfsim]
        [--model two_layer|resnet] [--ranks 1 2] [--repeat 5] [--steps 10]

Runs the same config (no diagnostics, Euler: one velocity evaluation per step) with each rank
count and prints the seconds per step: the run loop's own timing ("in X s", which excludes start-up
and the setup), divided by the steps, minimum over the repetitions (the least disturbed one). On a
shared machine wall times mean little: the CPU time of the whole job (all ranks, start-up
included) is printed too, and ranks x CPU(1 rank) / CPU(P ranks) predicts the idle-machine
speed-up when the ranks are balanced (waits in MPI spin, so they count as CPU time). Sizes:
two_layer n = 1000, m = 10^5, d = 5 (the target: 1 -> 2 ranks at least 1.7x faster);
resnet n = 1000, L = 8, M = 2000, K = 2000, d = 5.
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile

CONFIGS = {
    "two_layer": """
[model]
kind = "two_layer"
activation = "tanh"
width = 100000
[data]
kind = "teacher"
dim = 5
n_train = 1000
n_test = 10
seed = 1
""",
    "resnet": """
[model]
kind = "resnet"
depth = 8
width = 2000
head_width = 2000
activation = "tanh"
head_activation = "tanh"
[data]
kind = "teacher"
dim = 5
n_train = 1000
n_test = 10
seed = 1
""",
}
COMMON = """
[init]
kind = "gaussian"
seed = 2
[flow]
integrator = "euler"
dt = 0.01
steps = {steps}
[output]
observe_every = {steps}
snapshot_every = {steps}
[diagnostics]
gram = false
ntk = false
path_norm = false
path_length = false
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--mfsim", default=os.path.join(here, "..", "build-mpi", "simulations",
                                                        "mfsim"))
    parser.add_argument("--mpiexec", default="mpiexec")
    parser.add_argument("--model", choices=sorted(CONFIGS), default="two_layer")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "scaling.toml")
        with open(config, "w") as f:
            f.write(CONFIGS[args.model] + COMMON.format(steps=args.steps))
        best, best_cpu = {}, {}
        for rep in range(args.repeat):
            for ranks in args.ranks:  # interleaved, so that a disturbance hits every count alike
                command = [args.mfsim, "run", config, "-o", os.path.join(tmp, "run.h5"), "-f",
                           "-q"]
                if ranks > 1:
                    command = [args.mpiexec, "--bind-to", "core", "-n", str(ranks), *command]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                seconds = float(re.search(r" in ([0-9.eE+-]+) s;", out.stdout).group(1))
                per_step = seconds / args.steps
                best[ranks] = min(best.get(ranks, float("inf")), per_step)
                best_cpu[ranks] = min(best_cpu.get(ranks, float("inf")), cpu)
                print(f"rep {rep}: {ranks} rank(s): {per_step * 1e3:.1f} ms/step, "
                      f"{cpu:.2f} CPU s in all (with start-up)", file=sys.stderr)
        base, base_cpu = best[args.ranks[0]], best_cpu[args.ranks[0]] / args.ranks[0]
        print(f"{args.model}: wall seconds per step (min over {args.repeat} repetitions); CPU "
              "seconds of the whole job, all ranks (min), and the speed-up they predict on an "
              "idle machine, ranks x CPU(first) / CPU(this)")
        for ranks in args.ranks:
            print(f"  {ranks} rank(s): {best[ranks] * 1e3:9.1f} ms/step   speed-up "
                  f"{base / best[ranks]:.2f}x   CPU {best_cpu[ranks]:.2f} s   CPU-predicted "
                  f"speed-up {ranks * base_cpu / best_cpu[ranks]:.2f}x")


if __name__ == "__main__":
    main()

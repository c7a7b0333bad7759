#!/usr/bin/env python3
"""An MPI run against the single-process run of the same config.

    check_mpi_run.py MFSIM MPIEXEC CASE RANKS

CASE is two_layer | resnet (100 steps, every loss observed, the particles snapshotted), langevin |
langevin_resnet (the same with noise, weight decay and the path-norm penalty: the noise is keyed
by global particle id, so only the reductions' order differs), langevin_bitwise (β = 0: no
reduction touches the particles, which must then be bitwise equal), sgd | sgd_resnet (minibatch and
online SGD: the same draws on every rank), multiclass | multiclass_sgd | multiclass_resnet (model.outputs = 3
with the cross-entropy on an imported file of three classes, full batch or minibatches, model A or
B), restart |
restart_resnet (a restart from a single-process file: each rank reads its part of every layer by a
strided hyperslab), population | restart_population (the population-risk flow: the particles
all-gathered at every evaluation), resnet_narrow (M = 4: on 3 ranks the last holds no block particle),
resnet_cache (d = 64 inputs: model B's activation cache on every rank) or errors (a failure on rank 0 only, and a non-finite
flow), or configs (ranks started with different configs: refused before anything is written). The reference is the same binary run without mpirun. Exit 0 when everything agrees.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

MFSIM, MPIEXEC, CASE, RANKS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

# Summation order is the only difference (allreduce of partial sums): losses to 1e-12 relative
# (the MPI contract, docs/mpi.md); particles after 100 steps and the diagnostics derived from them (Gram
# eigenvalues, kNN distances, path norms) to 1e-10.
LOSS_RTOL, OTHER_RTOL = 1e-12, 1e-10
# Observables that measure round-off themselves (|a − b|/max(|a|, |b|) of an identity): both runs
# must keep them at round-off level, but their values are noise and cannot agree relatively.
ROUNDOFF_ATOL = {"energy_identity_error": 1e-12}

# What both models observe and write: every step's observables, snapshots every 25 steps, and
# the diagnostics that reduce across ranks.
OBSERVE = """
[output]
observe_every = 1
snapshot_every = 25
[diagnostics]
every = 10
gram = true
kl = ["transport", "knn"]
knn_k = 3
path_norm = true
"""

TWO_LAYER = """
[model]
kind = "two_layer"
activation = "tanh"
width = 200
[data]
kind = "teacher"
dim = 4
n_train = 40
n_test = 60
seed = 1
[init]
kind = "gaussian"
seed = 2
antithetic = true
[flow]
integrator = "rk4"
dt = 0.05
steps = 100
""" + OBSERVE

# The population flow (erf, no bias): every rank's particles against all of them (all-gather); the
# Gram diagnostics on a probe set of 25 inputs (each rank's particles' share, summed).
POPULATION = """
[model]
kind = "two_layer"
activation = "erf"
width = 200
bias = false
[data]
kind = "population"
dim = 4
teacher_width = 3
n_test = 60
seed = 1
[init]
kind = "gaussian"
seed = 2
std_w = 0.5
[flow]
integrator = "rk4"
dt = 0.05
steps = 100
[output]
observe_every = 1
snapshot_every = 25
[diagnostics]
every = 10
kl = ["knn"]
knn_k = 3
path_norm = true
probe_samples = 25
"""

# M = 30 per layer: on 2 ranks the per-layer shards hold 14 and 16 particles (M is not a multiple
# of 2P), on 3 ranks 10 each.
RESNET = """
[model]
kind = "resnet"
depth = 4
width = 30
head_width = 40
activation = "tanh"
head_activation = "tanh"
[data]
kind = "teacher"
dim = 3
n_train = 30
n_test = 40
seed = 1
[init]
kind = "gaussian"
seed = 2
antithetic = false
[flow]
integrator = "heun"
dt = 0.1
steps = 100
""" + OBSERVE

# Mean-field Langevin dynamics on top of a config: Euler–Maruyama, the kNN KL (the transport KL is
# refused with noise), the free energy and its entropy.
LANGEVIN_FLOW = """integrator = "euler"
temperature = 0.01
temperature_schedule = "logarithmic"
weight_decay = 0.1
path_norm_penalty = 0.01
"""


def langevin(text):
    for integrator in ('integrator = "rk4"\n', 'integrator = "heun"\n'):
        text = text.replace(integrator, LANGEVIN_FLOW)
    text = text.replace('kl = ["transport", "knn"]', 'kl = ["knn"]')
    assert "temperature" in text and '"transport"' not in text
    return text


failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def run(config, output, ranks, *extra, expect=0):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    command = [MFSIM, "run", config, "-o", output, "-q", *extra]
    if ranks > 0:
        command = [MPIEXEC, "--oversubscribe", "-n", str(ranks), *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    if result.returncode != expect:
        print(result.stdout, result.stderr)
        raise SystemExit(f"{' '.join(command)}: exit code {result.returncode}, expected {expect}")
    return result


def relative_error(a, b, scale=None):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if scale is None:
        scale = np.max(np.abs(b)) if b.size else 1.0
    scale = max(scale, 1e-300)
    return float(np.max(np.abs(a - b)) / scale) if b.size else 0.0


def compare_files(single, parallel, ranks):
    with h5py.File(single, "r") as s, h5py.File(parallel, "r") as p:
        # A numeric HDF5 attribute since /parameters stores numbers as numbers (older files: text).
        stored = p["parameters"].attrs["ranks"]
        stored = stored.decode() if isinstance(stored, bytes) else stored
        check(str(stored) == str(ranks),
              f"/parameters ranks = {p['parameters'].attrs['ranks']}, expected {ranks}")
        check(sorted(s["observables"]) == sorted(p["observables"]),
              f"observables differ: {sorted(s['observables'])} vs {sorted(p['observables'])}")
        for name in s["observables"]:
            a, b = s["observables"][name], p["observables"][name]
            check(np.array_equal(a["step"][()], b["step"][()]), f"{name}: steps differ")
            if name in ROUNDOFF_ATOL:
                worst = max(np.max(np.abs(a["value"][()])), np.max(np.abs(b["value"][()])))
                check(worst <= ROUNDOFF_ATOL[name], f"{name}: {worst:.3g} above round-off")
                continue
            rtol = LOSS_RTOL if name == "loss" else OTHER_RTOL
            # An eigenvalue is known to round-off relative to the matrix's norm, λ_max: a small
            # λ_min (weight decay shrinks G) is compared on that scale.
            scale = (float(np.max(np.abs(s["observables/gram_lambda_max/value"][()])))
                     if name.endswith("lambda_min") and "gram_lambda_max" in s["observables"] else None)
            err = relative_error(b["value"][()], a["value"][()], scale)
            print(f"  {name}: relative difference {err:.2e}")
            check(err <= rtol, f"{name}: relative difference {err:.3g} > {rtol:g}")
        check(sorted(s["particles"]) == sorted(p["particles"]), "particle groups differ")
        for group in s["particles"]:
            for element in ("position", "log_density"):
                if element not in s["particles"][group]:
                    continue
                a, b = s["particles"][group][element], p["particles"][group][element]
                check(np.array_equal(a["step"][()], b["step"][()]),
                      f"{group}/{element}: snapshot steps differ")
                check(a["value"].shape == b["value"].shape,
                      f"{group}/{element}: shape {b['value'].shape} vs {a['value'].shape}")
                err = relative_error(b["value"][()], a["value"][()])
                print(f"  {group}/{element}: relative difference {err:.2e}")
                check(err <= OTHER_RTOL, f"{group}/{element}: relative difference {err:.3g}")
        losses = s["observables/loss/value"][()]
        check(len(losses) == 101, f"{len(losses)} loss rows, expected 101 (steps 0..100)")


with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)
    if CASE in ("two_layer", "resnet", "resnet_narrow", "resnet_cache", "restart", "restart_resnet",
                "langevin", "langevin_resnet", "langevin_bitwise", "sgd", "sgd_resnet", "multiclass",
                "multiclass_sgd", "multiclass_resnet", "population", "restart_population"):
        config = "run.toml"
        text = RESNET if "resnet" in CASE else POPULATION if "population" in CASE else TWO_LAYER
        if CASE.startswith("multiclass"):
            # 40 + 60 points in R^4, three classes by the argmax of a linear teacher, imported as
            # class labels (single process).
            rng = np.random.default_rng(1)
            x = rng.normal(size=(100, 4))
            y = np.argmax(x @ rng.normal(size=(4, 3)), axis=1)
            np.savetxt("three.csv", np.column_stack([x, y]), delimiter=",", header="a,b,c,d,y",
                       comments="")
            subprocess.run([MFSIM, "data", "import", "three.csv", "-o", "three.h5", "--test-fraction",
                            "0.6", "--normalize-to-sphere"], check=True, capture_output=True)
            text = text.replace('kind = "teacher"\n', 'kind = "file"\npath = "three.h5"\n')
            text = text.replace('width = 200\n', 'width = 200\nloss = "cross_entropy"\noutputs = 3\n')
            text = text.replace('head_width = 40\n', 'head_width = 40\nloss = "cross_entropy"\noutputs = 3\n')
            assert 'outputs = 3' in text
            if CASE == "multiclass_sgd":
                text = text.replace("steps = 100\n", "steps = 100\nbatch_size = 7\n")
        if CASE.startswith("langevin"):
            text = langevin(text)
        if CASE == "langevin_bitwise":
            text = text.replace("[model]\n", "[model]\nbeta = 0\n")
        if CASE.startswith("sgd"):  # minibatches of 7 (online for the ResNet): the same draws on every rank
            text = text.replace("steps = 100\n", "steps = 100\nbatch_size = 7\n" +
                                ("online = true\n" if "resnet" in CASE else ""))
        if CASE == "resnet_cache":  # from d = 64 inputs each rank keeps its pairs' π and q·u
            text = text.replace("\ndim = 3\n", "\ndim = 64\n")
            assert "\ndim = 64\n" in text
        if CASE == "resnet_narrow":
            text = text.replace("\nwidth = 30\n", "\nwidth = 4\n")
            assert "\nwidth = 4\n" in text
        with open(config, "w") as f:
            f.write(text)
        run(config, "single.h5", 0)
        if CASE.startswith("restart"):
            # Restart the last frame for 30 more steps: every rank reads its shard of the file.
            restart = ["--set", 'init.kind="file"', "--set", 'init.path="single.h5"',
                       "--set", "flow.steps=100"]
            run(config, "restart_single.h5", 0, *restart)
            run(config, "restart_mpi.h5", RANKS, *restart)
            compare_files("restart_single.h5", "restart_mpi.h5", RANKS)
            with h5py.File("restart_mpi.h5", "r") as f:
                check(f["observables/loss/step"][0] == 100, "the restart does not start at step 100")
        else:
            run(config, "mpi.h5", RANKS)
            compare_files("single.h5", "mpi.h5", RANKS)
            if CASE == "langevin_bitwise":
                with h5py.File("single.h5", "r") as s, h5py.File("mpi.h5", "r") as p:
                    for group in s["particles"]:
                        a = s["particles"][group]["position/value"][()]
                        b = p["particles"][group]["position/value"][()]
                        check(np.array_equal(a, b), f"{group}: noisy particles not bitwise equal")
    elif CASE == "errors":
        config = "run.toml"
        with open(config, "w") as f:
            f.write(TWO_LAYER)
        # Only rank 0 checks the output path: every rank must still stop with code 2, one message,
        # and the existing file untouched.
        run(config, "existing.h5", 0)
        before = open("existing.h5", "rb").read()
        r = run(config, "existing.h5", RANKS, expect=2)
        lines = [l for l in r.stderr.splitlines() if l.startswith("mfsim: error")]
        check(len(lines) == 1 and "exists" in lines[0], f"error lines: {lines}")
        check(open("existing.h5", "rb").read() == before, "the existing file changed")
        # A non-finite flow: code 3 on every rank, one message, and the file keeps the last finite
        # state, like the single-process run.
        blowup = ["--set", "flow.dt=1e6", "--set", 'flow.integrator="euler"']
        single = run(config, "nan_single.h5", 0, *blowup, expect=3)
        r = run(config, "nan_mpi.h5", RANKS, *blowup, expect=3)
        lines = [l for l in r.stderr.splitlines() if l.startswith("mfsim: error")]
        check(len(lines) == 1 and "non-finite" in lines[0], f"error lines: {lines}")
        check(lines and lines[0] in single.stderr, f"{lines} differs from {single.stderr!r}")
        with h5py.File("nan_single.h5", "r") as s, h5py.File("nan_mpi.h5", "r") as p:
            for group in s["particles"]:
                a = s["particles"][group]["position"]
                b = p["particles"][group]["position"]
                check(np.array_equal(a["step"][()], b["step"][()]), "saved frames differ")
                check(np.allclose(a["value"][()], b["value"][()], rtol=1e-10, atol=0),
                      "saved particles differ")
        # An unreadable init file: code 2, one message.
        r = run(config, "none.h5", RANKS, "--set", 'init.kind="file"', "--set",
                'init.path="missing.h5"', expect=2)
        lines = [l for l in r.stderr.splitlines() if l.startswith("mfsim: error")]
        check(len(lines) == 1 and "missing.h5" in lines[0], f"error lines: {lines}")
        check(not os.path.exists("none.h5"), "a failed run created its output")
    elif CASE == "configs":
        config = "run.toml"
        with open(config, "w") as f:
            f.write(TWO_LAYER)
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        run(config, "existing.h5", 0)
        before = open("existing.h5", "rb").read()
        # Rank 0 with the config as it is, the others with one key changed (an MPMD launch): every
        # rank stops with code 2 and one message naming the difference, before any file is
        # written; no hang (the timeout), no crash.
        for key, value in [("init.seed", "7"), ("model.width", "48"), ("data.dim", "3"),
                           ("flow.steps", "7"), ("data.n_train", "30"),
                           ("model.kind", '"resnet"')]:
            for output, force in [("new.h5", []), ("existing.h5", ["--force"])]:
                command = [MFSIM, "run", config, "-o", output, "-q", *force]
                launch = [MPIEXEC, "--oversubscribe", "-n", "1", *command, ":", "-n",
                          str(RANKS - 1), *command, "--set", f"{key}={value}"]
                try:
                    r = subprocess.run(launch, env=env, capture_output=True, text=True,
                                       timeout=120)
                except subprocess.TimeoutExpired:
                    check(False, f"{key}={value} on ranks 1..: the job hangs")
                    continue
                lines = [l for l in r.stderr.splitlines() if l.startswith("mfsim: error")]
                check(r.returncode == 2, f"{key}={value}: exit code {r.returncode}: {r.stderr}")
                check(len(lines) == 1 and "different configs" in lines[0] and key.split(".")[1]
                      in lines[0], f"{key}={value}: error lines {lines}")
                check(not os.path.exists("new.h5"), f"{key}={value}: new.h5 was written")
                check(open("existing.h5", "rb").read() == before,
                      f"{key}={value}: existing.h5 changed")
                leftovers = [n for n in os.listdir(".") if n.startswith(".")]
                check(not leftovers, f"{key}={value}: left {leftovers}")
    else:
        raise SystemExit(f"unknown case {CASE}")

if failures:
    raise SystemExit(f"{len(failures)} check(s) failed")
print(f"{CASE} with {RANKS} ranks: " + ("every config mismatch refused" if CASE == "configs"
                                        else "agrees with the single-process run"))

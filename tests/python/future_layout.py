"""Adds to a real mfsim file what the diagnostics and ResNet branches will write:
the Gram/KL/path-norm observables, λ₀, the gram spectrum, and the ResNet particle groups.

The analysis package must draw them without knowing more than their names; these tests keep it so.
"""

import h5py
import numpy as np

OBSERVABLES = (
    "gram_lambda_min", "gram_lambda_max", "energy_identity_error", "loss_bound", "kl_transport",
    "kl_knn", "kl_knn_two_sample", "path_norm_l1", "path_norm_l2", "rademacher_bound",
    "w2_path_length", "gram_blocks_lambda_min", "gram_head_lambda_min", "kl_blocks_transport",
    "kl_head_knn", "path_norm_weighted", "some_new_observable",
)


def _series(group, name, steps, times, values):
    element = group.create_group(name)
    element["step"] = steps
    element["time"] = times
    element["value"] = values


def add_future_layout(path, layers=4, blocks_per_layer=8, head_width=16, lambda0=0.05, gram_scale=2.0):
    with h5py.File(path, "r+", locking=False) as f:
        loss = f["observables/loss"]
        steps, times = loss["step"][:], loss["time"][:]
        t = times + 1.0
        obs = f["observables"]
        for k, name in enumerate(OBSERVABLES):
            if name.startswith("kl_"):
                values = 0.01 * times**2
            elif name == "energy_identity_error":
                values = 1e-15 * (-1.0) ** np.arange(times.size)
            else:
                values = (k + 1) * 0.1 / t
            _series(obs, name, steps, times, values)
        n = f["data/train/y"].shape[0]
        _series(obs, "gram_spectrum", steps, times, np.outer(1 / t, np.linspace(0.1, 2, n)))
        f["parameters"].attrs["ntk_lambda0"] = str(lambda0)  # as the diagnostics branch writes them
        f["parameters"].attrs["ntk_gram_scale"] = str(gram_scale)

        frames = f["particles/two_layer/position/step"].shape[0]
        d = f["data/train/x"].shape[1]
        rng = np.random.default_rng(5)
        for name, rows, columns, slices in (
            ("resnet_blocks", layers * blocks_per_layer,
             [f"u_{i}" for i in range(1, d + 1)] + [f"w_{i}" for i in range(1, d + 1)] + ["b"], layers),
            ("resnet_head", head_width, ["a"] + [f"v_{i}" for i in range(1, d + 1)], 1),
        ):
            g = f.create_group(f"particles/{name}")
            g.attrs["slices"] = np.array([slices], dtype=np.int32)
            pos = g.create_group("position")
            base = rng.normal(size=(rows, len(columns)))
            drift = rng.normal(size=(rows, len(columns)))
            pos["value"] = np.stack([base + 0.1 * j * drift for j in range(frames)])
            pos["value"].attrs["columns"] = columns
            pos["step"] = f["particles/two_layer/position/step"][:]
            pos["time"] = f["particles/two_layer/position/time"][:]

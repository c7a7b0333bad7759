#!/usr/bin/env python3
"""mfsim from Python: a width sweep of the two-layer mean-field network on a scikit-learn data set
(diabetes: 442 patients, 10 features, a disease-progression score), fed to mfsim as numpy arrays;
the test loss against the flow time, read from memory, on one figure. Nothing is written but the
figure.

    python3 examples/python_quickstart.py [--figure quickstart.png] [--quick]
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

import mfsim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default="python_quickstart.png")
    parser.add_argument("--quick", action="store_true", help="fewer widths and a shorter flow")
    args = parser.parse_args()

    # Features and targets standardised with the training statistics.
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y_mean, y_std = y_train.mean(), y_train.std()
    y_train, y_test = (y_train - y_mean) / y_std, (y_test - y_mean) / y_std
    data = mfsim.Data(x_train, y_train, x_test, y_test)

    config = mfsim.Config({
        "model": {"kind": "two_layer", "activation": "tanh", "beta": 1.0},
        "init": {"seed": 2, "antithetic": True},  # f = 0 at t = 0
        "flow": {"integrator": "heun", "dt": 0.1, "t_end": 10.0 if args.quick else 40.0},
        "output": {"observe_every": 5},
        "diagnostics": {"kl": [], "gram": False},
    })
    widths = [16, 128, 1024] if args.quick else [16, 64, 256, 1024, 4096]

    figure, axes = plt.subplots(figsize=(6, 4))
    print(f"{'width':>6} {'train loss':>11} {'test loss':>10} {'min test loss':>14}")
    for width in widths:
        sim = mfsim.Simulation(config.with_overrides({"model.width": width}), data)
        result = sim.run(progress=False)
        test = result.observables["test_loss"]
        axes.plot(test.times, test.values, label=f"m = {width}")
        print(f"{width:>6} {result.loss:>11.4f} {test.values[-1]:>10.4f} {test.values.min():>14.4f}")
    axes.set_xlabel("flow time t")
    axes.set_ylabel("test loss (standardised targets)")
    axes.set_yscale("log")
    axes.set_title("Two-layer mean-field flow on sklearn's diabetes data")
    axes.legend(title="width")
    figure.tight_layout()
    figure.savefig(args.figure, dpi=120)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()

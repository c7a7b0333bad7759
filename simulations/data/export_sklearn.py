#!/usr/bin/python3
"""Writes one of the real data sets that Debian's python3-sklearn ships (no download) as a CSV
with a header row, the label column named `target`, for `mfsim data import`.

    /usr/bin/python3 simulations/data/export_sklearn.py breast_cancer runs/breast_cancer.csv
    build/simulations/mfsim data import runs/breast_cancer.csv -o runs/breast_cancer.h5 \\
        --label-column target --test-fraction 0.25 --standardize --normalize-to-sphere --binary-labels

Data sets: breast_cancer (569 × 30, two classes), digits (1797 × 64, ten classes; `--classes A,B`
keeps two of them), iris (150 × 4, three classes; `--classes`), wine (178 × 13, three classes),
diabetes (442 × 10, regression; import it with `--real-labels`: its targets are whole numbers).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

LOADERS = {"breast_cancer": "load_breast_cancer", "digits": "load_digits", "iris": "load_iris",
           "wine": "load_wine", "diabetes": "load_diabetes"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(LOADERS))
    p.add_argument("output", help="the CSV file to write")
    p.add_argument("--classes", help="keep only these two labels, e.g. 3,8 (digits) or 1,2 (iris)")
    args = p.parse_args(argv)
    try:
        import sklearn.datasets
    except ImportError:
        sys.exit("export_sklearn: error: scikit-learn is not installed (apt-get install python3-sklearn)")
    bunch = getattr(sklearn.datasets, LOADERS[args.name])()
    x, y = np.asarray(bunch.data, dtype=float), np.asarray(bunch.target, dtype=float)
    names = [str(n).replace(",", " ") for n in getattr(bunch, "feature_names", range(x.shape[1]))]
    if args.classes:
        keep = [float(c) for c in args.classes.split(",")]
        mask = np.isin(y, keep)
        x, y = x[mask], y[mask]
    with open(args.output, "w") as f:
        f.write(",".join(names + ["target"]) + "\n")
        for row, label in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label:g}\n")
    print(f"export_sklearn: wrote {args.output} ({x.shape[0]} rows, {x.shape[1]} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`mfsim data import`: a CSV (or .npy pair) to the data file that data.kind = "file" reads, its
preprocessing checked in numpy, and every kind of bad input refused with one line and no file."""

import subprocess

import h5py
import numpy as np
import pytest

from conftest import mfsim_executable, run_mfsim
from mfsim_analysis import open_run


def mfsim(*args):
    return subprocess.run([str(mfsim_executable()), *map(str, args)], capture_output=True, text=True, timeout=300)


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.1] + [0.0, 2.0, -1.0]
    y = (x[:, 0] + 0.2 * x[:, 1] > 0.4).astype(int)
    path = write_csv(tmp_path / "t.csv", ["a", "b", "c", "label"], [[*r, int(l)] for r, l in zip(x, y)])
    return path, x, y


def test_import_splits_standardizes_and_records(tmp_path, table):
    path, x, y = table
    out = tmp_path / "d.h5"
    r = mfsim("data", "import", path, "-o", out, "--label-column", "label", "--test-fraction", "0.25",
              "--standardize", "--binary-labels", "--seed", 4)
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        xt, yt = f["data/train/x"][()], f["data/train/y"][()]
        xs, ys = f["data/test/x"][()], f["data/test/y"][()]
        p = f["parameters"].attrs
        assert p["import_n_train"] == 30 and p["import_n_test"] == 10 and p["import_features"] == 3
        assert str(p["import_binary_labels"]) == "0 -> -1, 1 -> +1"
        assert len(str(p["import_source_fnv1a64"])) == 16
    assert set(np.unique(np.concatenate([yt, ys]))) == {-1.0, 1.0}
    np.testing.assert_allclose(xt.mean(axis=0), 0, atol=1e-12)  # training statistics
    np.testing.assert_allclose(xt.std(axis=0), 1, rtol=1e-12)
    # The same seed gives the same split: unstandardized, its rows are input rows with their labels,
    # and standardizing them with the training mean and std gives the file above.
    raw = tmp_path / "raw.h5"
    assert mfsim("data", "import", path, "-o", raw, "--label-column", "label", "--test-fraction", "0.25",
                 "--binary-labels", "--seed", 4).returncode == 0
    with h5py.File(raw, "r") as f:
        rt, rs, ryt = f["data/train/x"][()], f["data/test/x"][()], f["data/train/y"][()]
    inputs = {tuple(r): 2 * l - 1 for r, l in zip(x, y)}
    for row, label in zip(rt, ryt):
        assert inputs[tuple(row)] == label
    mean, sd = rt.mean(axis=0), rt.std(axis=0)
    np.testing.assert_allclose(xt, (rt - mean) / sd, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xs, (rs - mean) / sd, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(yt, ryt)
    other = tmp_path / "other.h5"
    assert mfsim("data", "import", path, "-o", other, "--test-fraction", "0.25", "--seed", 5).returncode == 0
    with h5py.File(other, "r") as f:
        assert not np.array_equal(f["data/test/x"][()], rs)


def test_import_then_run_on_the_file(tmp_path, table):
    path, x, y = table
    out = tmp_path / "d.h5"
    assert mfsim("data", "import", path, "-o", out, "--test-fraction", "0.2", "--normalize-to-sphere",
                 "--binary-labels").returncode == 0
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(np.linalg.norm(f["data/train/x"][()], axis=1), 1, rtol=1e-12)
    run = run_mfsim(tmp_path / "run.h5", data__kind='"file"', data__path=f'"{out}"', model__loss='"logistic"')
    with open_run(run) as r:
        assert r.data.x_train.shape == (32, 3)
        assert "train_accuracy" in r.observables
    with h5py.File(run, "r") as f:  # what the run read: sizes in the resolved config, the file's bytes
        p = f["parameters"].attrs
        resolved = str(p["config_resolved"])
        assert "dim = 3" in resolved and "n_train = 32" in resolved and "n_test = 8" in resolved
        assert str(p["data_file"]) == str(out.resolve())
    h = 0xcbf29ce484222325  # FNV-1a 64 of the data file's bytes
    for byte in out.read_bytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    with h5py.File(run, "r") as f:
        assert str(f["parameters"].attrs["data_file_fnv1a64"]) == f"{h:016x}"


def test_import_npy_pair(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([1, -1, 1, -1], dtype=np.int64))
    out = tmp_path / "d.h5"
    r = mfsim("data", "import", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-o", out)
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["data/train/x"][()], x)
        np.testing.assert_array_equal(f["data/train/y"][()], [1, -1, 1, -1])


BAD = {
    "ragged.csv": ("a,b,y\n1,2,1\n3,1\n", [], "line 3 has 2 cells, expected 3"),
    "text.csv": ("a,b,y\n1,2,1\n3,x4,0\n", [], 'line 3, column b: "x4" is not a number'),
    "nan.csv": ("a,b,y\n1,nan,1\n", [], "line 2, column b"),
    "inf.csv": ("a,b,y\n1,2,1\ninf,2,0\n", [], "is not finite"),
    "empty.csv": ("a,b,y\n", [], "no data rows"),
    "one_column.csv": ("y\n1\n2\n", [], "one column only"),
    "missing_label.csv": ("a,b,y\n1,2,1\n", ["--label-column", "target"], "--label-column target: no such column"),
    "three_classes.csv": ("a,y\n1,0\n2,1\n3,2\n", ["--binary-labels"], "3 distinct labels, expected 2"),
    "all_test.csv": ("a,y\n1,0\n", ["--test-fraction", "0.9"], "leaves no training row"),
    "bad_fraction.csv": ("a,y\n1,0\n", ["--test-fraction", "1.5"], "--test-fraction: must be in [0, 1)"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_refused_with_one_line_and_nothing_written(tmp_path, name):
    text, options, message = BAD[name]
    (tmp_path / name).write_text(text)
    out = tmp_path / "never.h5"
    r = mfsim("data", "import", tmp_path / name, "-o", out, *options)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not out.exists()
    if name == "nan.csv":
        assert "nan" in r.stderr.lower()


def test_existing_output_needs_force_and_bad_npy_is_refused(tmp_path, table):
    path, _, _ = table
    out = tmp_path / "d.h5"
    out.write_bytes(b"keep me")
    r = mfsim("data", "import", path, "-o", out)
    assert r.returncode == 2 and "exists" in r.stderr
    assert out.read_bytes() == b"keep me"
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    r = mfsim("data", "import", tmp_path / "bad.npy", "--labels", tmp_path / "bad.npy", "-o", tmp_path / "n.h5")
    assert r.returncode == 2 and "not a NumPy .npy file" in r.stderr


def test_breast_cancer_example(tmp_path):
    """The real-data example: scikit-learn's bundled breast-cancer table (Debian's python3-sklearn,
    no download) exported, imported and trained on with the logistic loss for a few steps."""
    pytest.importorskip("sklearn")
    from conftest import REPO

    csv, data = tmp_path / "bc.csv", tmp_path / "bc.h5"
    subprocess.run(["/usr/bin/python3", REPO / "simulations/data/export_sklearn.py", "breast_cancer", csv], check=True)
    r = mfsim("data", "import", csv, "-o", data, "--label-column", "target", "--test-fraction", "0.25",
              "--standardize", "--normalize-to-sphere", "--binary-labels")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run.h5"
    r = mfsim("run", REPO / "simulations/configs/breast_cancer_logistic.toml", "-o", out, "-q",
              "--set", f'data.path="{data}"', "--set", "flow.t_end=10", "--set", "diagnostics.gram=false")
    assert r.returncode == 0, r.stderr
    with open_run(out) as run:
        assert run.data.x_train.shape == (427, 30) and run.data.x_test.shape == (142, 30)
        accuracy = run.observables["test_accuracy"].value
        assert accuracy[0] == 0 and accuracy[-1] > 0.9  # f ≡ 0 at t = 0 (antithetic), then > 90 %


def test_bom_is_not_part_of_the_first_column_name(tmp_path):
    """Spreadsheets start a UTF-8 CSV with a byte-order mark; the first column is still "a"."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b,y\n1,2,0\n3,4,1\n5,7,0\n")
    out = tmp_path / "d.h5"
    r = mfsim("data", "import", path, "-o", out, "--label-column", "a")
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        assert str(f["parameters"].attrs["import_labels"]) == "a"
        np.testing.assert_array_equal(f["data/train/y"][()], [1, 3, 5])
        np.testing.assert_array_equal(f["data/train/x"][()], [[2, 0], [4, 1], [7, 0]])


def test_force_replaces_the_output_atomically_keeping_links(tmp_path, table):
    """The data file is written beside the target and renamed over it: a hard link to the old
    file keeps the old bytes (an in-place rewrite would change them), a symbolic link is kept and
    now leads to the new file, and no temporary file is left."""
    path, x, _ = table
    out = tmp_path / "d.h5"
    out.write_bytes(b"old data file")
    (tmp_path / "old_link.h5").hardlink_to(out)
    (tmp_path / "symlink.h5").symlink_to("d.h5")
    r = mfsim("data", "import", path, "-o", tmp_path / "symlink.h5", "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "old_link.h5").read_bytes() == b"old data file"
    assert (tmp_path / "symlink.h5").is_symlink()
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["data/train/x"][()], x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "old_link.h5", "symlink.h5", "t.csv"]


def test_output_that_is_an_input_is_refused_and_kept(tmp_path, table):
    """-o naming the input (directly, through a link, or as the labels file) is refused before
    anything is read or written."""
    path, _, _ = table
    before = path.read_bytes()
    (tmp_path / "link.csv").symlink_to(path.name)
    for out in [path, tmp_path / "link.csv", tmp_path / "sub" / ".." / path.name]:
        r = mfsim("data", "import", path, "-o", out, "--force")
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "is the input file" in r.stderr
    assert path.read_bytes() == before
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    np.save(tmp_path / "y.npy", np.arange(4.0))
    labels = (tmp_path / "y.npy").read_bytes()
    r = mfsim("data", "import", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-o", tmp_path / "y.npy", "--force")
    assert r.returncode == 2 and "is the input file" in r.stderr, r.stderr
    assert (tmp_path / "y.npy").read_bytes() == labels


def hidden(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def is_data_file(path):
    with h5py.File(path, "r") as f:
        return f["data/train/x"].shape[0] > 0


def test_signals_and_kills_leave_the_target_complete_and_temporaries_the_next_import_removes(tmp_path, table):
    """The data file is written as a run's output is: a hidden temporary ".NAME.mfsim-XXXXXX"
    beside the target. A stop signal at any moment leaves no temporary (it takes effect once the
    temporary is renamed or removed); SIGKILL may leave one, which the next import (or run) of the
    target removes once it is unlocked and a minute old. The target is at every moment absent or
    a complete data file."""
    import os
    import re
    import signal
    import time

    path, _, _ = table
    out = tmp_path / "d.h5"
    delays = [0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
    for sig in [signal.SIGTERM, signal.SIGKILL]:
        for delay in delays:
            out.unlink(missing_ok=True)
            p = subprocess.Popen([str(mfsim_executable()), "data", "import", str(path), "-o", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(sig)
            rc = p.wait(timeout=300)
            assert rc in (0, -sig), (sig, delay, rc)
            if out.exists():
                assert is_data_file(out), (sig, delay)
            if sig == signal.SIGTERM:
                assert hidden(tmp_path) == [], (delay, hidden(tmp_path))
    left = hidden(tmp_path)
    assert all(re.fullmatch(r"\.d\.h5\.mfsim-[0-9a-f]{6}", name) for name in left), left
    # Whatever the kills left, aged as an abandoned temporary is; and one a live writer has just
    # created (fresh), which must stay.
    (tmp_path / ".d.h5.mfsim-0a1b2c").write_bytes(b"killed")
    (tmp_path / ".d.h5.mfsim-3d4e5f").write_bytes(b"just created")
    old = time.time() - 300
    for name in hidden(tmp_path):
        if name != ".d.h5.mfsim-3d4e5f":
            os.utime(tmp_path / name, (old, old))
    r = mfsim("data", "import", path, "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert is_data_file(out)
    assert hidden(tmp_path) == [".d.h5.mfsim-3d4e5f"]

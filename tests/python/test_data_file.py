"""A data file as a user may make it: /data/train/{x,y} (and /data/test) written by h5py, without
the /h5md group of mfsim's own files, is accepted by `mfsim run`; `mfsim info` describes a data
file as a data file."""

import subprocess

import h5py
import numpy as np

from conftest import mfsim_executable, run_mfsim


def mfsim(*args):
    return subprocess.run([str(mfsim_executable()), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_hand_made_data_file_without_h5md_group(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "hand.h5"
    with h5py.File(path, "w") as f:
        f["data/train/x"] = rng.normal(size=(20, 3))
        f["data/train/y"] = rng.normal(size=20)
        f["data/test/x"] = rng.normal(size=(5, 3))
        f["data/test/y"] = rng.normal(size=5)
    out = run_mfsim(tmp_path / "run.h5", data__kind='"file"', data__path=f'"{path}"')
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["data/train/x"][()].shape, (20, 3))
    info = mfsim("info", path)
    assert info.returncode == 0, info.stderr
    assert "a data file: 20 training samples, 5 test samples, dimension 3" in info.stdout
    assert "not made by mfsim data import" in info.stdout


def test_file_with_neither_is_refused_saying_what_to_add(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.ones((3, 2))
    config = tmp_path / "c.toml"
    config.write_text('[data]\nkind = "file"\npath = "%s"\n' % path)
    r = mfsim("run", config, "-o", tmp_path / "o.h5")
    assert r.returncode == 2
    assert "no /h5md group" in r.stderr and "/data/train/x and /data/train/y" in r.stderr
    assert not (tmp_path / "o.h5").exists()


def test_info_of_an_imported_data_file(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(24.0).reshape(12, 2))
    np.save(tmp_path / "y.npy", np.arange(12.0))
    data = tmp_path / "data.h5"
    r = mfsim("data", "import", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-o", data,
              "--test-fraction", "0.25")
    assert r.returncode == 0, r.stderr
    info = mfsim("info", data)
    assert info.returncode == 0, info.stderr
    assert f"{data}: a data file: 9 training samples, 3 test samples, dimension 2" in info.stdout
    assert "mfsim ?" not in info.stdout and "model: ?" not in info.stdout
    assert "import_test_fraction" in info.stdout and "import_labels_fnv1a64" in info.stdout


def test_relative_paths_in_a_config_file_are_taken_from_its_folder(tmp_path):
    """data.path = "data.h5" in project/c.toml is project/data.h5 from any working directory; the
    same path given with --set is taken from the working directory."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    for folder, n in ((project, 12), (elsewhere, 7)):
        with h5py.File(folder / "data.h5", "w") as f:
            f["data/train/x"] = np.ones((n, 2))
            f["data/train/y"] = np.zeros(n)
    (project / "c.toml").write_text('[data]\nkind = "file"\npath = "data.h5"\n[flow]\nsteps = 2\n')

    def run(*extra):
        r = subprocess.run([str(mfsim_executable()), "run", project / "c.toml", "-o", "out.h5", "-q",
                            "--force", *extra], capture_output=True, text=True, cwd=elsewhere,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        with h5py.File(elsewhere / "out.h5", "r") as f:
            return f["data/train/x"].shape[0], f["parameters"].attrs["data_file"]

    assert run() == (12, str(project / "data.h5"))
    assert run("--set", 'data.path="data.h5"') == (7, str(elsewhere / "data.h5"))

#!/usr/bin/python3
"""The bad-input corpus: malformed configs, command lines, output paths and H5 input files,
generated here at test time (no committed binaries) and run end to end against the mfsim binary.

Each case must be refused cleanly: exit code 2, exactly one line on stderr, and no file created,
changed or removed in the working directory (checksums of every file before and after).

Usage: corpus.py MFSIM_EXECUTABLE [--keep DIR] [--timeout SECONDS]
Prints one line per failing case and the totals "bad inputs tried: N, refused cleanly: M";
exit code 0 when every case was refused cleanly, 1 otherwise.
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

import h5py
import numpy as np

TINY = """[model]
width = 32
activation = "tanh"
[data]
dim = 3
n_train = 20
n_test = 10
[flow]
dt = 0.05
steps = 20
[output]
observe_every = 5
snapshot_every = 10
[diagnostics]
kl = ["transport"]
"""

# Config keys and values that no run may accept (wrong type, out of range, not finite, absurd
# size, unknown choice).
BAD_VALUES = {
    "model.kind": ['"cnn"', "3", "true"],
    "model.width": ["0", "-5", "1.5", '"wide"', "9223372036854775807", "[1]", "{a = 1}"],
    "model.beta": ["nan", "inf", "-1", '"x"'],
    "model.depth": ["0", "-1", "1e3", "9223372036854775807"],
    "model.head_width": ["0", '"x"'],
    "model.activation": ['"swish"', "1", '""', '"' + "x" * 100000 + '"'],
    "model.softplus_kappa": ["0", "-inf", "nan"],
    "model.bias": ["1", '"yes"'],
    "model.outputs": ["0", "-1", "1.5", '"3"', "70000"],
    "model.loss": ['"hinge"', "1"],
    "data.kind": ['"csv"', "0"],
    "data.dim": ["0", "-3", "2.5", "2097152"],
    "data.n_train": ["0", "-1", "9223372036854775807", '"many"'],
    "data.n_test": ["-1", "9223372036854775807"],
    "data.noise": ["-0.1", "nan", "inf"],
    "data.teacher_width": ["0", "99999999999"],
    "data.seed": ["-1", '"s"'],
    "init.kind": ['"zeros"', "[]"],
    "init.std_a": ["-1", "nan", "0", "inf"],
    "init.frame": ['"last"', "1.5"],
    "init.antithetic": ['"true"'],
    "flow.dt": ["0", "-0.1", "nan", "inf", '"small"'],
    "flow.steps": ["-1", "1.5", '"x"'],
    "flow.t_end": ["0", "-1", "nan"],
    "flow.integrator": ['"rk45"', "4"],
    "flow.temperature": ["-1", "nan"],
    "flow.weight_decay": ["-1", "inf"],
    "output.observe_every": ["0", "-1"],
    "output.snapshot_every": ["0", '"often"'],
    "output.path": ['""', "5"],
    "diagnostics.kl": ['["entropy"]', '"knn"', "[1]"],
    "diagnostics.knn_k": ["0", "33", "-1"],
    "diagnostics.gram_solver": ['"qr"'],
    "diagnostics.every": ["0"],
    "diagnostics.gibbs_samples": ["1", "-1"],
}

# Whole configs that are bad.
BAD_CONFIGS = {
    "syntax": "[model\nwidth = 3\n",
    "unclosed_string": '[model]\nactivation = "tanh\n',
    "unknown_section": "[modle]\nwidth = 3\n",
    "unknown_key": "[model]\nwidht = 3\n",
    "duplicate_key": "[model]\nwidth = 3\nwidth = 4\n",
    "binary": "\x00\x01\x02\xff\xfe garbage",
    "section_not_table": "model = 3\n",
    "odd_antithetic": TINY.replace("width = 32", "width = 31") + "[init]\nantithetic = true\n",
}


def snapshot(directory):
    """Every file and directory under `directory` with its content (None for a directory; a
    symbolic link or a FIFO by what it is, never opened)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            out[os.path.join(root, d)] = None
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p):
                out[p] = b"link to " + os.readlink(p).encode()
            elif not stat.S_ISREG(os.lstat(p).st_mode):
                out[p] = b"special file"
            else:
                with open(p, "rb") as fh:
                    out[p] = fh.read()
    return out


def checksum(state):
    return {p: c if c is None or isinstance(c, tuple) else hashlib.sha256(c).hexdigest()
            for p, c in state.items()}


def restore(directory, state):
    """Puts `directory` back as `state` found it: a case that damaged it must not make the next
    cases fail (or pass) for the wrong reason."""
    now = snapshot(directory)
    for p in sorted(set(now) - set(state), reverse=True):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.remove(p)
    for p, content in sorted(state.items()):
        if content is None:
            os.makedirs(p, exist_ok=True)
        elif isinstance(content, tuple):
            continue  # a link or a FIFO: the case that made it puts it back
        elif now.get(p) != content:
            with open(p, "wb") as fh:
                fh.write(content)


class Corpus:
    def __init__(self, exe, work, timeout):
        self.exe, self.work, self.timeout = exe, work, timeout
        self.tried = self.refused = 0
        self.failures = []
        self.path = "command line"  # the input path the cases that follow attack
        self.per_path = {}  # path -> [tried, refused]

    def case(self, name, args, expected_in_message="", env=None):
        """Runs mfsim with `args` in the work directory (with `env` added to the environment);
        expects a clean refusal."""
        self.tried += 1
        counts = self.per_path.setdefault(self.path, [0, 0])
        counts[0] += 1
        state = snapshot(self.work)
        before = checksum(state)
        try:
            r = subprocess.run([self.exe] + args, cwd=self.work, capture_output=True,
                               timeout=self.timeout, env={**os.environ, **(env or {})})
            code, err = r.returncode, r.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            code, err = "timeout", ""
        after = checksum(snapshot(self.work))
        problems = []
        if code != 2:
            problems.append(f"exit code {code}")
        lines = err.splitlines()
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        if len(err) > 2000:
            problems.append(f"a {len(err)}-character message")
        if expected_in_message and expected_in_message not in err:
            problems.append(f"message lacks {expected_in_message!r}")
        if before != after:
            changed = sorted(set(before.items()) ^ set(after.items()))
            problems.append(f"files created or touched: {[c[0] for c in changed][:3]}")
        if problems:
            self.failures.append(f"{name}: {'; '.join(problems)}: {err.strip()[:300]}")
            restore(self.work, state)
        else:
            self.refused += 1
            counts[1] += 1


def mutate(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)


def replace(name, data):
    def edit(f):
        del f[name]
        f[name] = data
    return edit


def delete(name):
    def edit(f):
        del f[name]
    return edit


def spoil(name, value):
    def edit(f):
        d = f[name][()]
        d.flat[-1] = value
        f[name][...] = d
    return edit


def h5_mutations(good):
    """(name, edit, how it is used: 'init' or 'data') for every dataset a run reads."""
    out = []
    with h5py.File(good, "r") as f:
        shapes = {k: f[k].shape for k in [
            "particles/two_layer/position/value", "particles/two_layer/position/step",
            "particles/two_layer/position/time", "particles/two_layer/log_density/value",
            "particles/two_layer/log_density/step", "particles/two_layer/log_density/time",
            "data/train/x", "data/train/y", "data/test/x", "data/test/y"]}
    pos = "particles/two_layer/position/"
    logp = "particles/two_layer/log_density/"
    t, n, d = shapes[pos + "value"]
    strings = lambda shape: np.full(shape, b"abc", dtype="S3")
    for name in [pos + "value", pos + "step", pos + "time", logp + "step", logp + "time"]:
        out.append((f"missing {name}", delete(name), "init"))
    for name, shape in [(pos + "value", (t, n)), (pos + "value", (t, n - 1, d)),
                        (pos + "value", (t, n, d - 1)), (pos + "value", (t, n, d, 1)),
                        (pos + "value", (0, n, d)), (pos + "value", (t, 0, d)),
                        (pos + "step", (t, 2)), (pos + "step", (0,)), (pos + "time", (t, 1)),
                        (pos + "time", (0,)), (logp + "value", (t, 10)),
                        (logp + "value", (t, n + 1)), (logp + "value", (t, n, 1)),
                        (logp + "value", (t,)), (logp + "step", (t, 1))]:
        out.append((f"{name} shape {shape}", replace(name, np.ones(shape)), "init"))
    for name, shape in [(pos + "value", (t, n, d)), (pos + "step", (t,)), (pos + "time", (t,)),
                        (logp + "value", (t, n)), (logp + "step", (t,))]:
        out.append((f"{name} strings", replace(name, strings(shape)), "init"))
    for value in [np.nan, np.inf, -np.inf]:
        for name in [pos + "value", pos + "time", logp + "value"]:
            out.append((f"{name} {value}", spoil(name, value), "init"))
        for name in ["data/train/x", "data/train/y", "data/test/x", "data/test/y"]:
            out.append((f"{name} {value}", spoil(name, value), "data"))
    nt, dim = shapes["data/train/x"]
    ne = shapes["data/test/x"][0]
    for name, data in [("data/train/x", np.ones((nt,))), ("data/train/x", np.ones((nt, dim, 1))),
                       ("data/train/x", np.ones((nt - 1, dim))), ("data/train/x", np.ones((0, dim))),
                       ("data/train/x", np.ones((nt, 0))), ("data/train/y", np.ones((nt, 1))),
                       ("data/train/y", np.ones((nt + 1,))), ("data/test/x", np.ones((ne, dim + 1))),
                       ("data/test/y", np.ones((ne + 2,))), ("data/train/x", strings((nt, dim))),
                       ("data/train/y", strings((nt,))), ("data/test/x", strings((ne, dim)))]:
        out.append((f"{name} {data.dtype} {data.shape}", replace(name, data), "data"))
    for name in ["data/train/x", "data/train/y", "data/test/x"]:
        out.append((f"missing {name}", delete(name), "data"))

    def huge(name, shape):
        def edit(f):
            del f[name]
            f.create_dataset(name, shape=shape, dtype="f8", chunks=tuple(1 for _ in shape))
        return edit
    out.append(("data/train absurd size", lambda f: (huge("data/train/x", (2**40, dim))(f),
                                                     huge("data/train/y", (2**40,))(f)), "data"))
    out.append(("position/step absurd size", huge(pos + "step", (2**42,)), "init"))
    return out


# Sizes the config accepts whose arrays no machine holds, each refused before the existing output
# (good.h5, overwritten with --force) is touched.
ABSURD_SIZES = {
    "online batch": ["flow.batch_size=1000000000000000", "flow.online=true"],
    "minibatch of a large set": ["flow.batch_size=1000000000000", "data.n_train=10000000000000"],
    "resnet layer states": ["model.kind=resnet", "model.depth=1048576", "model.width=1",
                            "model.head_width=1", "data.n_train=100000"],
    "resnet head": ["model.kind=resnet", "model.head_width=4611686018427387904"],
    "resnet width x depth": ["model.kind=resnet", "model.depth=1048576",
                             "model.width=4294967296"],
    "gram matrix": ["diagnostics.gram_max_samples=100000000", "data.n_train=10000000"],
    "gibbs samples": ["diagnostics.gibbs_samples=1000000000000000", "flow.temperature=0.1",
                      "flow.weight_decay=0.1", "data.dim=1", "diagnostics.kl=[]"],
    "teacher": ["data.teacher_width=16777216", "data.dim=1048576"],
    "test set": ["data.n_test=1000000000000000"],
    "rk4 stages": ["flow.integrator=\"rk4\"", "model.width=1000000000000000"],
}

# Values in range whose consequences overflow, each refused naming its key, before the output is
# touched.
OVERFLOWS = {
    "noise": (["data.noise=1e308"], "data.noise"),
    "noise with random labels": (["data.kind=\"random_labels\"", "data.noise=1e308"],
                                 "data.noise"),
    "dt with beta 0": (["flow.dt=1e308", "model.beta=0"], "flow.dt"),
    "dt times steps": (["flow.dt=1e300", "flow.steps=100000000000"], "flow.dt"),
    "softplus kappa": (["model.activation=\"softplus\"", "model.softplus_kappa=1e308"],
                       "model.softplus_kappa"),
    "std_a": (["init.std_a=1e200"], "init.std_a"),
    "std_w": (["init.std_w=1e300"], "init.std_w"),
    "resnet std_v": (["model.kind=resnet", "model.depth=2", "model.width=4", "model.head_width=4",
                      "init.std_v=1e300"], "init.std_v"),
}


def start_up_cases(c, work):
    """The start of `mfsim run`: sizes, overflowing values, restart steps and observables, output
    names. An existing output (good.h5, with --force) must stay byte for byte."""
    force = ["run", "run.toml", "-q", "-o", "good.h5", "--force"]
    c.path = "sizes (--force over an existing output)"
    for name, sets in ABSURD_SIZES.items():
        c.case(f"size: {name}", force + [a for s in sets for a in ("--set", s)],
               "the run would need at least")
    c.path = "overflowing values (--force over an existing output)"
    for name, (sets, key) in OVERFLOWS.items():
        c.case(f"overflow: {name}", force + [a for s in sets for a in ("--set", s)], key)
    (work / "t_end.toml").write_text(TINY.replace("steps = 20", "t_end = 1e300"))
    c.case("overflow: t_end steps", ["run", "t_end.toml", "-q", "-o", "good.h5", "--force",
                                     "--set", "flow.dt=1e-300"], "flow.t_end")

    c.path = "restart steps and observables"
    restart = ["run", "run.toml", "-q", "-o", "good.h5", "--force", "--set", "init.kind=file",
               "--set", "init.path=bad.h5"]

    def stored_step(value, dtype, shift=0):
        def edit(f):
            for group in ["position", "log_density"]:
                name = f"particles/two_layer/{group}/step"
                steps = (f[name][()] + shift).astype(dtype)
                steps[-1] = value
                del f[name]
                f[name] = steps
            f.attrs["committed_step"] = np.int64(2**63 - 1)
        return edit
    for label, value, dtype in [("int64 max", 2**63 - 1, "i8"), ("float 1e30", 1e30, "f8"),
                                ("uint64 max", 2**64 - 1, "u8"), ("int64 max - 5", 2**63 - 6, "i8")]:
        mutate(work / "good.h5", work / "bad.h5", stored_step(value, dtype))
        c.case(f"restart step {label}", restart, "bad.h5: the frame's step")
    # Negative, the steps still increasing (so that the frame counts as committed).
    for label, value in [("-5", -5), ("int64 min + 1000", -2**63 + 1000)]:
        mutate(work / "good.h5", work / "bad.h5", stored_step(value, "i8", shift=-2**63))
        c.case(f"restart step {label}", restart, f"bad.h5: the frame's step is {value} (negative)")
    for observable in ["w2_path_length", "loss_bound"]:
        for value in [np.nan, np.inf, -np.inf]:
            mutate(work / "good.h5", work / "bad.h5",
                   spoil(f"observables/{observable}/value", value))
            c.case(f"restart observable {observable} = {value}", restart,
                   f"/observables/{observable}/value")
    (work / "bad.h5").unlink()

    c.path = "output names"
    c.case("-o not UTF-8", ["run", "run.toml", "-q", "-o", os.fsdecode(b"bad\xff.h5")],
           "not valid UTF-8")
    c.case("-o lone continuation byte", ["run", "run.toml", "-q", "-o",
                                         os.fsdecode(b"bad\x80.h5")], "not valid UTF-8")
    c.case("-o UTF-16 surrogate", ["run", "run.toml", "-q", "-o",
                                   os.fsdecode(b"bad\xed\xa0\x80.h5")], "not valid UTF-8")
    c.case("-o name too long for the temporary", ["run", "run.toml", "-q", "-o", "n" * 245],
           "has a name of 245 characters")
def npy_bytes(header, data=b"", version=1):
    """An .npy file with this header dict text (padded as numpy pads it) and these data bytes."""
    text = header.encode("latin-1")
    size_bytes = 2 if version == 1 else 4
    text += b" " * ((-(10 + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + len(text).to_bytes(size_bytes, "little") + text + data


def bad_npy_files():
    """(name, bytes) of .npy feature files that `data import` must refuse."""
    f8 = "'descr': '<f8', 'fortran_order': False"
    return {
        "shape (2^32, 2^32), no data": npy_bytes("{" + f8 + ", 'shape': (4294967296, 4294967296), }"),
        "shape (2^62, 4) overflows": npy_bytes("{" + f8 + ", 'shape': (4611686018427387904, 4), }"),
        "shape 10^30": npy_bytes("{" + f8 + ", 'shape': (1000000000000000000000000000000, 2), }"),
        "shape (4, 3), 2 rows of data": npy_bytes("{" + f8 + ", 'shape': (4, 3), }", b"\0" * 48),
        "shape (4, 0)": npy_bytes("{" + f8 + ", 'shape': (4, 0), }"),
        "shape (0, 3)": npy_bytes("{" + f8 + ", 'shape': (0, 3), }"),
        "shape (-1, 2)": npy_bytes("{" + f8 + ", 'shape': (-1, 2), }", b"\0" * 64),
        "shape (abc, 2)": npy_bytes("{" + f8 + ", 'shape': (abc, 2), }", b"\0" * 64),
        "shape 4 not a tuple": npy_bytes("{" + f8 + ", 'shape': 4, }", b"\0" * 32),
        "shape unclosed": npy_bytes("{" + f8 + ", 'shape': (4, 2"),
        "shape 3-D": npy_bytes("{" + f8 + ", 'shape': (2, 2, 2), }", b"\0" * 64),
        "shape ()": npy_bytes("{" + f8 + ", 'shape': (), }", b"\0" * 8),
        "no shape": npy_bytes("{" + f8 + ", }", b"\0" * 8),
        "no descr": npy_bytes("{'fortran_order': False, 'shape': (2, 2), }", b"\0" * 32),
        "descr unquoted": npy_bytes("{'descr': <f8, 'fortran_order': False, 'shape': (2, 2), }"),
        "descr unclosed": npy_bytes("{'descr': '<f8"),
        "descr with a NUL": npy_bytes("{'descr': '<f\x008', 'fortran_order': False, 'shape': (2, 2), }"),
        "descr big-endian": npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }",
                                      b"\0" * 32),
        "descr object": npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2, 2), }"),
        "fortran order": npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
                                   b"\0" * 32),
        "no fortran_order": npy_bytes("{'descr': '<f8', 'shape': (2, 2), }", b"\0" * 32),
        "key without colon": npy_bytes("{'descr' '<f8', 'fortran_order': False, 'shape': (2, 2), }"),
        "version 9": npy_bytes("{" + f8 + ", 'shape': (2, 2), }", b"\0" * 32)[:6] + b"\x09" +
        npy_bytes("{" + f8 + ", 'shape': (2, 2), }", b"\0" * 32)[7:],
        "version 2 header past the end": b"\x93NUMPY\x02\x00\xff\xff\x0f\x00{",
        "header length past the end": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
        "magic only": b"\x93NUMPY",
        "empty": b"",
        "a NaN": npy_bytes("{" + f8 + ", 'shape': (2, 2), }", np.array([1, 2, np.nan, 4.0]).tobytes()),
        "an Inf in float32": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                                       np.array([1, np.inf, 3, 4], dtype="<f4").tobytes()),
    }


def bad_csv_files():
    """(name, bytes) of CSV tables that `data import` must refuse."""
    return {
        "a NUL in a cell": b"a,b,y\n1,2\x003,0\n3,4,1\n",
        "a NUL in the header": b"a\x00b,c,y\n1,2,0\n3,4,1\n",
        "an escape sequence in a cell": b"a,b,y\n1,\x1b[31m2,0\n",
        "BOM only": b"\xef\xbb\xbf",
        "BOM and header only": b"\xef\xbb\xbfa,b,y\n",
        "ragged after a BOM": b"\xef\xbb\xbfa,b,y\n1,2\n",
        "binary": bytes(range(256)) * 4,
        "one column": b"y\n1\n2\n",
        "a 1 MB cell": b"a,y\n" + b"1" * 1000000 + b"x,0\n",
        "1e999": b"a,y\n1e999,0\n",
        "hex float": b"a,y\n0x1p3,0\nnan,1\n",
    }


def import_cases(c, work):
    """`mfsim data import`: outputs that are its own inputs, special files, bad tables and headers."""
    c.path = "data import"
    (work / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
    (work / "r.csv").write_text("a,b,y\n1,2,0.5\n3,4,1\n5,6,0\n")
    (work / "one.csv").write_text("a,b,y\n1,2,0\n3,4,0\n")
    np.save(work / "x.npy", np.arange(8.0).reshape(4, 2))
    np.save(work / "y.npy", np.array([0.0, 1, 0, 1]))
    os.symlink("t.csv", work / "t_link.csv")
    os.link(work / "t.csv", work / "t_hard.csv")
    os.symlink("y.npy", work / "y_link.npy")
    os.mkfifo(work / "fifo")
    imp = ["data", "import"]
    for name, args in {
        "-o the input": ["t.csv", "-o", "t.csv", "--force"],
        "-o the input through a symlink": ["t.csv", "-o", "t_link.csv", "--force"],
        "-o the input through a hard link": ["t.csv", "-o", "t_hard.csv", "--force"],
        "-o a symlink's target": ["t_link.csv", "-o", "t.csv", "--force"],
        "-o the input by a relative path": ["t.csv", "-o", "sub/../t.csv", "--force"],
        "-o the input by an absolute path": ["t.csv", "-o", str(work / "t.csv"), "--force"],
        "-o the features": ["x.npy", "--labels", "y.npy", "-o", "x.npy", "--force"],
        "-o the labels": ["x.npy", "--labels", "y.npy", "-o", "y.npy", "--force"],
        "-o the labels through a symlink": ["x.npy", "--labels", "y.npy", "-o", "y_link.npy",
                                            "--force"],
        "-o a FIFO": ["t.csv", "-o", "fifo", "--force"],
        "-o a directory": ["t.csv", "-o", "adir", "--force"],
        "-o /dev/null": ["t.csv", "-o", "/dev/null", "--force"],
        "-o exists": ["t.csv", "-o", "good.h5"],
        "-o in a missing directory": ["t.csv", "-o", "nodir/d.h5"],
        "input a FIFO": ["fifo", "-o", "d.h5"],
        "input /dev/zero": ["/dev/zero", "-o", "d.h5"],
        "input a directory": ["adir", "-o", "d.h5"],
        "input missing": ["nope.csv", "-o", "d.h5"],
        "labels a FIFO": ["x.npy", "--labels", "fifo", "-o", "d.h5"],
        "features .npy /dev/zero": ["/dev/zero/x.npy", "-o", "d.h5"],
        "labels of another length": ["x.npy", "--labels", "x.npy", "-o", "d.h5"],
        ".npy without --labels": ["x.npy", "-o", "d.h5"],
        "--classes of a label no row has": ["t.csv", "-o", "d.h5", "--classes", "0,7"],
        "--classes of one class": ["t.csv", "-o", "d.h5", "--classes", "0"],
        "--classes repeated": ["t.csv", "-o", "d.h5", "--classes", "0,1,0"],
        "--classes not numbers": ["t.csv", "-o", "d.h5", "--classes", "0,x"],
        "--classes empty item": ["t.csv", "-o", "d.h5", "--classes", "0,,1"],
        "--classes with --binary-labels": ["t.csv", "-o", "d.h5", "--classes", "0,1",
                                           "--binary-labels"],
        "--one-hot with --binary-labels": ["t.csv", "-o", "d.h5", "--one-hot", "--binary-labels"],
        "--one-hot with --real-labels": ["t.csv", "-o", "d.h5", "--one-hot", "--real-labels"],
        "--one-hot of real labels": ["r.csv", "-o", "d.h5", "--one-hot"],
        "--one-hot of one class": ["one.csv", "-o", "d.h5", "--one-hot"],
    }.items():
        c.case(f"import {name}", imp + args)
    for name, data in bad_npy_files().items():
        (work / "bad.npy").write_bytes(data)
        c.case(f"import .npy {name}", imp + ["bad.npy", "--labels", "y.npy", "-o", "d.h5"],
               "bad.npy")
        c.case(f"import labels .npy {name}", imp + ["x.npy", "--labels", "bad.npy", "-o", "d.h5"],
               "bad.npy")
    (work / "bad.npy").unlink()
    for name, data in bad_csv_files().items():
        (work / "bad.csv").write_bytes(data)
        c.case(f"import CSV {name}", imp + ["bad.csv", "-o", "d.h5"], "bad.csv")
    (work / "bad.csv").unlink()
    for name in ["t.csv", "r.csv", "one.csv", "x.npy", "y.npy", "t_link.csv", "t_hard.csv",
                 "y_link.npy", "fifo"]:
        (work / name).unlink()


def multiclass_cases(c, work):
    """Runs whose labels do not fit the loss and model.outputs: one line naming the key to set."""
    c.path = "class labels"
    rows = "".join(f"{i},{(i * 7) % 5},{i % 3}\n" for i in range(12))
    (work / "three.csv").write_text("a,b,y\n" + rows)
    rows = "".join(f"{i % 7},{i % 1000}\n" for i in range(4000))
    (work / "thousand.csv").write_text("a,y\n" + rows)
    for table, name, options in [("three.csv", "three.h5", []),
                                 ("three.csv", "three_hot.h5", ["--one-hot"]),
                                 ("thousand.csv", "thousand.h5", [])]:
        r = subprocess.run([c.exe, "data", "import", table, "-o", name, "--force", *options],
                           cwd=work, capture_output=True)
        if r.returncode != 0:
            sys.exit(f"corpus: the import of {table} failed: {r.stderr.decode()}")
    run = ["run", "run.toml", "-q", "-o", "out.h5", "--set", "data.kind=file"]
    for name, (data, settings, key) in {
        "square, outputs 1, three classes": ("three.h5", [], "model.loss"),
        "cross_entropy, outputs 4, three classes": (
            "three.h5", ["model.loss=cross_entropy", "model.outputs=4"], "model.outputs"),
        "cross_entropy on one-hot targets": (
            "three_hot.h5", ["model.loss=cross_entropy", "model.outputs=3"], "--one-hot"),
        "square, outputs 2, three one-hot targets": (
            "three_hot.h5", ["model.outputs=2"], "model.outputs"),
        "square, outputs 1, three one-hot targets": ("three_hot.h5", [], "model.outputs"),
        "logistic on classes 0..2": ("three.h5", ["model.loss=logistic"], "three.h5"),
        "cross_entropy on synthetic data": (
            "", ["data.kind=teacher", "model.loss=cross_entropy", "model.outputs=3"], "data.kind"),
        "square, outputs 3, synthetic data": ("", ["data.kind=teacher", "model.outputs=3"],
                                             "model.outputs"),
        "cross_entropy, outputs 1": ("three.h5", ["model.loss=cross_entropy"], "model.outputs"),
        "resnet, cross_entropy, outputs 4, three classes": (
            "three.h5", ["model.kind=resnet", "model.loss=cross_entropy", "model.outputs=4"],
            "model.outputs"),
        # The (n·c)² Gram matrix: 4000 samples of 1000 classes give 4·10⁶ rows, some 640 TB.
        "gram matrix of n*c rows": (
            "thousand.h5", ["model.loss=cross_entropy", "model.outputs=1000",
                            "diagnostics.gram_max_samples=100000000"],
            "diagnostics.gram_max_samples"),
    }.items():
        args = run + (["--set", f"data.path={data}"] if data else [])
        for setting in settings:
            args += ["--set", setting]
        c.case(name, args, key)
    for name in ["three.csv", "three.h5", "three_hot.h5", "thousand.csv", "thousand.h5"]:
        (work / name).unlink()


def special_file_cases(c, work):
    """FIFOs and devices where a file is read or written: refused before open() can block."""
    c.path = "special files"
    os.mkfifo(work / "fifo")
    os.mkfifo(work / "fifo.toml")
    os.mkfifo(work / "fifo.h5")
    os.symlink("loop", work / "loop")
    os.symlink("/dev/zero", work / "zero.toml")
    run = ["run", "run.toml", "-q"]
    for name, args in {
        "config a FIFO": ["run", "fifo.toml", "-q", "-o", "out.h5"],
        "config /dev/zero": ["run", "/dev/zero", "-q", "-o", "out.h5"],
        "config /dev/urandom": ["run", "/dev/urandom", "-q", "-o", "out.h5"],
        "config 17 MiB": ["run", "huge.toml", "-q", "-o", "out.h5"],
        "init.path a FIFO": run + ["-o", "out.h5", "--set", "init.kind=file", "--set",
                                   "init.path=fifo.h5"],
        "data.path a FIFO": run + ["-o", "out.h5", "--set", "data.kind=file", "--set",
                                   "data.path=fifo.h5"],
        "init.path /dev/zero": run + ["-o", "out.h5", "--set", "init.kind=file", "--set",
                                      "init.path=/dev/zero"],
        "init.path a symbolic-link loop": run + ["-o", "out.h5", "--set", "init.kind=file",
                                                 "--set", "init.path=loop"],
        "config a symbolic link to /dev/zero": ["run", "zero.toml", "-q", "-o", "out.h5"],
        "data.path /dev/zero": run + ["-o", "out.h5", "--set", "data.kind=file", "--set",
                                      "data.path=/dev/zero"],
        "-o a FIFO": run + ["-o", "fifo.h5", "--force"],
        "-o /dev/null": run + ["-o", "/dev/null", "--force"],
        "info a FIFO": ["info", "fifo.h5"],
        "info /dev/zero": ["info", "/dev/zero"],
        "info a directory": ["info", "adir"],
    }.items():
        if name == "config 17 MiB":
            with open(work / "huge.toml", "wb") as f:
                f.truncate(17 << 20)  # sparse
        c.case(name, args)
        if name == "config 17 MiB":
            (work / "huge.toml").unlink()
    for name in ["fifo", "fifo.toml", "fifo.h5", "loop", "zero.toml"]:
        (work / name).unlink()


def nesting_and_override_cases(c, work):
    """Configs nested past any use (toml++ recursed into them) and --set values that are more
    than one value."""
    c.path = "config files"
    deep = ".".join(["a"] * 50000)
    for name, text in {
        "key nested 50000 deep": f"{deep} = 1\n",
        "header nested 50000 deep": f"[{deep}]\n",
        "array of tables nested 50000 deep": f"[[{deep}]]\n",
        "key nested 33 deep in a section": "[model]\n" + ".".join(["a"] * 34) + " = 1\n",
        "inline table nested 50000 deep": "[model]\nx = " + "{a = " * 50000 + "\n",
        "array nested 50000 deep": "[model]\nx = " + "[" * 50000 + "\n",
        "dotted key in an inline table": "[model]\nx = {" + deep + " = 1}\n",
    }.items():
        (work / "deep.toml").write_text(text)
        c.case(f"config {name}", ["run", "deep.toml", "-q", "-o", "out.h5"], "deep.toml")
    (work / "deep.toml").unlink()
    c.path = "--set"
    run = ["run", "run.toml", "-q", "-o", "out.h5"]
    for name, value in {
        "a section after a line break": "model.width=8\n[flow]\nsteps=1",
        "a key after a line break": "model.width=8\nbeta=2",
        "a carriage return": "model.width=8\r[flow]",
        "a NUL-free escape byte": "model.activation=\x1btanh",
        "a DEL byte": "model.activation=tanh\x7f",
        "a value nested 50000 deep": "model.x={" + deep + " = 1}",
        "an array nested 50000 deep": "model.x=" + "[" * 50000,
        "a key nested 50000 deep": "model." + deep + "=1",
    }.items():
        c.case(f"--set {name}", run + ["--set", value])


def environment_cases(c):
    """Kokkos' settings from the environment and the command line that it cannot convert."""
    c.path = "environment"
    info = ["info", "good.h5"]
    for variable in ["KOKKOS_NUM_THREADS", "KOKKOS_DEVICE_ID", "KOKKOS_NUMA", "KOKKOS_NUM_DEVICES"]:
        for value in ["abc", "", "1x"]:
            c.case(f"{variable}={value!r}", info, "Kokkos", env={variable: value})
    for value in ["/nonexistent/libtool.so", "/etc/hostname", "a.so;b.so"]:
        c.case(f"KOKKOS_PROFILE_LIBRARY={value!r}", info, "cannot be loaded",
               env={"KOKKOS_PROFILE_LIBRARY": value})
    for option in ["--kokkos-threads=x", "--kokkos-numa=x", "--kokkos-device-id=x",
                   "--kokkos-num-devices=x", "--kokkos-tools-library=/nonexistent/libtool.so"]:
        c.case(f"option {option}", [option] + info, "Kokkos")


def damaged_index_cases(c, work):
    """One damaged byte in the file's indexes: a /parameters string's global-heap index (HDF5 1.10
    followed it into wild memory: `mfsim info` crashed) and a chunk address in the B-tree of an
    observable (the message named neither the file nor the dataset)."""
    c.path = "info"
    good = (work / "good.h5").read_bytes()
    with h5py.File(work / "good.h5", "r") as f:
        backend = f["parameters"].attrs["backend"]
        backend = backend.decode() if isinstance(backend, bytes) else backend
        chunk = f["observables/loss/value"].id.get_chunk_info(0).byte_offset
    # A variable-length string attribute (HDF5 1.10's version 1 message): the name, padded to 8
    # bytes, the datatype (24), the dataspace (8), then the reference: length (4), heap address
    # (8), index in the heap (4).
    name = good.find(b"backend\x00")
    assert name > 0 and int.from_bytes(good[name + 40:name + 44], "little") == len(backend)
    edits = {"/parameters string heap index": (name + 53, 0xFF)}
    address = chunk.to_bytes(8, "little")
    at = good.find(address, good.find(b"TREE"))
    assert at > 0
    edits["/observables/loss/value chunk address"] = (at + 7, 0x7F)
    for label, (offset, value) in edits.items():
        damaged = bytearray(good)
        damaged[offset] = value
        (work / "damaged.h5").write_bytes(damaged)
        c.case(f"info: damaged {label}", ["info", "damaged.h5"], "damaged.h5")
        (work / "damaged.h5").unlink()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mfsim")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--timeout", type=float, default=60)
    a = parser.parse_args()
    exe = os.path.abspath(a.mfsim)
    root = pathlib.Path(a.keep or tempfile.mkdtemp(prefix="mfsim_corpus_"))
    root.mkdir(parents=True, exist_ok=True)
    # Inputs live beside the work directory, so that writing them does not count as touching it;
    # the work directory holds the config and the files the cases name.
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "run.toml").write_text(TINY)
    r = subprocess.run([exe, "run", "run.toml", "-q", "-o", "good.h5"], cwd=work,
                       capture_output=True)
    if r.returncode != 0:
        sys.exit(f"corpus: the valid run failed: {r.stderr.decode()}")
    c = Corpus(exe, str(work), a.timeout)

    c.path = "--set"
    for key, values in BAD_VALUES.items():
        for v in values:
            label = v if len(v) < 40 else v[:20] + f"...({len(v)} chars)"
            # output.path itself: without -o, which would override it.
            output = [] if key == "output.path" else ["-o", "out.h5"]
            c.case(f"--set {key}={label}",
                   ["run", "run.toml", "-q"] + output + ["--set", f"{key}={v}"],
                   key if len(v) < 1000 else "")
    for name, text in BAD_CONFIGS.items():
        path = work / f"bad_{name}.toml"
        path.write_bytes(text.encode("latin-1"))
    c.path = "config files"
    for name in BAD_CONFIGS:
        c.case(f"config {name}", ["run", f"bad_{name}.toml", "-q", "-o", "out.h5"])
    (work / "plain").write_text("a file\n")
    (work / "adir").mkdir()
    c.path = "command line, output paths"
    for name, args in {
        "missing config": ["run", "nope.toml", "-o", "out.h5"],
        "directory config": ["run", "adir", "-o", "out.h5"],
        "unknown command": ["frobnicate"],
        "no command": [],
        "unknown option": ["run", "run.toml", "--bogus"],
        "--set without =": ["run", "run.toml", "--set", "model.width"],
        "--set without section": ["run", "run.toml", "--set", "width=3"],
        "--set unknown section": ["run", "run.toml", "--set", "nosuch.key=3"],
        "-o empty": ["run", "run.toml", "-q", "-o", ""],
        "-o the config": ["run", "run.toml", "-q", "-o", "run.toml", "--force"],
        "-o a directory": ["run", "run.toml", "-q", "-o", "adir", "--force"],
        "-o exists": ["run", "run.toml", "-q", "-o", "good.h5"],
        "-o under a file": ["run", "run.toml", "-q", "-o", "plain/out.h5"],
        "-o too long name": ["run", "run.toml", "-q", "-o", "n" * 300 + ".h5"],
        "-o too long path": ["run", "run.toml", "-q", "-o", "/".join(["d" * 200] * 25) + ".h5"],
        "-o sub/../init": ["run", "run.toml", "-q", "-o", "sub/../good.h5", "--force", "--set",
                           "init.kind=file", "--set", "init.path=good.h5"],
        "-o sub/../data": ["run", "run.toml", "-q", "-o", "a/b/../../good.h5", "--force", "--set",
                           "data.kind=file", "--set", "data.path=good.h5"],
        "init missing": ["run", "run.toml", "-q", "-o", "out.h5", "--set", "init.kind=file",
                         "--set", "init.path=nope.h5"],
        "init a directory": ["run", "run.toml", "-q", "-o", "out.h5", "--set", "init.kind=file",
                             "--set", "init.path=adir"],
        "init frame out of range": ["run", "run.toml", "-q", "-o", "out.h5", "--set",
                                    "init.kind=file", "--set", "init.path=good.h5", "--set",
                                    "init.frame=99"],
        "init other width": ["run", "run.toml", "-q", "-o", "out.h5", "--set", "init.kind=file",
                             "--set", "init.path=good.h5", "--set", "model.width=31"],
        "info missing": ["info", "nope.h5"],
        "info plain file": ["info", "plain"],
    }.items():
        c.case(name, args)

    c.path = "init and data files"
    inputs = root / "inputs"
    inputs.mkdir(exist_ok=True)
    for name, writer in {"text.h5": lambda p: p.write_text("not hdf5\n"),
                         "empty.h5": lambda p: p.write_bytes(b""),
                         "truncated.h5": lambda p: p.write_bytes(
                             (work / "good.h5").read_bytes()[:4096]),
                         "plain_hdf5.h5": lambda p: h5py.File(p, "w").close()}.items():
        writer(work / name)
        for use, args in [("init", ["--set", "init.kind=file", "--set", f"init.path={name}"]),
                          ("data", ["--set", "data.kind=file", "--set", f"data.path={name}"])]:
            c.case(f"{use} {name}", ["run", "run.toml", "-q", "-o", "out.h5"] + args, name)
    for i, (name, edit, use) in enumerate(h5_mutations(work / "good.h5")):
        bad = work / f"bad{i}.h5"
        mutate(work / "good.h5", bad, edit)
        key = "init.path" if use == "init" else "data.path"
        # The message must name the bad file: refused for its fault, not for another.
        c.case(f"{use} file: {name}", ["run", "run.toml", "-q", "-o", "out.h5", "--set",
                                       f"{use}.kind=file", "--set", f"{key}={bad.name}"],
               bad.name)
        bad.unlink()

    c.path = "info"
    # Attributes of the wrong type, read by `mfsim info`.
    for i, (attribute, value) in enumerate([("ntk_lambda0", "abc"), ("ntk_gram_scale", "")]):
        bad = work / f"attr{i}.h5"
        shutil.copy(work / "good.h5", bad)
        with h5py.File(bad, "a") as f:
            f["parameters"].attrs[attribute] = value
        c.case(f"info: parameter {attribute} = {value!r}", ["info", bad.name], bad.name)
        bad.unlink()
    bad = work / "columns.h5"
    shutil.copy(work / "good.h5", bad)
    with h5py.File(bad, "a") as f:
        f["particles/two_layer/position/value"].attrs["columns"] = np.arange(5)
    c.case("info: numeric columns attribute", ["info", bad.name], bad.name)
    c.case("init: numeric columns attribute", ["run", "run.toml", "-q", "-o", "out.h5", "--set",
                                               "init.kind=file", "--set",
                                               f"init.path={bad.name}"], bad.name)
    bad.unlink()

    start_up_cases(c, work)
    damaged_index_cases(c, work)
    import_cases(c, work)
    multiclass_cases(c, work)
    special_file_cases(c, work)
    nesting_and_override_cases(c, work)
    environment_cases(c)

    for f in c.failures:
        print("NOT REFUSED CLEANLY:", f)
    for path, (tried, refused) in c.per_path.items():
        print(f"  {path}: tried {tried}, refused cleanly {refused}")
    print(f"bad inputs tried: {c.tried}, refused cleanly: {c.refused}")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if c.refused == c.tried else 1


if __name__ == "__main__":
    sys.exit(main())

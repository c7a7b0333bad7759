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
    """Every file and directory under `directory` with its content (None for a directory)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            out[os.path.join(root, d)] = None
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[p] = fh.read()
    return out


def checksum(state):
    return {p: None if c is None else hashlib.sha256(c).hexdigest() for p, c in state.items()}


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
        elif now.get(p) != content:
            with open(p, "wb") as fh:
                fh.write(content)


class Corpus:
    def __init__(self, exe, work, timeout):
        self.exe, self.work, self.timeout = exe, work, timeout
        self.tried = self.refused = 0
        self.failures = []
        # The input path that the cases now added go through, and [tried, refused] per path.
        self.path = "other"
        self.per_path = {}

    def case(self, name, args, expected_in_message="", env=None):
        """Runs mfsim with `args` in the work directory; expects a clean refusal."""
        self.tried += 1
        counts = self.per_path.setdefault(self.path, [0, 0])
        counts[0] += 1
        state = snapshot(self.work)
        before = checksum(state)
        try:
            r = subprocess.run([self.exe] + args, cwd=self.work, capture_output=True,
                               timeout=self.timeout, env=None if env is None else {**os.environ, **env})
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

    def stored_step(value, dtype):
        def edit(f):
            for group in ["position", "log_density"]:
                name = f"particles/two_layer/{group}/step"
                steps = f[name][()].astype(dtype)
                steps[-1] = value
                del f[name]
                f[name] = steps
            f.attrs["committed_step"] = np.int64(2**63 - 1)
        return edit
    for label, value, dtype in [("int64 max", 2**63 - 1, "i8"), ("float 1e30", 1e30, "f8"),
                                ("uint64 max", 2**64 - 1, "u8"), ("int64 max - 5", 2**63 - 6, "i8")]:
        mutate(work / "good.h5", work / "bad.h5", stored_step(value, dtype))
        c.case(f"restart step {label}", restart, "bad.h5: the frame's step")
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

    c.path = "--set values"
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
    c.path = "command line and output paths"
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

    c.path = "mfsim info"
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

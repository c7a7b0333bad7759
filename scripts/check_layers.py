#!/usr/bin/python3
"""Fails when mfsim's folders stop depending one way, or a public header leaks a private one.

The layers, lowest first, are core -> data -> models -> flow -> diagnostics -> io -> app
(docs/architecture.md says why). A file may include headers of its own layer and of the layers
below it only. src/detail/ holds the private kernels and tiling helpers; it sits beside core (it
may include core only), and only src/ may include it: a header under include/ is what a user of
find_package(mfsim) gets, so it may include other mfsim/ headers (quoted), the C++ standard
library and Kokkos (angle brackets) only. Kokkos is mfsim's one public dependency; HDF5, Eigen,
Spectra, fmt, toml++, CLI11 and MPI are private to the library (src/), so that a program using
mfsim needs none of their headers (the mfsim_headers_self_contained build target checks that each
public header compiles on its own).

Usage: check_layers.py [REPO_ROOT]   (exit 0: clean; exit 1: one line per violation)
       check_layers.py --self-test   (the check refuses what it must, in a scratch tree)
"""
import contextlib
import io
import pathlib
import re
import sys
import tempfile

LAYERS = ["core", "data", "models", "flow", "diagnostics", "io", "app"]
RANK = {name: i for i, name in enumerate(LAYERS)}
RANK["detail"] = RANK["core"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s+<([^>]+)>", re.MULTILINE)
# The headers of the C++17 standard library (with the C library's <cxxx> forms): what a public
# header may include besides Kokkos. A list, not a pattern, so that <hdf5.h>, <mpi.h>, <Eigen/...>,
# <fmt/...>, <toml++/...> or <CLI/...> cannot pass for one.
STANDARD_HEADERS = set("""
algorithm any array atomic bitset cassert cctype cerrno cfenv cfloat charconv chrono cinttypes
climits clocale cmath codecvt complex condition_variable csetjmp csignal cstdarg cstddef cstdint
cstdio cstdlib cstring ctime cuchar cwchar cwctype deque exception execution filesystem
forward_list fstream functional future initializer_list iomanip ios iosfwd iostream istream
iterator limits list locale map memory memory_resource mutex new numeric optional ostream queue
random ratio regex scoped_allocator set shared_mutex sstream stack stdexcept streambuf string
string_view system_error thread tuple type_traits typeindex typeinfo unordered_map unordered_set
utility valarray variant vector
""".split())


def allowed_in_public_header(system_target):
    """Whether a public header may include <system_target>: the standard library or Kokkos."""
    if system_target in STANDARD_HEADERS:
        return True
    return re.fullmatch(r"Kokkos\w*\.hpp", system_target) is not None


def layer_of_include(target, own_layer):
    """The layer a quoted include names, or None when it is not an mfsim file."""
    parts = pathlib.PurePosixPath(target).parts
    if parts[0] == "mfsim" and len(parts) > 2:
        return parts[1]
    if parts[0] == "detail":
        return "detail"
    if len(parts) == 1:  # a header beside the including file
        return own_layer
    return None


def main(root):
    root = pathlib.Path(root)
    problems = []
    files = [(p, True) for p in (root / "include" / "mfsim").rglob("*.hpp")]
    files += [(p, False) for p in (root / "src").rglob("*") if p.suffix in (".hpp", ".cpp")]
    for path, public in sorted(files):
        base = root / "include" / "mfsim" if public else root / "src"
        own = path.relative_to(base).parts[0]
        if own not in RANK:
            problems.append(f"{path.relative_to(root)}: folder '{own}' is not a known layer")
            continue
        text = path.read_text()
        if public:
            for target in SYSTEM_INCLUDE.findall(text):
                if not allowed_in_public_header(target):
                    problems.append(
                        f"{path.relative_to(root)}: includes <{target}>, but a public header may "
                        "include only the C++ standard library and Kokkos (mfsim's other "
                        "dependencies are private to src/)")
        for target in INCLUDE.findall(text):
            layer = layer_of_include(target, own)
            where = f"{path.relative_to(root)}: includes \"{target}\""
            if public and not target.startswith("mfsim/"):
                problems.append(f"{where}, but a public header may include only mfsim/ headers")
            elif layer is None:
                problems.append(f"{where}, which is not an mfsim header")
            elif layer not in RANK:
                problems.append(f"{where}, from unknown layer '{layer}'")
            elif RANK[layer] > RANK[own]:
                problems.append(f"{where}: layer {own} may not depend on the higher layer {layer}")
    for line in problems:
        print(line)
    if not problems:
        print(f"check_layers: {len(files)} files, layers {' -> '.join(LAYERS)}: no upward include")
    return 1 if problems else 0


def self_test():
    """Runs the check on scratch trees: a clean one passes, each kind of violation fails it."""
    clean = {
        "include/mfsim/core/a.hpp": "#include <vector>\n#include <Kokkos_Core.hpp>\n",
        "include/mfsim/models/b.hpp": '#include <cstdint>\n#include "mfsim/core/a.hpp"\n',
        "src/io/c.cpp": '#include <hdf5.h>\n#include "mfsim/models/b.hpp"\n',
    }
    bad = {
        "public <hdf5.h>": ("include/mfsim/io/d.hpp", "#include <hdf5.h>\n"),
        "public <Eigen/Dense>": ("include/mfsim/io/d.hpp", "#include <Eigen/Dense>\n"),
        "public <fmt/format.h>": ("include/mfsim/io/d.hpp", "#include <fmt/format.h>\n"),
        "public <toml++/toml.h>": ("include/mfsim/io/d.hpp", "# include <toml++/toml.h>\n"),
        "public <CLI/CLI.hpp>": ("include/mfsim/io/d.hpp", "#include <CLI/CLI.hpp>\n"),
        "public <mpi.h>": ("include/mfsim/core/d.hpp", "#include <mpi.h>\n"),
        "public quoted private": ("include/mfsim/io/d.hpp", '#include "detail/x.hpp"\n'),
        "upward include": ("src/core/d.cpp", '#include "mfsim/io/e.hpp"\n'),
    }
    failures = []
    for name, extra in [("clean", None)] + list(bad.items()):
        with tempfile.TemporaryDirectory() as scratch:
            files = dict(clean)
            if extra:
                files[extra[0]] = extra[1]
            for rel, text in files.items():
                (pathlib.Path(scratch) / rel).parent.mkdir(parents=True, exist_ok=True)
                (pathlib.Path(scratch) / rel).write_text(text)
            with contextlib.redirect_stdout(io.StringIO()):
                status = main(scratch)
            if status != (0 if extra is None else 1):
                failures.append(f"self-test '{name}': exit {status}")
    for line in failures:
        print(line)
    if not failures:
        print(f"check_layers self-test: a clean tree passes, {len(bad)} violations fail it")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent))

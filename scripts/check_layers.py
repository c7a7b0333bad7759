#!/usr/bin/python3
"""Fails when mfsim's folders stop depending one way, or a public header leaks a private one.

The layers, lowest first, are core -> data -> models -> flow -> diagnostics -> io -> app
(docs/architecture.md says why). A file may include headers of its own layer and of the layers
below it only. src/detail/ holds the private kernels and tiling helpers; it sits beside core (it
may include core only), and only src/ may include it: a header under include/ is what a user of
find_package(mfsim) gets, so it may include other mfsim/ headers and system headers only.

Usage: check_layers.py [REPO_ROOT]   (exit 0: clean; exit 1: one line per violation)
"""
import pathlib
import re
import sys

LAYERS = ["core", "data", "models", "flow", "diagnostics", "io", "app"]
RANK = {name: i for i, name in enumerate(LAYERS)}
RANK["detail"] = RANK["core"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


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
        for target in INCLUDE.findall(path.read_text()):
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent))

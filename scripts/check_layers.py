#!/usr/bin/python3
"""Fails when a folder of mfsim includes a folder above it in the layer order.

The layers, each depending only on those before it (README, "Source layout"):
  core → data → models → flow → diagnostics → io → app
A file's layer is its folder under include/mfsim/ or src/ (src/detail is private to the layers
that include it and counts as core); its includes of "mfsim/<layer>/..." name the layers it uses.
Private headers next to a source file ("two_layer_kernels.hpp") count as that file's layer.

Usage: scripts/check_layers.py [REPO]   (exit 1 and one line per offending include)
"""
import pathlib
import re
import sys

ORDER = ["core", "data", "models", "flow", "diagnostics", "io", "app"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path: pathlib.Path, root: pathlib.Path):
    parts = path.relative_to(root).parts
    if parts[0] == "include" and len(parts) > 2:
        return parts[2]
    if parts[0] == "src" and len(parts) > 1:
        return "core" if parts[1] == "detail" else parts[1]
    return None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    files = [p for d in ("include/mfsim", "src") for p in (root / d).rglob("*")
             if p.suffix in (".hpp", ".cpp", ".h")]
    problems = []
    for f in sorted(files):
        layer = layer_of(f, root)
        if layer not in ORDER:
            problems.append(f"{f.relative_to(root)}: folder {layer!r} is not a layer {ORDER}")
            continue
        for target in INCLUDE.findall(f.read_text()):
            m = re.match(r"mfsim/([a-z_]+)/", target)
            if not m:
                continue
            used = m.group(1)
            if used not in ORDER:
                problems.append(f"{f.relative_to(root)}: includes {target}: not a layer")
            elif ORDER.index(used) > ORDER.index(layer):
                problems.append(f"{f.relative_to(root)}: {layer} includes {target} "
                                f"({used} comes after {layer})")
    for p in problems:
        print(p)
    if not problems:
        print(f"check_layers: {len(files)} files, layers {' → '.join(ORDER)}: no upward include")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

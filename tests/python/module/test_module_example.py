"""examples/python_quickstart.py runs as a user runs it (a width sweep on a scikit-learn data set,
its figure written)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_quickstart_example(tmp_path):
    pytest.importorskip("sklearn")
    figure = tmp_path / "quickstart.png"
    r = subprocess.run([sys.executable, REPO / "examples" / "python_quickstart.py", "--quick",
                        "--figure", figure], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "MPLBACKEND": "Agg"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert figure.stat().st_size > 10_000
    assert "width" in r.stdout
    assert not list(tmp_path.glob("*.h5"))  # from memory: nothing written but the figure

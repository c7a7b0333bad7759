"""README's quick-start command, as written: it runs without a warning, and every KL estimate
it writes is flagged reliable (a number the example prints is one to trust)."""

import subprocess

import numpy as np
from conftest import REPO, mfsim_executable

from mfsim_analysis import open_run


def test_quickstart_runs_without_warnings(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "mfsim run simulations/configs/two_layer_meanfield.toml" in readme
    out = tmp_path / "quickstart.h5"
    result = subprocess.run([str(mfsim_executable()), "run", str(REPO / "simulations/configs/two_layer_meanfield.toml"),
                             "-o", str(out), "--force"], capture_output=True, text=True, timeout=850)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    with open_run(out) as run:
        flags = [name for name in run.observables if name.endswith("_reliable")]
        assert flags
        for name in flags:
            assert np.all(run.observables[name].value == 1), name


def test_the_wall_time_parts_add_up_and_fit_inside_the_process(tmp_path):
    import re
    import time

    from conftest import mfsim_command

    command = mfsim_command(tmp_path / "timed.h5", diagnostics__gram="true")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    measured = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    n = r"([0-9.eE+-]+)"
    match = re.search(rf"mfsim: wall time {n} s = set-up {n} s \(data, model and initial state {n} s, "
                      rf"diagnostics incl\. NTK lambda0 {n} s, start and output {n} s\) \+ steps {n} s "
                      rf"\({n} s/step\) \+ observing {n} s \+ writing {n} s \+ other {n} s", result.stdout)
    assert match, result.stdout
    total, setup, problem, diagnostics, start, steps, _, observing, writing, other = map(float, match.groups())
    rounding = 1e-3  # the parts are printed to 3 or 4 significant digits
    assert abs(problem + diagnostics + start - setup) <= 0.01 * setup + rounding
    assert abs(setup + steps + observing + writing + other - total) <= 0.01 * total + rounding
    assert min(setup, steps, observing, writing) > 0 and other >= -rounding
    # The process ran inside the test's measurement: its own wall time cannot exceed it.
    assert total <= measured

"""The scripted experiments, in their --quick size, with the mfsim binary under test."""

import json
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from conftest import REPO, mfsim_executable, run_cli_here
from mfsim_analysis import open_run

EXPERIMENTS = REPO / "simulations" / "experiments"


def run_experiment(name, out, *args):
    env = {**os.environ, "MFSIM_EXECUTABLE": str(mfsim_executable()), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(EXPERIMENTS / f"{name}.py"), "--out", str(out), "--quick", *args],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_propagation_of_chaos_quick(tmp_path):
    """V1: the spread over seeds of f and of the loss falls like m^(−1/2)."""
    result = run_experiment("propagation_of_chaos", tmp_path)
    report = json.loads((tmp_path / "propagation_of_chaos.json").read_text())
    widths = np.array(report["widths"])
    assert list(widths) == [32, 64, 128, 256, 512] and report["seeds"] == 12
    assert len(list((tmp_path / "runs").glob("*.h5"))) == 60
    image = matplotlib.image.imread(tmp_path / "propagation_of_chaos.png")
    assert image.shape[1] > 600 and np.ptp(image) > 0
    figure_ok(tmp_path / "propagation_of_chaos_curves.png")
    for t, r in report["results"].items():
        assert -0.75 < r["fit_f"]["slope"] < -0.25, (t, r["fit_f"])
        assert r["fit_f"]["ci"][0] < r["fit_f"]["slope"] < r["fit_f"]["ci"][1]
        assert -0.9 < r["fit_loss"]["slope"] < -0.1, (t, r["fit_loss"])
    # At t = 0 the particles are i.i.d.: √m · spread of f is the central-limit constant at every width.
    scaled = np.array(report["results"]["0.0"]["std_f"]) * np.sqrt(widths)
    assert abs(np.exp(np.mean(np.log(scaled))) / report["clt_sqrt_m_std_f"] - 1) < 0.25
    assert "slope of std f" in result.stdout
    # The CLI's sweep over the same runs gives the experiment's slope of the loss spread.
    sweep = run_cli_here("sweep", *sorted((tmp_path / "runs").glob("*.h5")), "--x", "model.width",
                         "--y", "t=2:loss", "--stat", "std", "--fit", "power", "--json")
    assert sweep.returncode == 0, sweep.stderr
    fit = json.loads(sweep.stdout)["fits"]["t=2:loss"]
    assert fit["slope"] == pytest.approx(report["results"]["2.0"]["fit_loss"]["slope"], rel=1e-9)

    # --reuse keeps complete runs: nothing is run again.
    again = run_experiment("propagation_of_chaos", tmp_path, "--reuse")
    assert again.stdout.startswith("0 runs in")
    assert json.loads((tmp_path / "propagation_of_chaos.json").read_text())["results"] == report["results"]


def figure_ok(path):
    image = matplotlib.image.imread(path)
    assert image.shape[1] > 600 and np.ptp(image) > 0
    assert path.stat().st_size < 150_000  # small enough to commit to the gallery


def test_lazy_vs_mean_field_quick(tmp_path):
    """V3/(T6): the Gram matrix freezes and KL(ρ_end ‖ ρ₀) falls like β⁻² as β grows."""
    run_experiment("lazy_vs_mean_field", tmp_path)
    report = json.loads((tmp_path / "lazy_vs_mean_field.json").read_text())
    figure_ok(tmp_path / "lazy_vs_mean_field.png")
    betas, drift, kl = (np.array(report[k]) for k in ("betas", "drift", "kl_end"))
    assert len(list((tmp_path / "runs").glob("*.h5"))) == len(betas) == 6
    # β = O(1) moves λ_min(G) by O(1); the largest β leaves it within a few per cent.
    assert drift[0] > 0.5 and drift[-1] < 0.05 and np.all(np.diff(drift) < 0)
    assert -2.3 < report["fit_kl"]["slope"] < -1.7, report["fit_kl"]
    assert report["fit_kl"]["ci"][0] < report["fit_kl"]["slope"] < report["fit_kl"]["ci"][1]
    # β · W2 path length tends to a constant (the lazy limit's sqrt(yᵀK⁻¹y)).
    scaled = np.array(report["beta_length_end"])
    assert abs(scaled[-1] / scaled[-2] - 1) < 0.05
    # λ₀ is the file's own (mfsim computes it); it is positive for distinct points.
    assert report["lambda0"] > 0


def test_linear_convergence_quick(tmp_path):
    """(A12) lies above the loss; the decay rate is at least 2λ_min(G)/n ((A11) Rayleigh quotient)."""
    result = run_experiment("linear_convergence", tmp_path)
    report = json.loads((tmp_path / "linear_convergence.json").read_text())
    figure_ok(tmp_path / "linear_convergence.png")
    n = report["n_train"]
    assert [r["beta"] for r in report["runs"]] == pytest.approx([1, np.sqrt(n), n])
    with open_run(next((tmp_path / "runs").glob("*.h5"))) as run:
        rounding = 1e-6 if run.parameters.get("precision", "double") == "double" else 1e-4
    for r in report["runs"]:
        assert r["max_log_loss_over_bound"] < rounding, r  # the a-posteriori bound (A12) holds
        assert r["min_rate_ratio"] > 1 - 1e-3, r  # −d log L/dt ≥ 2λ_min/n up to the O(Δ²) difference
        assert 1 - 1e-3 < r["rate_ratio"] < 2.0, r
        assert r["loss_drop"] < 1e-2
        # (T3): λ_min stayed above β²λ₀/2, so the measured rate beats the a-priori rate β²λ₀/n.
        if r["min_lambda_over_beta2"] >= r["lambda0"] / 2:
            assert r["measured_rate"] > r["t3_rate"]
    assert "max log(L/bound)" in result.stdout


def test_resnet_depth_width_quick(tmp_path):
    """V1 for model B: the error falls like 1/L against a deeper reference and like M^(−1/2) over seeds."""
    run_experiment("resnet_depth_width", tmp_path)
    report = json.loads((tmp_path / "resnet_depth_width.json").read_text())
    figure_ok(tmp_path / "resnet_depth_width.png")
    for t, fit in report["fits"]["depth"].items():
        assert -1.2 < fit["slope"] < -0.85, (t, fit)
    for t, fit in report["fits"]["depth_effective"].items():
        assert -1.05 < fit["slope"] < -0.95, (t, fit)  # leading order of the Euler-in-depth error
    for t, fit in report["fits"]["width"].items():
        assert -0.85 < fit["slope"] < -0.2, (t, fit)
        assert fit["ci"][0] < fit["slope"] < fit["ci"][1]
    # The Gram parts apart, from an initialisation where G₁(0) ≠ 0, and each stays bounded below.
    assert "not antithetic" in report["gram_init"]
    widths = report["gram_parts_by_width"]
    assert len(widths) == len(report["widths"])
    for entry in widths.values():
        assert entry["G1"]["t0"] > 0 and entry["G2"]["t0"] > 0
        assert entry["G1"]["min_over_t0"] > 0.5 and entry["G2"]["min_over_t0"] > 0.5


def test_path_norm_generalisation_quick(tmp_path):
    """The path norms the experiment plots are the file's, and they are β·mean|a|‖(w, b)‖₁ of the particles."""
    run_experiment("path_norm_generalisation", tmp_path)
    report = json.loads((tmp_path / "path_norm_generalisation.json").read_text())
    figure_ok(tmp_path / "path_norm_generalisation.png")
    runs = sorted((tmp_path / "runs").glob("*.h5"))
    assert len(runs) == len(report["widths"]) * len(report["n_trains"]) * report["seeds"]
    for path in runs[:: max(1, len(runs) // 5)]:
        with open_run(path) as run:
            # a float build computed the norms in single precision (numpy recomputes them in double)
            rel = 1e-10 if run.parameters.get("precision", "double") == "double" else 1e-5
            last = run.particles["two_layer"].frame(-1)
            wb = np.column_stack([last.block("w"), last["b"]])
            p1 = float(run.get("model.beta")) * np.mean(np.abs(last["a"]) * np.abs(wb).sum(axis=1))
            assert run.observables["path_norm_l1"].final == pytest.approx(p1, rel=rel)
            n, d = run.data.x_train.shape
            assert run.observables["rademacher_bound"].final == pytest.approx(
                2 * p1 * np.sqrt(2 * np.log(2 * (d + 1)) / n), rel=rel)
    for n, st in report["per_n"].items():
        assert -1 <= st["spearman_test_vs_path_norm"] <= 1
        # the widest network fits the training set better than a single neuron (more parameters, same time)
        assert st["median_train"][-1] < st["median_train"][0]
    lazy = report["lazy"]
    lazy_runs = sorted((tmp_path / "runs" / "lazy").glob("*.h5"))
    assert len(lazy_runs) == len(lazy["widths"]) * lazy["seeds"]
    with open_run(lazy_runs[0]) as run:
        # antithetic pairs: the lazy sweep starts from f ≡ 0, so its test error is not the random initial function's
        assert float(run.get("model.beta")) == lazy["beta"]
        assert run.observables["loss"].time[0] == 0.0
        assert run.observables["loss"].initial == pytest.approx(0.5 * np.mean(run.data.y_train ** 2), rel=1e-9)
    assert lazy["median_train"][-1] < lazy["median_train"][0]
    assert lazy["width_of_max_test"] in lazy["widths"]


def test_langevin_free_energy_quick(tmp_path):
    """V6b: the free energy falls (up to the entropy estimator's noise) to a plateau at an
    exponential rate with a finite CI, and the Gibbs gap falls by an order of magnitude."""
    result = run_experiment("langevin_free_energy", tmp_path)
    report = json.loads((tmp_path / "langevin_free_energy.json").read_text())
    figure_ok(tmp_path / "langevin_free_energy.png")
    assert [r["temperature"] for r in report["runs"]] == pytest.approx([0.01, 0.05])
    for r in report["runs"]:
        fit = r["fit"]
        assert fit["points"] >= 3 and fit["ci"][0] > 0, r  # a decay, resolved by the fit
        assert fit["ci"][0] <= fit["rate"] <= fit["ci"][1]
        assert r["max_increase"] < 0.01, r  # non-increasing up to estimator noise
        assert r["gibbs_end"] < 0.1 * r["gibbs_start"], r
    # More noise spreads the particles: a larger path norm.
    assert report["runs"][1]["path_norm"] > report["runs"][0]["path_norm"]
    assert "95% CI" in result.stdout


def test_real_data_classification_quick(tmp_path):
    """Experiment 7: the breast-cancer set, logistic loss, full batch and SGD in both regimes: every
    run classifies the held-out rows well; the lazy run's Gram matrix moves less than the
    mean-field one's."""
    pytest.importorskip("sklearn")
    result = run_experiment("real_data_classification", tmp_path)
    report = json.loads((tmp_path / "real_data_classification.json").read_text())
    figure_ok(tmp_path / "real_data_classification.png")
    runs = {(r["beta"], r["batch"]): r for r in report["runs"]}
    assert len(runs) == 4 and {b for _, b in runs} == {0, report["batch"]}
    for r in runs.values():
        assert r["final_test"] > 0.9 and r["final_train"] > 0.9, r
    for batch in (0, report["batch"]):
        assert runs[(32.0, batch)]["gram_change"] < 0.5 * runs[(1.0, batch)]["gram_change"]
    assert "figure:" in result.stdout


def test_digits_lazy_vs_mean_field_quick(tmp_path):
    """Experiment 8: ten classes, c = 10 outputs: both regimes learn (test accuracy well above the
    1/10 of chance); the lazy Gram matrix and particle law move far less than the mean-field ones;
    the curves in the report are the files' observables against t' = β² t."""
    pytest.importorskip("sklearn")
    result = run_experiment("digits_lazy_vs_mean_field", tmp_path)
    report = json.loads((tmp_path / "digits_lazy_vs_mean_field.json").read_text())
    figure_ok(tmp_path / "digits_lazy_vs_mean_field.png")
    regimes = report["regimes"]
    assert len(report["runs"]) == 2 * report["seeds"]
    for regime in regimes.values():
        assert regime["final_test"]["mean"] > 0.4, regime
    lazy, mean_field = regimes["lazy"], regimes["mean-field"]
    assert lazy["gram_change"]["mean"] < 0.2 * mean_field["gram_change"]["mean"]
    assert lazy["final_kl"]["mean"] < 0.05 * mean_field["final_kl"]["mean"]
    for r in report["runs"]:
        with open_run(tmp_path / "runs" / f"{'lazy' if r['beta'] > 1 else 'mean-field'}_s{r['seed']}.h5") as run:
            assert run.outputs == 10
            assert r["final_test"] == run.observables["test_accuracy"].value[-1]
            lam = run.observables["gram_lambda_min"].value
            assert r["gram_change"] == pytest.approx(np.max(np.abs(lam / lam[0] - 1)), rel=1e-12)
            assert run.observables["test_accuracy"].time[-1] * r["beta"] ** 2 == pytest.approx(report["t_rescaled"])
    assert "figure:" in result.stdout


def test_population_committee_quick(tmp_path):
    """Experiment 9: the m = k committee follows its Saad–Solla ODE and every width learns the
    teacher; on the line the particles' error against the reduced PDE falls with m at a slope
    near −1/2, far above the PDE's grid error."""
    result = run_experiment("population_committee", tmp_path)
    report = json.loads((tmp_path / "population_committee.json").read_text())
    figure_ok(tmp_path / "population_committee.png")
    assert len(list((tmp_path / "runs" / "committee").glob("*.h5"))) == len(report["widths"]) * report["seeds"]
    assert len(list((tmp_path / "runs" / "line").glob("*.h5"))) == sum(report["line_seeds"])
    # RK4 at dt = 0.5 against the ODE at 1e-10: measured 1.2e-5 relative (a broken kernel: order 1)
    assert report["ode_max_relative_error"] < 1e-3
    for m, p in report["plateau"].items():
        assert p["risk_end"] < p["risk_t0"] / 100, (m, p)
    fit = report["fit"]
    assert -1.0 < fit["slope"] < -0.3 and fit["ci"][0] < fit["slope"] < fit["ci"][1], fit
    assert report["grid_error_max"] < 0.2 * min(report["rms"]["combined"])
    assert "Saad–Solla ODE" in result.stdout

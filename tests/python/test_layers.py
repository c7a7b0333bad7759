"""Per-layer observables of the ResNet (a layer axis each), recomputed here from the particles the
file stores: the transport KL of each layer from its particles' log-densities, the kNN KL of each
layer with scipy's neighbour search (their mean over layers is the kl_blocks_* observable), the
ℓ1 path norm of each layer; λ_min of each layer's Gram term against Weyl's inequality and, for one
layer, against λ_min(G₁)."""

import subprocess

import numpy as np
import pytest
from conftest import mfsim_command
from scipy import spatial, special

from mfsim_analysis import open_run

LAYERS, WIDTH, K = 4, 24, 3


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("layers") / "resnet.h5"
    command = mfsim_command(path, model__kind='"resnet"', model__depth=LAYERS, model__width=WIDTH,
                            model__head_width=32, model__activation='"tanh"', init__antithetic="true",
                            diagnostics__kl='["transport", "knn"]', diagnostics__knn_k=K,
                            diagnostics__knn_every=10, diagnostics__every=10, output__observe_every=10,
                            diagnostics__gram="true", diagnostics__gram_layers="true",
                            diagnostics__gram_every=10, diagnostics__path_norm="true")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return path


def _rows_at(obs, step):
    (i,) = np.flatnonzero(obs.step == step)
    return obs.value[i]


def test_transport_kl_per_layer_from_the_particles(resnet):
    with open_run(resnet) as run:
        o = run.observables
        layers = o["kl_blocks_transport_layers"]
        assert layers.value.shape == (len(o["kl_blocks_transport"]), LAYERS)
        np.testing.assert_allclose(layers.value.mean(axis=1), o["kl_blocks_transport"].value, rtol=1e-12,
                                   atol=1e-15)
        g = run.particles["resnet_blocks"]
        std = g.init_std
        log_norm = np.sum(0.5 * np.log(2 * np.pi * std**2))
        checked = 0
        for index in range(len(g)):
            frame = g.frame(index)
            if frame.step not in layers.step or frame.log_density is None:
                continue
            r = frame.log_density + 0.5 * np.sum((frame.value / std) ** 2, axis=1) + log_norm
            r = r.reshape(LAYERS, WIDTH)
            expect = r.mean(axis=1)
            # Antithetic start: the pairs (rows 2j, 2j + 1) are the independent draws.
            pair_means = r.reshape(LAYERS, WIDTH // 2, 2).mean(axis=2)
            stderr = pair_means.std(axis=1, ddof=1) / np.sqrt(WIDTH // 2)
            np.testing.assert_allclose(_rows_at(layers, frame.step), expect, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(_rows_at(o["kl_blocks_transport_layers_stderr"], frame.step), stderr,
                                       rtol=1e-9, atol=1e-12)
            reliable = 2.5 * stderr <= np.maximum(0.1, 0.05 * np.abs(expect))
            np.testing.assert_array_equal(_rows_at(o["kl_blocks_transport_layers_reliable"], frame.step),
                                          reliable.astype(float))
            checked += 1
        assert checked >= 3


def test_knn_kl_per_layer_with_scipy(resnet):
    with open_run(resnet) as run:
        o = run.observables
        layers = o["kl_blocks_knn_layers"]
        assert layers.value.shape[1] == LAYERS
        np.testing.assert_allclose(layers.value.mean(axis=1), o["kl_blocks_knn"].value, rtol=1e-12, atol=1e-14)
        assert set(np.unique(o["kl_blocks_knn_layers_reliable"].value)) <= {0.0, 1.0}
        g = run.particles["resnet_blocks"]
        frame = g.frame(-1)
        # Whitened by the initial stds, one member of each antithetic pair, layer by layer.
        x = (frame.value / g.init_std).reshape(LAYERS, WIDTH, -1)[:, ::2]
        n, d = x.shape[1], x.shape[2]
        log_vd = d / 2 * np.log(np.pi) - special.gammaln(d / 2 + 1)
        expect, stderr = [], []
        for xl in x:
            eps = spatial.cKDTree(xl).query(xl, K + 1)[0][:, K]
            h = special.digamma(n) - special.digamma(K) + log_vd + d * np.mean(np.log(eps))
            expect.append(-h + d / 2 * np.log(2 * np.pi) + np.mean(np.sum(xl**2, axis=1)) / 2)
            terms = np.sum(xl**2, axis=1) / 2 - d * np.log(eps)
            stderr.append(np.std(terms, ddof=1) / np.sqrt(n))
        np.testing.assert_allclose(_rows_at(layers, frame.step), expect, rtol=1e-9)
        np.testing.assert_allclose(_rows_at(o["kl_blocks_knn_layers_stderr"], frame.step), stderr, rtol=1e-9)


def test_path_norm_per_layer_from_the_particles(resnet):
    with open_run(resnet) as run:
        obs = run.observables["path_norm_blocks_l1_layers"]
        alpha, d = run.get("model.alpha"), run.data.x_train.shape[1]
        g = run.particles["resnet_blocks"]
        checked = 0
        for frame in g:
            if frame.step not in obs.step:
                continue
            x = frame.value.reshape(LAYERS, WIDTH, -1)
            u, wb = np.abs(x[:, :, :d]).sum(axis=2), np.abs(x[:, :, d:]).sum(axis=2)
            np.testing.assert_allclose(_rows_at(obs, frame.step), alpha * (u * wb).mean(axis=1), rtol=1e-12)
            checked += 1
        assert checked >= 3


def test_gram_per_layer_obeys_weyl(resnet, tmp_path):
    with open_run(resnet) as run:
        layers = run.observables["gram_blocks_lambda_min_layers"]
        blocks = run.observables["gram_blocks_lambda_min"]
        assert layers.value.shape == (len(blocks), LAYERS)
        np.testing.assert_array_equal(layers.step, blocks.step)
        # G₁ = Σ_l G₁,l with every term positive semi-definite: 0 ≤ Σ_l λ_min(G₁,l) ≤ λ_min(G₁).
        scale = run.observables["gram_lambda_max"].value
        assert np.all(layers.value >= -1e-12 * scale[:, None])
        assert np.all(layers.value.sum(axis=1) <= blocks.value + 1e-12 * scale)
        assert np.any(layers.value.sum(axis=1) < 0.999 * blocks.value)  # a real inequality here
    one = tmp_path / "one.h5"
    result = subprocess.run(mfsim_command(one, model__kind='"resnet"', model__depth=1, model__width=WIDTH,
                                          model__head_width=16, diagnostics__gram="true",
                                          diagnostics__gram_layers="true", init__antithetic="false"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open_run(one) as run:
        np.testing.assert_allclose(run.observables["gram_blocks_lambda_min_layers"].value[:, 0],
                                   run.observables["gram_blocks_lambda_min"].value, rtol=1e-12)


def test_two_layer_runs_have_no_layer_axis(small_run):
    with open_run(small_run) as run:
        assert not [name for name in run.observables if name.endswith("_layers")]

// Model A's activation cache (flow.activation_cache_bytes): the forward pass keeps the
// pre-activations z = w·x̃, which equal the formula, and an evaluation that reads them gives the
// velocities, Laplacians, residuals and loss of the one that recomputes them, to 1e−12 relative,
// for every activation, with and without bias, for both scalar losses, on the full batch and on
// minibatches, at sizes that leave partial tiles, chunks and register blocks on both sides.
#include <gtest/gtest.h>

#include <cmath>

#include "detail/pair_tiles.hpp"  // private (src/detail): the cache's blocks of lanes
#include "helpers.hpp"
#include "mfsim/flow/minibatch.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

// n = 101 samples and m = 70 particles: no multiple of the lanes, register blocks, particle
// chunks, sample chunks or tiles of either kernel; d = 192, the fewest inputs that use the cache.
struct Problem {
  Dataset data;
  TwoLayerSpec spec;
  ParticleState state;

  Problem(ActivationKind act, bool bias, LossKind loss, index_t n = 101, index_t m = 70) {
    SyntheticDataSpec d = test::small_data(TwoLayerSpec::min_cached_inputs, n, 0);
    d.sign_labels = needs_signed_labels(loss);
    data = make_synthetic_dataset(d);
    spec.width = m;
    spec.beta = 1.3;
    spec.bias = bias;
    spec.loss = loss;
    // A series up to He_4 for the Hermite activation (the others ignore the coefficients).
    spec.activation = {act, real(1.5)};
    if (act == ActivationKind::hermite) spec.activation.hermite = {0.2, 0.8, -0.4, 0.3, 0.1};
    spec.std_b = 0.5;
    const TwoLayerModel model(spec, data);
    state = allocate_state(model.groups(), true, "state");
    model.initialize(state, 5, false);
    set_initial_log_density(state, model.groups());
  }

  TwoLayerModel model(std::uint64_t cache_bytes) const {
    TwoLayerSpec s = spec;
    s.activation_cache_bytes = cache_bytes;
    return TwoLayerModel(s, data);
  }
};

const double agreement = test::tol(1e-12, 1e-5);

// One evaluation with and one without the cache, at the same state (minibatch: a batch of 37,
// the same draw for both).
void expect_cache_agrees(const Problem& p, index_t minibatch, const std::string& what) {
  const TwoLayerModel cached = p.model(std::uint64_t(1) << 30), recomputed = p.model(0);
  ASSERT_TRUE(cached.spec().caches_activations(minibatch ? minibatch : p.data.n_train(),
                                               p.spec.width, p.data.dim()));
  ParticleState v_cached = allocate_like(p.state, "v_cached");
  ParticleState v_recomputed = allocate_like(p.state, "v_recomputed");
  const auto e_cached = cached.make_evaluation(minibatch);
  const auto e_recomputed = recomputed.make_evaluation(minibatch);
  if (minibatch) {
    MinibatchSettings settings;
    settings.size = minibatch;
    const MinibatchSampler sampler(settings, p.data);
    sampler.draw(3, *e_cached);
    sampler.draw(3, *e_recomputed);
  }
  const double loss_cached = cached.evaluate(p.state, *e_cached, v_cached);
  const double loss_recomputed = recomputed.evaluate(p.state, *e_recomputed, v_recomputed);
  EXPECT_LE(std::fabs(loss_cached - loss_recomputed), agreement * std::fabs(loss_recomputed))
      << what;
  EXPECT_LE(
      test::relative_difference(test::host(e_cached->residual), test::host(e_recomputed->residual)),
      agreement)
      << what;
  EXPECT_LE(
      test::relative_difference(test::host(v_cached.theta[0]), test::host(v_recomputed.theta[0])),
      agreement)
      << what;
  if (is_twice_differentiable(p.spec.activation.kind))
    EXPECT_LE(test::relative_difference(test::host(v_cached.log_density[0]),
                                        test::host(v_recomputed.log_density[0])),
              agreement)
        << what;
}

TEST(ActivationCache, EvaluationsAgreeWithRecomputing) {
  for (const std::string& name : activation_names())
    for (bool bias : {true, false})
      for (LossKind loss : {LossKind::square, LossKind::logistic})
        for (index_t minibatch : {index_t(0), index_t(37)}) {
          const Problem p(parse_activation(name), bias, loss);
          expect_cache_agrees(p, minibatch,
                              name + " bias=" + std::to_string(bias) + " loss=" + loss_name(loss) +
                                  " minibatch=" + std::to_string(minibatch));
        }
}

// More particles than one velocity tile and more samples than one forward tile, with particles
// left over in the last register block of each.
TEST(ActivationCache, EvaluationsAgreeAcrossSeveralTiles) {
  const Problem p(ActivationKind::tanh, true, LossKind::square, 203, 134);
  expect_cache_agrees(p, 0, "n = 203, m = 134");
  expect_cache_agrees(p, 150, "minibatch of 150");
}

// The cache holds z_ik = w_k·x_i + b_k (computed here on the host in double) by blocks of `lanes`
// particles: entry (k / lanes, i·lanes + k % lanes).
TEST(ActivationCache, HoldsThePreactivationsOfTheForwardPass) {
  for (bool bias : {true, false}) {
    const Problem p(ActivationKind::tanh, bias, LossKind::square);
    const TwoLayerModel model = p.model(std::uint64_t(1) << 30);
    ParticleState v = allocate_like(p.state, "v");
    const auto e = model.make_evaluation(0);
    model.evaluate(p.state, *e, v);
    const index_t n = p.data.n_train(), m = p.spec.width;
    const int d = p.data.dim();
    const int lanes = tiles::lanes;
    const std::vector<double> z =
        test::host(e->scratch.view<Matrix>("preactivations", (m + lanes - 1) / lanes, n * lanes));
    const std::vector<double> x = test::host(p.data.x_train), th = test::host(p.state.theta[0]);
    const int D = p.spec.particle_dim(d);
    double worst = 0;
    for (index_t i = 0; i < n; ++i)
      for (index_t k = 0; k < m; ++k) {
        double expected = bias ? th[k * D + 1 + d] : 0.0, size = std::fabs(expected);
        for (int c = 0; c < d; ++c) {
          expected += th[k * D + 1 + c] * x[i * d + c];
          size += std::fabs(th[k * D + 1 + c] * x[i * d + c]);
        }
        const double cached = z[(k / lanes) * n * lanes + i * lanes + k % lanes];
        worst = std::fmax(worst, std::fabs(cached - expected) / size);
      }
    EXPECT_LE(worst, test::tol(1e-14, 1e-6)) << "bias=" << bias;
  }
}

// The budget in bytes of the n × m pre-activations of this rank's particles, m rounded up to
// whole 64-byte blocks; inputs narrower than min_cached_inputs and c > 1 recompute.
TEST(ActivationCache, TheBudgetAndTheInputsDecide) {
  TwoLayerSpec spec;
  const int block = TwoLayerSpec::cache_block;
  const int wide = TwoLayerSpec::min_cached_inputs;
  EXPECT_EQ(block * sizeof(real), 64u);
  const std::uint64_t bytes = 101 * 9 * 64;  // 101 samples, 9 blocks
  spec.activation_cache_bytes = bytes;
  EXPECT_TRUE(spec.caches_activations(101, 9 * block, wide));
  EXPECT_TRUE(spec.caches_activations(101, 8 * block + 1, wide));
  EXPECT_FALSE(spec.caches_activations(101, 9 * block + 1, wide));
  EXPECT_FALSE(spec.caches_activations(102, 9 * block, wide));
  EXPECT_FALSE(spec.caches_activations(101, 9 * block, wide - 1));
  spec.activation_cache_bytes = bytes - 1;
  EXPECT_FALSE(spec.caches_activations(101, 9 * block, wide));
  spec.activation_cache_bytes = 0;
  EXPECT_FALSE(spec.caches_activations(1, 1, wide));
  spec.activation_cache_bytes = bytes;
  spec.outputs = 3;
  EXPECT_FALSE(spec.caches_activations(1, 1, wide));
  EXPECT_EQ(TwoLayerSpec().activation_cache_bytes, std::uint64_t(256) << 20);
}

}  // namespace
}  // namespace mfsim

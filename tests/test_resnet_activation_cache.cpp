// Model B's activation cache (flow.activation_cache_bytes): the forward pass keeps the block
// pre-activations π = w·z_l + b and the backward pass the products q_{l+1}·u, which equal the
// formulas on the evaluation's own states and sensitivities, and an evaluation that reads them
// gives the velocities, Laplacians, residuals and loss of the one that recomputes them, to 1e−12
// relative: every block activation, c = 1 and c = 3 outputs, the full batch and minibatches, at
// sizes that leave partial blocks of lanes, sample chunks and velocity tiles.
#include <gtest/gtest.h>

#include <cmath>

#include "detail/pair_tiles.hpp"  // private (src/detail): the cache's blocks of lanes
#include "helpers.hpp"
#include "host_resnet.hpp"
#include "mfsim/flow/minibatch.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

// n = 101 samples, M = 70 particles a layer (no multiple of the lanes, the 64-particle chunks and
// tiles or the 48-sample chunks), d = 64 inputs: the fewest that use the cache.
struct Problem {
  Dataset data;
  ResNetSpec spec;
  ParticleState state;

  Problem(ActivationKind act, int outputs, index_t n = 101, index_t width = 70)
      : spec(test::small_resnet_spec(act, ActivationKind::erf, outputs,
                                     outputs == 1 ? LossKind::square : LossKind::cross_entropy)) {
    spec.width = width;
    spec.head_width = 50;
    if (act == ActivationKind::hermite) spec.activation.hermite = {0.2, 0.8, -0.4, 0.3, 0.1};
    spec.std_w = 0.3;  // π = w·z + b in σ's curved range
    data = test::vector_data(n, ResNetSpec::min_cached_inputs, outputs, spec.loss);
    const ResNetModel model(spec, data);
    state = allocate_state(model.groups(), true, "state");
    model.initialize(state, 5, false);
    set_initial_log_density(state, model.groups());
  }

  ResNetModel model(std::uint64_t cache_bytes) const {
    ResNetSpec s = spec;
    s.activation_cache_bytes = cache_bytes;
    return ResNetModel(s, data);
  }
};

const double agreement = test::tol(1e-12, 1e-5);

// One evaluation with and one without the cache, at the same state (minibatch: a batch of that
// many, the same draw for both).
void expect_cache_agrees(const Problem& p, index_t minibatch, const std::string& what) {
  const ResNetModel cached = p.model(std::uint64_t(1) << 30), recomputed = p.model(0);
  ParticleState v_cached = allocate_like(p.state, "v_cached");
  ParticleState v_recomputed = allocate_like(p.state, "v_recomputed");
  const auto e_cached = cached.make_evaluation(minibatch);
  const auto e_recomputed = recomputed.make_evaluation(minibatch);
  ASSERT_NE(static_cast<const ResNetEvaluation&>(*e_cached).block_preactivations.data(), nullptr)
      << what;
  ASSERT_EQ(static_cast<const ResNetEvaluation&>(*e_recomputed).block_preactivations.data(),
            nullptr)
      << what;
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
  for (std::size_t g = 0; g < p.state.theta.size(); ++g) {
    EXPECT_LE(
        test::relative_difference(test::host(v_cached.theta[g]), test::host(v_recomputed.theta[g])),
        agreement)
        << what << " group " << g;
    if (is_twice_differentiable(p.spec.activation.kind))
      EXPECT_LE(test::relative_difference(test::host(v_cached.log_density[g]),
                                          test::host(v_recomputed.log_density[g])),
                agreement)
          << what << " group " << g;
  }
}

TEST(ResNetActivationCache, EvaluationsAgreeWithRecomputing) {
  for (const std::string& name : activation_names())
    for (int outputs : {1, 3})
      for (index_t minibatch : {index_t(0), index_t(37)}) {
        const Problem p(parse_activation(name), outputs);
        expect_cache_agrees(
            p, minibatch,
            name + " c=" + std::to_string(outputs) + " minibatch=" + std::to_string(minibatch));
      }
}

// Several velocity tiles and sample-sum chunks a layer, and more samples than one thread's share
// of a per-sample pass, with particles left over in the last block of lanes.
TEST(ResNetActivationCache, EvaluationsAgreeAcrossSeveralTiles) {
  const Problem p(ActivationKind::tanh, 1, 203, 134);
  expect_cache_agrees(p, 0, "n = 203, M = 134");
  expect_cache_agrees(p, 150, "minibatch of 150");
}

// The cache holds π = w·z_l + b and q_{l+1}·u (computed here on the host, in double, from the
// evaluation's states z_l and sensitivities q_{l+1}) by blocks of `lanes` particles, layer after
// layer: entry (l·⌈M/lanes⌉ + j / lanes, i·lanes + j % lanes) for particle j of layer l.
TEST(ResNetActivationCache, HoldsThePreactivationsAndInputProducts) {
  for (int outputs : {1, 3}) {
    const Problem p(ActivationKind::tanh, outputs);
    const ResNetModel model = p.model(std::uint64_t(1) << 30);
    ParticleState v = allocate_like(p.state, "v");
    const auto e = model.make_evaluation(0);
    model.evaluate(p.state, *e, v);
    const auto& r = static_cast<const ResNetEvaluation&>(*e);
    const index_t n = p.data.n_train(), M = p.spec.width, L = p.spec.depth;
    const int d = p.data.dim(), lanes = tiles::lanes, D = ResNetSpec::block_dim(d);
    const index_t rows = (M + lanes - 1) / lanes;
    const std::vector<double> pre = test::host(r.block_preactivations);
    const std::vector<double> products = test::host(r.block_input_products);
    ASSERT_EQ(pre.size(), std::size_t(L * rows * n * lanes));
    const std::vector<double> th = test::host(p.state.theta[0]);
    double worst_pre = 0, worst_product = 0;
    for (index_t l = 0; l < L; ++l) {
      const std::vector<double> z = test::host(r.state(l)), q = test::host(r.sensitivity(l + 1));
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < M; ++j) {
          const index_t k = l * M + j;
          double pi = th[k * D + 2 * d], pi_size = std::fabs(pi), qu = 0, qu_size = 0;
          for (int c = 0; c < d; ++c) {
            pi += th[k * D + d + c] * z[i * d + c];
            pi_size += std::fabs(th[k * D + d + c] * z[i * d + c]);
            qu += th[k * D + c] * q[i * d + c];
            qu_size += std::fabs(th[k * D + c] * q[i * d + c]);
          }
          const std::size_t at =
              std::size_t((l * rows + j / lanes) * n * lanes + i * lanes) + std::size_t(j % lanes);
          worst_pre = std::fmax(worst_pre, std::fabs(pre[at] - pi) / pi_size);
          worst_product = std::fmax(worst_product, std::fabs(products[at] - qu) / qu_size);
        }
    }
    EXPECT_LE(worst_pre, test::tol(1e-14, 1e-6)) << "c=" << outputs;
    EXPECT_LE(worst_product, test::tol(1e-14, 1e-6)) << "c=" << outputs;
  }
}

// 2 L n M reals (M rounded up to whole 64-byte blocks) against the budget, from d = 64 inputs.
TEST(ResNetActivationCache, TheBudgetAndTheInputsDecide) {
  ResNetSpec spec;
  spec.depth = 3;
  const int block = ResNetSpec::cache_block;
  const int wide = ResNetSpec::min_cached_inputs;
  EXPECT_EQ(block * sizeof(real), 64u);
  const std::uint64_t bytes = 2 * 3 * 101 * 9 * 64;  // L = 3, 101 samples, 9 blocks a layer
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
  EXPECT_EQ(ResNetSpec().activation_cache_bytes, std::uint64_t(256) << 20);
}

}  // namespace
}  // namespace mfsim

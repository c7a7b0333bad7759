// The diagnostics on model B: the Gram parts G₁ (blocks) and G₂ (head) against the energy identity
// of each group (B13 with B11), the antithetic start (G₁(0) = 0, G₂(0)/β² → K_head), the weighted
// path norm against explicit matrix products, and the labelled observables of a run.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "detail/resnet_kernels.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "host_resnet.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/particle_speed.hpp"
#include "mfsim/models/ntk.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

ResNetSpec spec_of(index_t width, index_t head_width) {
  ResNetSpec s = test::small_resnet_spec(ActivationKind::tanh, ActivationKind::erf);
  s.width = width;
  s.head_width = head_width;
  return s;
}

double quadratic_form(const HostMatrix& g, const std::vector<double>& r) {
  double q = 0;
  for (std::size_t i = 0; i < r.size(); ++i)
    for (std::size_t j = 0; j < r.size(); ++j) q += r[i] * g(i, j) * r[j];
  return q / double(r.size() * r.size());
}

double weighted_path_norm(const ResNetModel& model, const ParticleState& s) {
  Workspace scratch;
  return model.path_norms(s, scratch).at("path_norm_weighted");
}

TEST(ResNetDiagnostics, EachGramPartCarriesItsGroupsDissipation) {
  // (1/n²) rᵀG₁r = (1/LM) Σ|V_blocks|² and (1/n²) rᵀG₂r = (1/K) Σ|V_head|², at rounding level.
  const Dataset data = make_synthetic_dataset(test::small_data(3, 9, 0));
  ResNetModel model(spec_of(8, 12), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 5, false);
  ParticleState v = allocate_like(s, "v");
  const auto e = test::evaluate(model, s, v);
  ASSERT_EQ(model.gram_parts(), (std::vector<std::string>{"blocks", "head"}));
  const auto r = test::host(e->residual);
  Workspace scratch;
  for (int part = 0; part < 2; ++part) {
    Matrix g("g", 9, 9);
    model.accumulate_gram(s, *e, part, g, scratch);
    const double q = quadratic_form(to_host(g), r);
    const std::vector<GroupSpec> group = {model.groups()[std::size_t(part)]};
    ParticleState one;
    one.theta = {v.theta[std::size_t(part)]};
    const double speed = mean_square_speed(one, group, self_communicator());
    EXPECT_GT(speed, 0);
    EXPECT_NEAR(q, speed, test::tol(1e-12, 1e-4) * speed) << model.gram_parts()[std::size_t(part)];
  }
}

// The block Gram kernels alone, on each execution space (TypeParam) of the build.
template <class Space>
class BlockGramKernel : public ::testing::Test {};
TYPED_TEST_SUITE(BlockGramKernel, test::ExecutionSpaces);

TYPED_TEST(BlockGramKernel, FactoredEqualsTheGenericKernelOnB13) {
  // G₁ as the model assembles it (per layer, S Sᵀ ∘ (Q Qᵀ) + T Tᵀ ∘ (Z̃ Z̃ᵀ):
  // accumulate_block_gram) against the generic kernel on the full features (B13), over several
  // Gram tiles and particle chunks, both on the space under test.
  const TypeParam space;
  const index_t n = 101;
  const Dataset data = make_synthetic_dataset(test::small_data(3, n, 0));
  ResNetSpec spec = spec_of(150, 10);
  spec.depth = 2;
  ResNetModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 5, false);
  ParticleState v = allocate_like(s, "v");
  const auto e = test::evaluate(model, s, v);
  Matrix factored("factored", n, n), generic("generic", n, n);
  Workspace scratch;
  const LayerView z = test::resnet(*e).states, q = test::resnet(*e).sensitivities;
  const real scale = real(spec.alpha / std::sqrt(double(spec.depth * spec.width)));
  for (index_t l = 0; l < spec.depth; ++l) {
    const Shard rows = model.local_layer(l);
    detail::accumulate_block_gram(space, s.theta[0], rows.begin, rows.size(),
                                  test::resnet(*e).state(l), test::resnet(*e).sensitivity(l + 1),
                                  scale, activations::Tanh{}, factored, scratch);
  }
  accumulate_gram(space,
                  detail::BlockFeatures<activations::Tanh>{s.theta[0], z, q, spec.width, 3, scale,
                                                           activations::Tanh{}},
                  spec.depth * spec.width, generic, scratch);
  space.fence();
  const std::vector<double> f = test::host(factored), g = test::host(generic);
  EXPECT_TRUE(test::is_exactly_symmetric(f, std::size_t(n)));
  const double worst = test::max_abs_diff(f, g), largest = test::max_abs(g);
  EXPECT_GT(largest, 1e-6);
  EXPECT_LT(worst, test::tol(1e-12, 1e-5) * largest);
}

TEST(ResNetDiagnostics, AntitheticStartHasNoBlockGramAndTheHeadKernel) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 6, 0));
  ResNetModel model(spec_of(4, 20000), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 7, true);
  ParticleState v = allocate_like(s, "v");
  const auto e = test::evaluate(model, s, v);
  Matrix g1("g1", 6, 6), g2("g2", 6, 6), k("k", 6, 6);
  Workspace scratch;
  model.accumulate_gram(s, *e, 0, g1, scratch);
  model.accumulate_gram(s, *e, 1, g2, scratch);
  for (double e : test::host(g1)) EXPECT_EQ(e, 0.0);
  const double scale = model.infinite_width_gram(k);
  EXPECT_DOUBLE_EQ(scale, 1.7 * 1.7);
  const auto head = test::host(g2), kernel = test::host(k);
  for (std::size_t e = 0; e < head.size(); ++e)
    EXPECT_NEAR(head[e] / scale, kernel[e], 5 / std::sqrt(20000.0) * kernel[0]) << e;
}

// MATH.md §3.8 written as matrices: ‖ (c, 0)ᵀ A_{L−1} ⋯ A_0 ‖₁ on the augmented state (z, 1),
// A_l = I + c [|U_l||W_l|; 0] (c = spec.path_norm_weight), U_l = (α/(LM)) [u_{l,m}]_m (d × M), W_l
// rows |(w_{l,m}, b_{l,m})|.
double weighted_path_norm_reference(const ResNetSpec& spec, const std::vector<double>& blocks,
                                    const std::vector<double>& head, int d) {
  const int M = int(spec.width), K = int(spec.head_width), L = int(spec.depth);
  Eigen::RowVectorXd row = Eigen::RowVectorXd::Zero(d + 1);
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < d; ++j)
      row(j) += spec.beta / K * std::fabs(head[k * (d + 1)]) * std::fabs(head[k * (d + 1) + 1 + j]);
  for (int l = L - 1; l >= 0; --l) {
    Eigen::MatrixXd U(d + 1, M), W(M, d + 1);
    U.setZero();
    for (int m = 0; m < M; ++m) {
      const double* theta = &blocks[std::size_t((l * M + m) * (2 * d + 1))];
      for (int j = 0; j < d; ++j) U(j, m) = spec.alpha / (L * M) * std::fabs(theta[j]);
      for (int j = 0; j <= d; ++j) W(m, j) = std::fabs(theta[d + j]);
    }
    const Eigen::MatrixXd A =
        Eigen::MatrixXd::Identity(d + 1, d + 1) + spec.path_norm_weight * U * W;
    row = row * A;
  }
  return row.lpNorm<1>();
}

TEST(ResNetDiagnostics, WeightedPathNormMatchesMatrixProducts) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 6, 0));
  for (DepthInit depth_init : {DepthInit::iid, DepthInit::constant}) {
    ResNetSpec spec = spec_of(5, 8);
    spec.depth_init = depth_init;
    ResNetModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), false, "s");
    model.initialize(s, 3, false);
    const double norm = weighted_path_norm(model, s);
    const double expected = weighted_path_norm_reference(
        spec, test::host(s.theta[ResNetModel::blocks]), test::host(s.theta[ResNetModel::head]), 3);
    EXPECT_NEAR(norm, expected, test::tol(1e-13, 1e-5) * expected);
    EXPECT_GT(norm, 0);
  }
  // The factor c of A_l = I + c|U||W| is a parameter (model.path_norm_weight, default 3).
  {
    ResNetSpec spec = spec_of(5, 8);
    EXPECT_EQ(spec.path_norm_weight, 3.0);
    spec.path_norm_weight = 1.5;
    ResNetModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), false, "s");
    model.initialize(s, 3, false);
    const double expected = weighted_path_norm_reference(
        spec, test::host(s.theta[ResNetModel::blocks]), test::host(s.theta[ResNetModel::head]), 3);
    EXPECT_NEAR(weighted_path_norm(model, s), expected, test::tol(1e-13, 1e-5) * expected);
    spec.path_norm_weight = 3;
    ResNetModel three(spec, data);
    EXPECT_LT(weighted_path_norm(model, s), weighted_path_norm(three, s));
  }
  // With the residual branches switched off (α → 0) it is the head's ℓ1 path norm over v.
  ResNetSpec spec = spec_of(5, 8);
  spec.alpha = 1e-300;
  ResNetModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 3, false);
  const auto head = test::host(s.theta[ResNetModel::head]);
  double head_l1 = 0;
  for (int k = 0; k < 8; ++k)
    for (int j = 1; j <= 3; ++j) head_l1 += std::fabs(head[k * 4]) * std::fabs(head[k * 4 + j]);
  head_l1 *= spec.beta / 8;
  EXPECT_NEAR(weighted_path_norm(model, s), head_l1, test::tol(1e-12, 1e-5) * head_l1);
}

}  // namespace
}  // namespace mfsim

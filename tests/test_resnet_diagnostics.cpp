// The diagnostics on model B: the Gram parts G₁ (blocks) and G₂ (head) against the energy identity
// of each group (B13 with B11), the antithetic start (G₁(0) = 0, G₂(0)/β² → K_head), and the
// labelled observables of a run.
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/ntk.hpp"
#include "mfsim/diagnostics/particle_speed.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

ResNetSpec spec_of(index_t width, index_t head_width) {
  ResNetSpec s;
  s.depth = 3;
  s.width = width;
  s.head_width = head_width;
  s.alpha = 1.3;
  s.beta = 1.7;
  s.activation = {ActivationKind::tanh, 1};
  s.head_activation = {ActivationKind::erf, 1};
  s.std_u = 0.9;
  s.std_w = 0.8;
  s.std_b = 0.5;
  s.std_a = 1.2;
  s.std_v = 0.7;
  return s;
}

double quadratic_form(const HostMatrix& g, const std::vector<double>& r) {
  double q = 0;
  for (std::size_t i = 0; i < r.size(); ++i)
    for (std::size_t j = 0; j < r.size(); ++j) q += r[i] * g(i, j) * r[j];
  return q / double(r.size() * r.size());
}

TEST(ResNetDiagnostics, EachGramPartCarriesItsGroupsDissipation) {
  // (1/n²) rᵀG₁r = (1/LM) Σ|V_blocks|² and (1/n²) rᵀG₂r = (1/K) Σ|V_head|², at rounding level.
  const Dataset data = make_synthetic_dataset(test::small_data(3, 9, 0));
  ResNetModel model(spec_of(8, 12), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 5, false);
  ParticleState v = allocate_like(s, "v");
  model.velocity(s, v);
  ASSERT_EQ(model.gram_parts(), (std::vector<std::string>{"blocks", "head"}));
  const auto r = test::host(model.residual());
  for (int part = 0; part < 2; ++part) {
    Matrix g("g", 9, 9);
    model.accumulate_gram(s, part, g);
    const double q = quadratic_form(to_host(g), r);
    const std::vector<GroupSpec> group = {model.groups()[std::size_t(part)]};
    ParticleState one;
    one.theta = {v.theta[std::size_t(part)]};
    const double speed = mean_square_speed(one, group, self_communicator());
    EXPECT_GT(speed, 0);
    EXPECT_NEAR(q, speed, test::tol(1e-12, 1e-4) * speed) << model.gram_parts()[std::size_t(part)];
  }
}

TEST(ResNetDiagnostics, AntitheticStartHasNoBlockGramAndTheHeadKernel) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 6, 0));
  ResNetModel model(spec_of(4, 20000), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 7, true);
  ParticleState v = allocate_like(s, "v");
  model.velocity(s, v);
  Matrix g1("g1", 6, 6), g2("g2", 6, 6), k("k", 6, 6);
  model.accumulate_gram(s, 0, g1);
  model.accumulate_gram(s, 1, g2);
  for (double e : test::host(g1)) EXPECT_EQ(e, 0.0);
  const double scale = model.infinite_width_gram(k);
  EXPECT_DOUBLE_EQ(scale, 1.7 * 1.7);
  const auto head = test::host(g2), kernel = test::host(k);
  for (std::size_t e = 0; e < head.size(); ++e)
    EXPECT_NEAR(head[e] / scale, kernel[e], 5 / std::sqrt(20000.0) * kernel[0]) << e;
}

}  // namespace
}  // namespace mfsim

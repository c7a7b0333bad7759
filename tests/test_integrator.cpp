// Observed convergence orders of the integrators (Euler 1, Heun 2, RK4 4) on a small two-layer
// flow, particles and log-densities together, against a fine RK4 reference.
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

struct Flow {
  Dataset data = make_synthetic_dataset(test::small_data(3, 6, 0));
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  Flow() {
    spec.width = 8;
    spec.beta = 2;
    spec.activation = {ActivationKind::tanh, 1};
    model = std::make_unique<TwoLayerModel>(spec, data);
  }

  // Particles and log-densities at time T after `steps` steps.
  std::vector<double> solve(IntegratorKind kind, double T, int steps) {
    ParticleState s = allocate_state(model->groups(), true, "s");
    model->initialize(s, 3, false);
    set_initial_log_density(s, model->groups());
    ParticleState k1 = allocate_like(s, "k1");
    Integrator integrator(kind, s);
    const VelocityField v = [&](const ExecSpace&, const ParticleState& x, ParticleState& dx) {
      return test::evaluate(*model, x, dx)->loss;
    };
    for (int i = 0; i < steps; ++i) {
      v(ExecSpace(), s, k1);
      integrator.finish_step(s, k1, real(T / steps), v);
    }
    auto out = test::host(s.theta[0]);
    const auto logp = test::host(s.log_density[0]);
    out.insert(out.end(), logp.begin(), logp.end());
    return out;
  }
};

double observed_order(IntegratorKind kind, int coarse_steps) {
  Flow f;
  const double T = 0.8;
  const auto reference = f.solve(IntegratorKind::rk4, T, 1024);
  const double e1 = test::max_abs_diff(f.solve(kind, T, coarse_steps), reference);
  const double e2 = test::max_abs_diff(f.solve(kind, T, 2 * coarse_steps), reference);
  return std::log2(e1 / e2);
}

TEST(Integrator, EulerIsFirstOrder) {
  EXPECT_NEAR(observed_order(IntegratorKind::euler, 32), 1, 0.2);
}

TEST(Integrator, HeunIsSecondOrder) {
  EXPECT_NEAR(observed_order(IntegratorKind::heun, 16), 2, 0.2);
}

TEST(Integrator, Rk4IsFourthOrder) {
  if (!test::is_double()) GTEST_SKIP() << "RK4 errors reach float rounding";
  EXPECT_NEAR(observed_order(IntegratorKind::rk4, 16), 4, 0.2);
}

TEST(Integrator, NamesRoundTrip) {
  for (auto k : {IntegratorKind::euler, IntegratorKind::heun, IntegratorKind::rk4})
    EXPECT_EQ(parse_integrator(integrator_name(k)), k);
  EXPECT_THROW(parse_integrator("leapfrog"), std::exception);
}

}  // namespace
}  // namespace mfsim

// Path norms and the Rademacher bound against their formulas (MATH.md §2.7), and the W₂ path
// length against closed forms for linear flows (T4).
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "linear_flow_model.hpp"
#include "mfsim/diagnostics/path_length_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

TEST(PathNorm, MeanFieldPathNormsAndRademacherBound) {
  for (bool bias : {true, false}) {
    const Dataset data = make_synthetic_dataset(test::small_data(3, 25, 0));
    TwoLayerSpec spec;
    spec.width = 4;
    spec.beta = 3;
    spec.bias = bias;
    TwoLayerModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), false, "s");
    const int D = bias ? 5 : 4;
    std::vector<double> th(std::size_t(4 * D));
    for (std::size_t e = 0; e < th.size(); ++e) th[e] = std::sin(1.7 * double(e) + 0.3);
    test::set(s.theta[0], th);
    double l1 = 0, l2 = 0;
    for (int k = 0; k < 4; ++k) {
      double n1 = 0, n2 = 0;
      for (int c = 1; c < D; ++c)
        n1 += std::fabs(th[std::size_t(k * D + c)]), n2 += std::pow(th[std::size_t(k * D + c)], 2);
      l1 += std::fabs(th[std::size_t(k * D)]) * n1;
      l2 += std::fabs(th[std::size_t(k * D)]) * std::sqrt(n2);
    }
    l1 *= 3.0 / 4, l2 *= 3.0 / 4;  // β · mean_k
    ParticleState v = allocate_like(s, "v");
    const auto e = test::evaluate(model, s, v);
    PathNormObserver observer(0);
    test::RecordingOutput out;
    observer.observe({0, 0.0, 0.1, s, v, e->loss, *e, model}, out);
    EXPECT_NEAR(out["path_norm_l1"].last(), l1, test::tol(1e-14, 1e-6) * l1);
    EXPECT_NEAR(out["path_norm_l2"].last(), l2, test::tol(1e-14, 1e-6) * l2);
    // 2R sqrt(2 log(2d') / n), d' = d (+1 with a bias), n = 25 (docs/corrections.md).
    EXPECT_NEAR(out["rademacher_bound"].last(),
                2 * l1 * std::sqrt(2 * std::log(2 * (D - 1.0)) / 25), test::tol(1e-14, 1e-6) * l1);
  }
}

test::LinearGroup linear(index_t count, std::vector<double> a, std::vector<double> b) {
  return {test::linear_group_spec("lin", count, {1.0, 0.5}), std::move(a), std::move(b)};
}

TEST(PathLength, ConstantVelocityGivesSpeedTimesTime) {
  test::LinearFlowModel model({linear(50, {0, 0, 0, 0}, {3, 4})});
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 1, false);
  RunSettings r;
  r.dt = 0.1;
  r.steps = 7;
  PathLengthObserver length(0);
  test::RecordingOutput out;
  run_flow(model, s, r, {&length}, out);
  EXPECT_EQ(out["w2_path_length"].value.front()[0], 0.0);
  EXPECT_NEAR(out["w2_path_length"].last(), 5 * 0.7, test::tol(1e-13, 1e-5));
}

TEST(PathLength, ContractionMatchesClosedForm) {
  // v = −αθ: θ_k(t) = e^{−αt}θ_k(0), speed S(t)^{1/2} = α e^{−αt} q, q² = mean_k |θ_k(0)|²,
  // so ℓ(t) = q (1 − e^{−αt}); the trapezoid rule with dt = 0.01 is good to ~1e−5.
  const double alpha = 0.7;
  test::LinearFlowModel model({linear(300, {alpha, 0, 0, alpha}, {})});
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 2, false);
  double q2 = 0;
  for (double c : test::host(s.theta[0])) q2 += c * c / 300;
  RunSettings r;
  r.integrator = IntegratorKind::rk4;
  r.dt = 0.01;
  r.steps = 200;
  r.observe_every = 100;
  PathLengthObserver length(0);
  test::RecordingOutput out;
  run_flow(model, s, r, {&length}, out);
  const double exact = std::sqrt(q2) * (1 - std::exp(-alpha * 2.0));
  EXPECT_NEAR(out["w2_path_length"].last(), exact, test::tol(1e-5, 1e-4) * exact);
}

}  // namespace
}  // namespace mfsim

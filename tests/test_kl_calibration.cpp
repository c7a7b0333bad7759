// The KL calibration harness in small (benchmarks/kl_calibration.cpp runs the full grid): on laws
// with a known KL to N(0, I) (detail/kl_calibration_laws.hpp), every estimate flagged reliable is
// within max(0.1 nats, 5 %) of the truth, the known failures of the kNN estimators are flagged,
// and the transport estimate is unbiased within its standard error.
#include <gtest/gtest.h>

#include <cmath>

#include "app/kl_calibration_flows.hpp"
#include "diagnostics/kl_calibration_estimates.hpp"
#include "mfsim/io/config.hpp"

namespace mfsim {
namespace {

namespace cal = calibration;
using cal::rows_of;

const cal::Result& find(const std::vector<cal::Result>& results, const std::string& name) {
  for (const cal::Result& r : results)
    if (r.estimator == name) return r;
  throw std::logic_error("no estimator " + name);
}

// The harness's estimators on m points of the law.
std::vector<cal::Result> estimate(const cal::Law& law, index_t m, Workspace& scratch) {
  return cal::estimate_all(cal::sample(law, m, 41 + std::uint64_t(m)), law.dim, 5, false,
                           99 + std::uint64_t(m), scratch);
}

TEST(KlCalibration, ReliableValuesAreWithinTheTolerance) {
  Workspace scratch;
  int reliable = 0;
  for (int dim : {2, 4, 7})
    for (const auto& [family, time] : std::vector<std::pair<std::string, double>>{
             {"gaussian", 0}, {"ou", 2}, {"anisotropic", 0.5}, {"anisotropic", 1}, {"planar", 1}})
      for (index_t m : {512, 1024}) {
        const cal::Law law{family, dim, time};
        const cal::Truth truth = cal::truth(law);
        const std::vector<cal::Result> results = estimate(law, m, scratch);
        const double tol = kl_tolerance(truth.kl) + 3 * truth.standard_error;
        SCOPED_TRACE(family + " t = " + std::to_string(time) + ", D = " + std::to_string(dim) +
                     ", m = " + std::to_string(m) + ", KL = " + std::to_string(truth.kl));
        for (const cal::Result& r : results) {
          SCOPED_TRACE(r.estimator);
          if (r.reliable) EXPECT_NEAR(r.value, truth.kl, tol);
          reliable += r.reliable;
        }
        // The transport estimate is the mean of exact log-ratios: unbiased.
        const cal::Result& transport = find(results, "transport");
        EXPECT_NEAR(transport.value, truth.kl,
                    4 * std::hypot(transport.standard_error, truth.standard_error));
      }
  // Not a rule that flags everything: at these small m the transport estimates of the laws near ρ₀
  // pass (and few kNN ones: their bias bound is above 0.1 nats here).
  EXPECT_GE(reliable, 12);
}

// The failures the flags exist for: the two-sample estimate of a law stretched far outside ρ₀
// (whitened variances 25, 1, 0.04) and the kNN estimates of a law concentrated near hyperplanes.
TEST(KlCalibration, KnownFailuresAreFlagged) {
  Workspace scratch;
  const cal::Result stretched = find(estimate({"anisotropic", 3, 1}, 1024, scratch), "two_sample");
  const double stretched_kl = cal::truth({"anisotropic", 3, 1}).kl;
  EXPECT_GT(std::fabs(stretched.value - stretched_kl), 1.0);
  EXPECT_FALSE(stretched.reliable);
  const cal::Result folded = find(estimate({"planar", 7, 1}, 1024, scratch), "knn");
  const double folded_kl = cal::truth({"planar", 7, 1}).kl;
  EXPECT_GT(std::fabs(folded.value - folded_kl), 0.3);
  EXPECT_FALSE(folded.reliable);
}

// The geometric estimate (local ellipsoids less their value at ρ₀) where the ball estimate fails:
// a law stretched and squeezed along rotated axes in D = 7 (KL 33.6), where kl_knn is 2 nats low,
// and near ρ₀, where both are close.
TEST(KlCalibration, EllipsoidEstimateFollowsStretchedLaws) {
  Workspace scratch;
  const index_t m = 2048;
  for (const auto& [family, time] :
       std::vector<std::pair<std::string, double>>{{"anisotropic", 1}, {"ou", 2}}) {
    const cal::Law law{family, 7, time};
    const double kl = cal::truth(law).kl;
    const cal::Sample s = cal::sample(law, m, 77);
    const Matrix x = rows_of(s.x, m, 7);
    const EllipsoidReference ref = ellipsoid_reference(ExecSpace(), m, 7, {5, 7, m}, scratch);
    const EllipsoidKl e = kl_knn_ellipsoid(ExecSpace(), x, ref, scratch);
    const double ball = kl_knn_standard_normal(x, 5).value;
    SCOPED_TRACE(family + ": KL " + std::to_string(kl) + ", ellipsoid " +
                 std::to_string(e.kl.value) + ", ball " + std::to_string(ball));
    EXPECT_NEAR(e.kl.value, kl, std::max(0.1, 0.03 * kl));
    if (family == "anisotropic") EXPECT_GT(std::fabs(ball - kl), 1.5);
  }
  EXPECT_THROW(kl_knn_ellipsoid_standard_normal(
                   ExecSpace(), rows_of(std::vector<double>(400, 0.5), 20, 20), 41, scratch),
               std::invalid_argument);
}

// Antithetic pairs (z, z with its first coordinate negated) bias the kNN estimate at t = 0 (a
// particle's twin is a neighbour no independent draw would be); one member of each pair is an
// i.i.d. sample again.
TEST(KlCalibration, OneMemberOfEachAntitheticPairRemovesThePairingBias) {
  Workspace scratch;
  const cal::Law law{"gaussian", 7, 0};
  const index_t m = 2048;
  const cal::Sample pairs = cal::sample(law, m, 5, true);
  const double all = kl_knn_standard_normal(rows_of(pairs.x, m, 7), 5).value;
  const double one = kl_knn_standard_normal(rows_of(pairs.x, m / 2, 7, 2), 5).value;
  const cal::Sample plain = cal::sample(law, m / 2, 6);
  const double iid = kl_knn_standard_normal(rows_of(plain.x, m / 2, 7), 5).value;
  EXPECT_GT(all, one + 0.05);
  EXPECT_NEAR(one, iid, 0.06);
}

// The tracers of the transported laws see the particles' own velocity field: at the particles
// themselves, tracer_velocity (written from Ψ's formulas on the host) gives the model's velocities
// and Laplacians ΔΨ, for both models, after a few steps (the ResNet's blocks stand still at t = 0).
TEST(KlCalibration, TracerVelocityIsTheModelsVelocity) {
  for (const auto& [file, overrides] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"two_layer_meanfield.toml", {"model.width=64", "data.dim=3"}},
           {"resnet_meanfield.toml",
            {"model.width=16", "model.head_width=32", "model.depth=3", "data.dim=2"}}}) {
    SCOPED_TRACE(file);
    const Config config =
        load_config(std::string(MFSIM_SOURCE_DIR) + "/simulations/configs/" + file, overrides);
    Problem p = build_problem(config, self_communicator(), true);
    ParticleState k1 = allocate_like(p.state, "k1");
    Integrator integrator(IntegratorKind::euler, p.state);
    const auto e = p.model->make_evaluation();
    const auto field = [&](const ExecSpace& space, const ParticleState& s, ParticleState& dsdt) {
      return p.model->evaluate(space, s, *e, dsdt);
    };
    for (int step = 0; step < 5; ++step) {
      field(ExecSpace(), p.state, k1);
      integrator.finish_step(p.state, k1, real(0.2), field);
    }
    field(ExecSpace(), p.state, k1);
    const cal::FieldData f = cal::field_data(*p.model, *e);
    for (const cal::TracedLaw& law : cal::traced_laws(config)) {
      SCOPED_TRACE(law.name);
      const GroupSpec& g = p.model->groups()[std::size_t(law.group)];
      cal::TracerRows rate;
      cal::tracer_velocity(config, law, f, cal::state_rows(p.state, g, law.group, law.slice), rate);
      const cal::TracerRows model = cal::state_rows(k1, g, law.group, law.slice);
      ASSERT_EQ(rate.size(), model.size());
      double scale = 0;
      for (double v : model) scale = std::max(scale, std::fabs(v));
      EXPECT_GT(scale, 1e-4);  // a field that moves them
      for (std::size_t i = 0; i < rate.size(); ++i) EXPECT_NEAR(rate[i], model[i], 1e-10 * scale);
    }
  }
}

// The transported tracer laws of real runs (a small grid: both models, two times each): the
// particles' transport estimate agrees with the tracers' KL within their sampling errors, and
// every estimate flagged reliable is within max(0.1 nats, 5 %) of it (benchmarks/kl_calibration
// --flows full: the whole table).
TEST(KlCalibration, TransportedFlowsReliableValuesAreWithinTheTolerance) {
  Workspace scratch;
  int reliable = 0;
  for (const auto& [file, overrides, times] :
       std::vector<std::tuple<std::string, std::vector<std::string>, std::vector<double>>>{
           {"two_layer_meanfield.toml", {"model.width=512", "data.dim=2", "flow.dt=0.1"}, {2, 6}},
           {"resnet_meanfield.toml",
            {"model.width=256", "model.head_width=256", "model.depth=2", "data.dim=2",
             "data.n_train=50"},
            {4, 12}}}) {
    const Config config =
        load_config(std::string(MFSIM_SOURCE_DIR) + "/simulations/configs/" + file, overrides);
    for (const cal::FlowLaw& law : cal::run_traced_flow(config, file, 4096, times, 3)) {
      SCOPED_TRACE(law.name + " t = " + std::to_string(law.time) +
                   ", KL = " + std::to_string(law.reference.kl));
      const std::vector<cal::Result> results =
          cal::estimate_all(law.particles, law.dim, 5, law.antithetic, 11, scratch);
      const cal::Result& transport = find(results, "transport");
      EXPECT_NEAR(transport.value, law.reference.kl,
                  4 * std::hypot(transport.standard_error, law.reference.standard_error));
      for (const cal::Result& r : results) {
        SCOPED_TRACE(r.estimator);
        if (r.reliable)
          EXPECT_NEAR(r.value, law.reference.kl,
                      kl_tolerance(law.reference.kl) + 3 * law.reference.standard_error);
        reliable += r.reliable;
      }
    }
  }
  // Not a rule that flags everything: at these widths (256 to 512 particles) the transport
  // estimates pass, the kNN ones are flagged (the full table has wider runs).
  EXPECT_GE(reliable, 6);
}

}  // namespace
}  // namespace mfsim

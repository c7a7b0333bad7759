// Mean-field Langevin dynamics and the regularised flows (flow/regularisation.hpp) against closed
// forms: the drift against finite differences of the objective, the Ornstein–Uhlenbeck law of a
// data-free model (MATH.md V6a) and the Euler–Maruyama weak order, the KL estimators and the Gibbs
// gap against Gaussian KLs, weight decay against a host step, and the noise's keying.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <iostream>

#include "helpers.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/diagnostics/free_energy_observer.hpp"
#include "mfsim/diagnostics/gibbs_gap.hpp"
#include "mfsim/diagnostics/kl_knn_observer.hpp"
#include "mfsim/diagnostics/kl_transport_observer.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/config.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;

// A host row for SmoothedPathWeight::at (host-device like the rows it stands for, so that nvcc
// does not warn about a host call in the host-device function; only ever called on the host).
struct HostRow {
  const double* p;
  KOKKOS_INLINE_FUNCTION double operator()(int c) const { return p[c]; }
};

double path_weight(const std::vector<double>& theta, double eps, int outputs = 1) {
  return SmoothedPathWeight::at(HostRow{theta.data()}, int(theta.size()), eps, outputs).value;
}

TEST(Regularisation, SmoothedPathWeightIsTheProductOfSmoothedAbsoluteValues) {
  const std::vector<double> theta{-0.7, 0.3, -1.2, 0.5};
  const double r = std::sqrt(0.09 + 1.44 + 0.25);
  for (double eps : {1e-1, 1e-3}) {
    const double expected =
        (std::sqrt(0.49 + eps * eps) - eps) * (std::sqrt(r * r + eps * eps) - eps);
    EXPECT_NEAR(path_weight(theta, eps), expected, 1e-15);
  }
  // ε → 0: |a| ‖w‖, approached from below by at most ε (|a| + ‖w‖).
  EXPECT_NEAR(path_weight(theta, 1e-12), 0.7 * r, 1e-11);
  const double gap = 0.7 * r - path_weight(theta, 1e-2);
  EXPECT_GT(gap, 0);
  EXPECT_LE(gap, 1e-2 * (0.7 + r));
}

TEST(Regularisation, SmoothedPathWeightOfSeveralOutputsUsesTheEuclideanNormOfA) {
  // a = (−0.7, 0.3, 0.5) ∈ R^3, w = (−1.2, 0.5): s_ε(|a|₂) s_ε(‖w‖).
  const std::vector<double> theta{-0.7, 0.3, 0.5, -1.2, 0.5};
  const double a = std::sqrt(0.49 + 0.09 + 0.25), r = std::sqrt(1.44 + 0.25), eps = 0.01;
  EXPECT_NEAR(path_weight(theta, eps, 3),
              (std::sqrt(a * a + eps * eps) - eps) * (std::sqrt(r * r + eps * eps) - eps), 1e-15);
}

// The drift −λ'θ − N ∇_θ (μ P_ε) and the log-density rate λ'D + μ ΔP_ε of every particle against
// central finite differences of the group's objective (λ'/2) Σ|θ|²/N + μ P_ε, for one output and
// for a ∈ R^3.
TEST(Regularisation, DriftAndRateAreGradientAndLaplacianOfTheObjective) {
  for (int outputs : {1, 3}) {
    const Dataset data = make_synthetic_dataset(test::small_data(3, 8, 2));
    TwoLayerSpec spec;
    spec.width = 6;
    spec.beta = 1.7;
    spec.outputs = outputs;
    const TwoLayerModel model(spec, data);
    const auto& groups = model.groups();
    ParticleState s = allocate_state(groups, true, "s");
    model.initialize(s, 3, false);
    ParticleState zero = allocate_state(groups, true, "zero");
    ParticleState out = allocate_state(groups, true, "out");
    Regularisation r;
    r.weight_decay = 0.3;
    r.path_norm_penalty = 0.45;
    r.path_norm_smoothing = 0.05;
    add_regulariser_drift(r, groups, s, zero, out);

    const std::vector<double> theta = test::host(s.theta[0]);
    const std::vector<double> drift = test::host(out.theta[0]);
    const std::vector<double> rate = test::host(out.log_density[0]);
    const int dim = groups[0].dim();
    const double penalty = r.path_norm_penalty * spec.beta;
    // One particle's share of N·objective: λ'|θ|²/2 + μβ s s.
    const auto f = [&](std::vector<double> row) {
      double norm2 = 0;
      for (double x : row) norm2 += x * x;
      return 0.5 * r.weight_decay * norm2 +
             penalty * path_weight(row, r.path_norm_smoothing, outputs);
    };
    const double h = 1e-4;
    for (int k = 0; k < spec.width; ++k) {
      const std::vector<double> row(theta.begin() + k * dim, theta.begin() + (k + 1) * dim);
      double laplacian = 0;
      for (int c = 0; c < dim; ++c) {
        std::vector<double> up = row, down = row;
        up[c] += h;
        down[c] -= h;
        const double gradient = (f(up) - f(down)) / (2 * h);
        EXPECT_NEAR(drift[k * dim + c], -gradient, test::tol(1e-8, 1e-5))
            << k << "," << c << " outputs " << outputs;
        laplacian += (f(up) - 2 * f(row) + f(down)) / (h * h);
      }
      EXPECT_NEAR(rate[k], laplacian, test::tol(1e-5, 1e-3)) << k << " outputs " << outputs;
    }
  }
}

// A model with β = 0 has Ψ ≡ 0: its particles are independent Ornstein–Uhlenbeck processes.
struct DataFreeFlow {
  Dataset data = make_synthetic_dataset(test::small_data(2, 4, 0));
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
  DataFreeFlow(index_t width, double shift, bool log_density = false) {
    spec.width = width;
    spec.beta = 0;
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), log_density, "s");
    model->initialize(state, 11, false);
    if (log_density) set_initial_log_density(state, model->groups());
    if (shift != 0) {
      std::vector<double> theta = test::host(state.theta[0]);
      for (double& x : theta) x += shift;
      test::set(state.theta[0], theta);
    }
  }
  int dim() const { return model->groups()[0].dim(); }
};

// Mean and variance of the particles' coordinates, averaged over coordinates.
struct Moments {
  double mean, variance;
};
Moments moments(ConstMatrix theta) {
  const std::vector<double> x = test::host(theta);
  const std::size_t n = theta.extent(0), d = theta.extent(1);
  double mean = 0, variance = 0;
  for (std::size_t c = 0; c < d; ++c) {
    double m = 0, v = 0;
    for (std::size_t k = 0; k < n; ++k) m += x[k * d + c];
    m /= double(n);
    for (std::size_t k = 0; k < n; ++k) v += (x[k * d + c] - m) * (x[k * d + c] - m);
    mean += m;
    variance += v / double(n - 1);
  }
  return {mean / double(d), variance / double(d)};
}

RunSettings ou_settings(double dt, index_t steps, double temperature, double decay) {
  RunSettings r;
  r.dt = dt;
  r.steps = steps;
  r.observe_every = 1 << 30;  // the first and last point of each run_flow
  r.snapshot_every = 1 << 30;
  r.regularisation.temperature = temperature;
  r.regularisation.weight_decay = decay;
  r.regularisation.noise_seed = 5;
  return r;
}

// Runs `steps` more steps from where the last run stopped (the step count and the time go on).
void run_on(DataFreeFlow& f, RunSettings& r, index_t steps, std::vector<Observer*> observers,
            RunOutput& out) {
  r.steps = steps;
  const RunSummary s = run_flow(*f.model, f.state, r, observers, out);
  r.first_step = s.step;
  r.start_time = s.time;
}

// MATH.md V6a at m = 10⁵: m_t = e^{−λ't} m₀, S_t = e^{−2λ't} S₀ + (λ/λ')(1 − e^{−2λ't}), at three
// times, and the Euler–Maruyama chain's own closed form, each within 4 standard errors.
TEST(Langevin, OrnsteinUhlenbeckMomentsMatchTheClosedForm) {
  const double lambda = 0.5, decay = 1, dt = 0.01, m0 = 1, s0 = 1;
  DataFreeFlow f(100000, m0);
  RunSettings r = ou_settings(dt, 0, lambda, decay);
  test::RecordingOutput out;
  const double count = double(f.spec.width) * f.dim();
  for (int segment = 1; segment <= 3; ++segment) {
    run_on(f, r, 50, {}, out);
    const double t = r.start_time, k = double(r.first_step);
    const Moments got = moments(f.state.theta[0]);
    const double mean = std::exp(-decay * t) * m0;
    const double variance =
        std::exp(-2 * decay * t) * s0 + lambda / decay * (1 - std::exp(-2 * decay * t));
    const double q = 1 - decay * dt;  // the Euler–Maruyama chain: θ ← q θ + sqrt(2λ dt) ξ
    const double chain_mean = std::pow(q, k) * m0;
    const double chain_variance =
        std::pow(q, 2 * k) * s0 + 2 * lambda * dt * (1 - std::pow(q, 2 * k)) / (1 - q * q);
    const double se_mean = std::sqrt(variance / count);
    const double se_variance = variance * std::sqrt(2 / count);
    EXPECT_NEAR(got.mean, chain_mean, 4 * se_mean) << "t = " << t;
    EXPECT_NEAR(got.variance, chain_variance, 4 * se_variance) << "t = " << t;
    // The continuous law, with the chain's O(dt) weak error on top.
    EXPECT_NEAR(got.mean, mean, 4 * se_mean + std::fabs(chain_mean - mean)) << "t = " << t;
    EXPECT_NEAR(got.variance, variance, 4 * se_variance + std::fabs(chain_variance - variance))
        << "t = " << t;
    EXPECT_GT(std::fabs(chain_variance - variance), 0);
    std::cout << "OU t = " << t << ": mean " << got.mean << " (closed form " << mean << ", chain "
              << chain_mean << ", s.e. " << se_mean << "), variance " << got.variance
              << " (closed form " << variance << ", chain " << chain_variance << ", s.e. "
              << se_variance << ")\n";
  }
}

// The weak error at t = 1 (mean and variance against the continuous law) for dt = 0.2, 0.1, 0.05
// falls at order 1: the fitted slope is within [0.8, 1.25] (it would be 0 without the noise's
// dt-scaling and 2 for a second-order scheme).
TEST(Langevin, EulerMaruyamaWeakErrorIsFirstOrder) {
  const double lambda = 0.5, decay = 1;
  std::vector<double> errors;
  const std::array<double, 3> steps{0.2, 0.1, 0.05};
  for (double dt : steps) {
    DataFreeFlow f(100000, 1.0);
    RunSettings r = ou_settings(dt, 0, lambda, decay);
    test::RecordingOutput out;
    run_on(f, r, index_t(std::lround(1 / dt)), {}, out);
    const Moments got = moments(f.state.theta[0]);
    const double mean = std::exp(-1.0);
    const double variance = std::exp(-2.0) + lambda / decay * (1 - std::exp(-2.0));
    errors.push_back(std::fabs(got.mean - mean) + std::fabs(got.variance - variance));
  }
  const double slope = std::log(errors[0] / errors[2]) / std::log(steps[0] / steps[2]);
  std::cout << "weak errors at dt = 0.2, 0.1, 0.05: " << errors[0] << " " << errors[1] << " "
            << errors[2] << "; order " << slope << "\n";
  EXPECT_GT(slope, 0.8) << errors[0] << " " << errors[1] << " " << errors[2];
  EXPECT_LT(slope, 1.25) << errors[0] << " " << errors[1] << " " << errors[2];
  EXPECT_GT(errors[0], errors[1]);
  EXPECT_GT(errors[1], errors[2]);
}

// KL(N(m, S I_D) || N(0, s I_D)).
double gaussian_kl(int dim, double mean, double variance, double reference_variance) {
  const double ratio = variance / reference_variance;
  return 0.5 * dim * (ratio + mean * mean / reference_variance - 1 - std::log(ratio));
}

// Along the OU path from ρ₀ = N(0, I) towards N(0, λ/λ' I), at m = 10⁴ in D = 4: the kNN KL to ρ₀
// and the Gibbs gap, whose proximal Gibbs measure is N(0, λ/λ' I) exactly when Ψ ≡ 0, match the
// Gaussian closed forms (at the particles' own moments, so that only the estimators are tested)
// within 0.06 nats, the Kozachenko–Leonenko bias at this N and D (kl_knn_bias_t0 = 0.04 here),
// and within 0.02 once that measured bias is taken off; the free energy recomposes from its terms.
TEST(Langevin, KnnKlAndGibbsGapFollowTheGaussianClosedForms) {
  const double lambda = 0.25, decay = 1;
  DataFreeFlow f(10000, 0.0);
  const int dim = f.dim();
  RunSettings r = ou_settings(0.01, 0, lambda, decay);
  const index_t ends_only = 1 << 30;  // observe at the first and last point of each run
  KlKnnObserver kl(*f.model, f.state, KnnSettings{5, false, 1, 10}, ends_only);
  auto gap = std::make_unique<GibbsGap>(*f.model, *f.model, r.regularisation, 65536, 3);
  FreeEnergyObserver free_energy(*f.model, r.regularisation, KnnSettings{5}, ends_only,
                                 std::move(gap));
  LossObserver loss;
  test::RecordingOutput out;
  for (int segment = 0; segment < 3; ++segment) {
    run_on(f, r, 50, {&loss, &kl, &free_energy}, out);
    const Moments got = moments(f.state.theta[0]);
    const double t = out["kl_knn"].time.back();
    ASSERT_NEAR(t, r.start_time, 1e-12);
    // The Kozachenko–Leonenko entropy's bias at this N and D is the same along the path (the
    // laws are Gaussians of similar shape): kl_knn_bias_t0 measures it at t = 0, and the
    // corrected estimates agree with the closed forms to 0.02 nats.
    const double bias = out["kl_knn_bias_t0"].last();
    const double kl = gaussian_kl(dim, got.mean, got.variance, 1);
    EXPECT_NEAR(out["kl_knn"].last(), kl, 0.06) << "t = " << t;
    EXPECT_NEAR(out["kl_knn_corrected"].last(), kl, 0.02) << "t = " << t;
    const double gibbs = gaussian_kl(dim, got.mean, got.variance, lambda / decay);
    EXPECT_NEAR(out["gibbs_gap"].last(), gibbs, 0.06) << "t = " << t;
    EXPECT_NEAR(out["gibbs_gap"].last() - bias, gibbs, 0.02) << "t = " << t;
    const double entropy = 0.5 * dim * std::log(2 * M_PI * M_E * got.variance);
    EXPECT_NEAR(out["entropy_knn"].last(), entropy, 0.06) << "t = " << t;
    EXPECT_NEAR(out["entropy_knn"].last() + bias, entropy, 0.02) << "t = " << t;
    const double terms = out["loss"].last() + out["weight_decay_term"].last() +
                         out["path_norm_penalty_term"].last() + out["entropy_term"].last();
    EXPECT_DOUBLE_EQ(out["free_energy"].last(), terms);
    EXPECT_NEAR(out["entropy_term"].last(), -lambda * out["entropy_knn"].last(), 1e-15);
    // The free energy and the Gibbs gap carry the entropy's error bar and flag (Ψ ≡ 0 here: every
    // importance weight of log Z is 1, its error 0).
    const double se = out["entropy_knn_stderr"].last();
    EXPECT_GT(se, 0.0);
    EXPECT_DOUBLE_EQ(out["free_energy_stderr"].last(), lambda * se);
    EXPECT_DOUBLE_EQ(out["gibbs_gap_stderr"].last(), se);
    EXPECT_EQ(out["free_energy_reliable"].last(), out["entropy_knn_reliable"].last());
    EXPECT_EQ(out["gibbs_gap_reliable"].last(), out["entropy_knn_reliable"].last());
  }
  EXPECT_LT(std::fabs(out["kl_knn_bias_t0"].last()), 0.06);
}

// Weight decay alone (λ = 0) shrinks θ by the drift: the transport KL of the linear flow
// v = −λ'θ from N(0, I), Σ_t = e^{−2λ't} I, is (D/2)(e^{−2λ't} − 1 + 2λ't), matched by (K1) to
// Monte-Carlo accuracy (the log-density rate is the drift's −div = λ'D).
TEST(Langevin, TransportKlOfWeightDecayMatchesTheLinearFlow) {
  const double decay = 0.8;
  DataFreeFlow f(10000, 0.0, true);
  const int dim = f.dim();
  RunSettings r = ou_settings(0.01, 0, 0, decay);
  r.integrator = IntegratorKind::rk4;
  KlTransportObserver kl(*f.model, 1, false);
  test::RecordingOutput out;
  run_on(f, r, 100, {&kl}, out);
  const double t = r.start_time;
  const double expected = 0.5 * dim * (std::exp(-2 * decay * t) - 1 + 2 * decay * t);
  EXPECT_NEAR(out["kl_transport"].last(), expected, 0.03);
}

// `steps` Euler steps (dt = 0.05) of `model` from seed 4 under `reg`, observing the loss, the
// path norms and the free energy every 100 steps.
test::RecordingOutput observed_run(const TwoLayerModel& model, const Regularisation& reg,
                                   index_t steps) {
  ParticleState state = allocate_state(model.groups(), false, "s");
  model.initialize(state, 4, false);
  RunSettings settings;
  settings.dt = 0.05;
  settings.steps = steps;
  settings.observe_every = 100;
  settings.regularisation = reg;
  LossObserver loss;
  PathNormObserver norms(100);
  FreeEnergyObserver free_energy(model, reg, KnnSettings{5}, 100);
  test::RecordingOutput out;
  run_flow(model, state, settings, {&loss, &norms, &free_energy}, out);
  return out;
}

// One Euler step with weight decay equals the host reference θ + dt (v − λ'θ), v the model's
// velocity; over a longer run weight decay lowers the path norm and the loss settles above the
// unregularised one.
TEST(Langevin, WeightDecayStepMatchesTheHostReferenceAndShrinksThePathNorm) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 20, 5));
  TwoLayerSpec spec;
  spec.width = 64;
  const TwoLayerModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 4, false);
  ParticleState v = allocate_like(s, "v");
  test::evaluate(model, s, v);
  const std::vector<double> theta = test::host(s.theta[0]), vel = test::host(v.theta[0]);
  RunSettings r;
  r.dt = 0.05;
  r.steps = 1;
  r.regularisation.weight_decay = 0.4;
  test::RecordingOutput out;
  run_flow(model, s, r, {}, out);
  const std::vector<double> next = test::host(s.theta[0]);
  for (std::size_t i = 0; i < theta.size(); ++i) {
    const double expected = theta[i] + real(r.dt) * (vel[i] - 0.4 * theta[i]);
    EXPECT_NEAR(next[i], expected, test::tol(1e-14, 1e-6)) << i;
  }

  std::map<double, test::RecordingOutput> runs;
  for (double decay : {0.0, 0.2}) {
    Regularisation reg;
    reg.weight_decay = decay;
    runs[decay] = observed_run(model, reg, 4000);
  }
  const auto& plain = runs[0.0];
  const auto& decayed = runs[0.2];
  EXPECT_LT(decayed["path_norm_l2"].last(), 0.8 * plain["path_norm_l2"].last());
  EXPECT_GT(decayed["loss"].last(), plain["loss"].last());
  const auto& loss = decayed["loss"].value;
  const double settled = loss[loss.size() - 1][0], before = loss[loss.size() - 3][0];
  EXPECT_LT(std::fabs(settled - before), 1e-3 * settled);
}

// The path-norm penalty lowers the path norm against the same run without it, and its term
// is μ P_ε ≈ μ path_norm_l2.
TEST(Langevin, PathNormPenaltyLowersThePathNorm) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 20, 5));
  TwoLayerSpec spec;
  spec.width = 64;
  const TwoLayerModel model(spec, data);
  std::map<double, test::RecordingOutput> runs;
  for (double mu : {0.0, 0.1}) {
    Regularisation reg;
    reg.path_norm_penalty = mu;
    reg.path_norm_smoothing = 1e-4;
    runs[mu] = observed_run(model, reg, 1000);
  }
  const auto& penalised = runs[0.1];
  EXPECT_LT(penalised["path_norm_l2"].last(), 0.8 * runs[0.0]["path_norm_l2"].last());
  EXPECT_NEAR(penalised["path_norm_penalty_term"].last(), 0.1 * penalised["path_norm_l2"].last(),
              0.1 * 1e-4 * 10);
}

// The noise is a function of (seed, step, particle, coordinate): the same run twice is bitwise
// equal, a run split in two at step 10 (a restart) equals the run in one go, and another seed
// gives other noise.
TEST(Langevin, NoiseIsKeyedByStepAndReproducible) {
  const auto run = [](std::uint64_t seed, std::vector<index_t> segments) {
    DataFreeFlow f(256, 0.0);
    RunSettings r = ou_settings(0.01, 0, 0.3, 0.5);
    r.regularisation.noise_seed = seed;
    test::RecordingOutput out;
    for (index_t steps : segments) run_on(f, r, steps, {}, out);
    return test::host(f.state.theta[0]);
  };
  const std::vector<double> once = run(5, {20});
  EXPECT_EQ(once, run(5, {20}));
  EXPECT_EQ(once, run(5, {10, 10}));
  EXPECT_GT(test::max_abs_diff(once, run(6, {20})), 0.01);
}

// With data (model A, d = 1): the free energy F_λ falls along the noisy flow up to the entropy
// estimator's noise, and the Gibbs gap, large at the start, falls by an order of magnitude.
TEST(Langevin, FreeEnergyFallsAndGibbsGapClosesWithData) {
  const Dataset data = make_synthetic_dataset(test::small_data(1, 10, 0));
  TwoLayerSpec spec;
  spec.width = 4000;
  const TwoLayerModel model(spec, data);
  ParticleState state = allocate_state(model.groups(), false, "s");
  model.initialize(state, 4, false);
  RunSettings r;
  r.dt = 0.02;
  r.steps = 1500;
  r.observe_every = 150;
  r.regularisation.temperature = 0.02;
  r.regularisation.weight_decay = 0.5;
  auto gap = std::make_unique<GibbsGap>(model, model, r.regularisation, 65536, 3);
  FreeEnergyObserver free_energy(model, r.regularisation, KnnSettings{5}, 150, std::move(gap));
  LossObserver loss;
  test::RecordingOutput out;
  run_flow(model, state, r, {&loss, &free_energy}, out);
  const auto& f = out["free_energy"].value;
  for (std::size_t i = 1; i < f.size(); ++i) EXPECT_LT(f[i][0], f[i - 1][0] + 0.01) << i;
  EXPECT_LT(f.back()[0], f.front()[0] - 0.1);
  const auto& gap_series = out["gibbs_gap"].value;
  EXPECT_GT(gap_series.front()[0], 0.3);
  EXPECT_LT(gap_series.back()[0], 0.1 * gap_series.front()[0]);
}

// A potential Ψ(θ) = b·θ, under which the Gibbs measure's log-partition function is known:
// ∫ exp(−(λ'|θ|²/2 + b·θ)/λ) dθ = (2πλ/λ')^{D/2} exp(|b|²/(2λλ')).
class LinearPotential final : public PotentialModel {
 public:
  explicit LinearPotential(std::vector<double> b) : b_(std::move(b)) {}
  void potential(const ExecSpace& /*space*/, const Evaluation& /*e*/, ConstMatrix points,
                 Vector psi, Workspace& /*scratch*/) const override {
    const auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), points);
    auto out = Kokkos::create_mirror_view(psi);
    for (std::size_t j = 0; j < x.extent(0); ++j) {
      double v = 0;
      for (std::size_t c = 0; c < b_.size(); ++c) v += b_[c] * x(j, c);
      out(j) = real(v);
    }
    Kokkos::deep_copy(psi, out);
  }
  double dot(const double* theta) const {
    double v = 0;
    for (std::size_t c = 0; c < b_.size(); ++c) v += b_[c] * theta[c];
    return v;
  }

 private:
  std::vector<double> b_;
};

// The Gibbs gap's log Z by importance sampling against the closed form of a linear potential:
// with the entropy passed as 0, gap − E_ρ[U]/λ is log Ẑ. Over 40 sets of S = 2000 draws, each log Ẑ
// is within 4 of its own standard errors of the exact value, and the standard error the gap
// reports (the delta method's) matches the spread of log Ẑ over the sets within 25 %.
TEST(Langevin, GibbsGapLogPartitionErrorMatchesAKnownPartitionFunction) {
  const double lambda = 0.2, decay = 1;
  DataFreeFlow f(200, 0.0);
  const int dim = f.dim();
  const LinearPotential psi(std::vector<double>(std::size_t(dim), 0.25));
  Regularisation r;
  r.temperature = lambda;
  r.weight_decay = decay;
  // E_ρ[U] over the particles, on the host.
  const std::vector<double> theta = test::host(f.state.theta[0]);
  double mean_u = 0;
  for (std::size_t k = 0; k < theta.size() / std::size_t(dim); ++k) {
    const double* t = &theta[k * std::size_t(dim)];
    double norm2 = 0;
    for (int c = 0; c < dim; ++c) norm2 += t[c] * t[c];
    mean_u += psi.dot(t) + 0.5 * decay * norm2;
  }
  mean_u /= double(theta.size() / std::size_t(dim));
  const double b2 = 0.25 * 0.25 * dim;
  const double exact = 0.5 * dim * std::log(2 * M_PI * lambda / decay) + b2 / (2 * lambda * decay);
  const auto e = f.model->make_evaluation();
  ParticleState v = allocate_like(f.state, "v");
  const FlowPoint p{0, 0.0, 0.0, f.state, v, 0.0, *e, *f.model};
  std::vector<double> log_z, errors;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    GibbsGap gap(*f.model, psi, r, 2000, seed);
    const Estimate g = gap(p, 0.0, lambda);
    log_z.push_back(g.value - mean_u / lambda);
    errors.push_back(g.standard_error);
    EXPECT_NEAR(log_z.back(), exact, 4 * g.standard_error) << "seed " << seed;
  }
  double mean = 0, spread = 0, reported = 0;
  for (double z : log_z) mean += z / double(log_z.size());
  for (double z : log_z) spread += (z - mean) * (z - mean) / double(log_z.size() - 1);
  for (double se : errors) reported += se / double(errors.size());
  spread = std::sqrt(spread);
  std::cout << "log Z: exact " << exact << ", mean over sets " << mean << ", spread " << spread
            << ", reported standard error " << reported << "\n";
  EXPECT_GT(reported, 0.01);  // a case where the importance sampling is noisy
  EXPECT_NEAR(reported / spread, 1.0, 0.25);
}

// The Gibbs gap with the path-norm penalty at c outputs, U = Ψ + λ'|θ|²/2 + μβ s_ε(|a|₂) s_ε(|w|)
// (MATH.md §2.4, §1.5), against log Z by quadrature: with θ = (a ∈ R^c, w ∈ R) and Ψ = b w, U
// depends on a through ρ = |a|₂ only, so Z = ∫∫ S_c(ρ) exp(−U/λ) dρ dw with the sphere's measure
// S_1 = 2, S_2 = 2πρ, S_3 = 4πρ² (composite Simpson). With the entropy passed as 0 the gap is
// E_ρ[U]/λ + log Ẑ, E_ρ[U] the particles' mean recomputed on the host; the importance-sampling
// estimate is within 4 of its standard errors of the quadrature for c = 1, 2, 3.
TEST(Langevin, GibbsGapWithThePathNormPenaltyUsesTheEuclideanNormOfA) {
  const double lambda = 0.2, decay = 1, mu = 0.5, beta = 1.5, eps = 0.1, b = 0.3;
  for (int c = 1; c <= 3; ++c) {
    Dataset data;
    data.x_train = Matrix("x", 4, 1);
    test::set(data.x_train, {0.1, -0.4, 0.7, 1.2});
    data.targets = c;
    data.y_train = Vector("y", 4 * c);
    data.x_test = Matrix("x_test", 0, 1);
    data.y_test = Vector("y_test", 0);
    TwoLayerSpec spec;
    spec.width = 500;
    spec.beta = beta;
    spec.bias = false;
    spec.outputs = c;
    const TwoLayerModel model(spec, data);
    ParticleState state = allocate_state(model.groups(), false, "s");
    model.initialize(state, 7, false);
    const int dim = model.groups()[0].dim();
    ASSERT_EQ(dim, c + 1);
    std::vector<double> slope(std::size_t(dim), 0.0);
    slope.back() = b;  // Ψ = b w
    const LinearPotential psi(slope);
    Regularisation r;
    r.temperature = lambda;
    r.weight_decay = decay;
    r.path_norm_penalty = mu;
    r.path_norm_smoothing = eps;
    auto s_eps = [eps](double x) {
      return std::sqrt(x * x + eps * eps) - eps;
    };
    auto u = [&](double rho, double w) {
      return b * w + 0.5 * decay * (rho * rho + w * w) + mu * beta * s_eps(rho) * s_eps(w);
    };
    // E_ρ[U] on the host.
    const std::vector<double> theta = test::host(state.theta[0]);
    const std::size_t m = theta.size() / std::size_t(dim);
    double mean_u = 0;
    for (std::size_t k = 0; k < m; ++k) {
      double a2 = 0;
      for (int j = 0; j < c; ++j) a2 += theta[k * dim + j] * theta[k * dim + j];
      mean_u += u(std::sqrt(a2), theta[k * dim + c]) / double(m);
    }
    // log Z by Simpson's rule over ρ ∈ [0, 12σ], w ∈ [−12σ, 12σ] − b/λ', σ² = λ/λ'.
    const double sigma = std::sqrt(lambda / decay), centre = -b / decay;
    const int points = 4000;  // intervals, even
    const double h_rho = 12 * sigma / points, h_w = 24 * sigma / points;
    auto simpson = [](int i, int last) {
      return i == 0 || i == last ? 1.0 : i % 2 ? 4.0 : 2.0;
    };
    double z = 0;
    for (int i = 0; i <= points; ++i) {
      const double rho = i * h_rho;
      const double sphere = c == 1 ? 2.0 : c == 2 ? 2 * M_PI * rho : 4 * M_PI * rho * rho;
      double inner = 0;
      for (int l = 0; l <= points; ++l) {
        const double w = centre - 12 * sigma + l * h_w;
        inner += simpson(l, points) * std::exp(-u(rho, w) / lambda);
      }
      z += simpson(i, points) * sphere * inner * h_w / 3;
    }
    const double exact = mean_u / lambda + std::log(z * h_rho / 3);
    const auto e = model.make_evaluation();
    ParticleState v = allocate_like(state, "v");
    const FlowPoint p{0, 0.0, 0.0, state, v, 0.0, *e, model};
    GibbsGap gap(model, psi, r, 1 << 16, 3);
    const Estimate g = gap(p, 0.0, lambda);
    std::cout << "c = " << c << ": gap " << g.value << " +- " << g.standard_error << ", quadrature "
              << exact << "\n";
    EXPECT_GT(g.standard_error, 0.0);
    EXPECT_LT(g.standard_error, 0.01);
    EXPECT_NEAR(g.value, exact, 4 * g.standard_error) << "c = " << c;
  }
}

// With antithetic pairs the entropy is estimated on one member of each pair, as the kNN KL: the
// entropy of a state in pairs equals the one of the same state's even rows without pairs.
TEST(Langevin, FreeEnergyEntropyUsesOneMemberOfEachAntitheticPair) {
  const Dataset data = make_synthetic_dataset(test::small_data(5, 10, 0));  // D = 7
  TwoLayerSpec spec;
  spec.width = 4096;
  const TwoLayerModel model(spec, data);
  ParticleState pairs = allocate_state(model.groups(), false, "pairs");
  model.initialize(pairs, 4, true);
  Regularisation r;
  r.temperature = 0.1;
  r.weight_decay = 1;
  const auto entropy = [&](const TwoLayerModel& m, const ParticleState& s, bool antithetic) {
    FreeEnergyObserver observer(m, r, KnnSettings{5, antithetic}, 1);
    test::RecordingOutput out;
    const auto e = m.make_evaluation();
    ParticleState v = allocate_like(s, "v");
    const real loss = m.evaluate(s, *e, v);
    observer.observe({0, 0.0, 0.0, s, v, loss, *e, m}, out);
    return out["entropy_knn"].last();
  };
  // The even rows alone, as a model of half the width.
  TwoLayerSpec half_spec = spec;
  half_spec.width = spec.width / 2;
  const TwoLayerModel half(half_spec, data);
  ParticleState even = allocate_state(half.groups(), false, "even");
  const std::vector<double> all = test::host(pairs.theta[0]);
  const std::size_t dim = std::size_t(model.groups()[0].dim());
  std::vector<double> rows;
  for (std::size_t i = 0; i < all.size() / dim; i += 2)
    rows.insert(rows.end(), all.begin() + std::ptrdiff_t(i * dim),
                all.begin() + std::ptrdiff_t((i + 1) * dim));
  test::set(even.theta[0], rows);
  const double one_of_each = entropy(model, pairs, true);
  EXPECT_DOUBLE_EQ(one_of_each, entropy(half, even, false));
  // Every point, twins included: the pairing biases the estimate (the antithetic coordinate a is
  // mirrored, so a twin is much nearer than an independent draw would be).
  EXPECT_GT(std::fabs(entropy(model, pairs, false) - one_of_each), 0.05);
}

using test::config_error;

TEST(Langevin, ConfigRefusesWhatTheNoiseCannotDo) {
  EXPECT_THAT(config_error("[flow]\ntemperature = -1\n"), HasSubstr("flow.temperature"));
  EXPECT_THAT(config_error("[flow]\nweight_decay = nan\n"), HasSubstr("flow.weight_decay"));
  EXPECT_THAT(config_error("[flow]\npath_norm_penalty = -0.1\n"),
              HasSubstr("flow.path_norm_penalty"));
  EXPECT_THAT(config_error("[flow]\npath_norm_smoothing = 0\n"),
              HasSubstr("flow.path_norm_smoothing"));
  EXPECT_THAT(config_error("[flow]\ntemperature_schedule = \"cosine\"\n"),
              HasSubstr("flow.temperature_schedule"));
  EXPECT_THAT(config_error("[flow]\ntemperature = 0.1\nintegrator = \"rk4\"\n"),
              HasSubstr("flow.integrator: must be \"euler\" (Euler–Maruyama)"));
  EXPECT_THAT(config_error("[flow]\ntemperature = 0.1\n[diagnostics]\nkl = [\"transport\"]\n"),
              HasSubstr("diagnostics.kl: \"transport\" is exact only without noise"));
  // Deterministic regularisers take any integrator and the transport KL.
  EXPECT_EQ(config_error("[flow]\nweight_decay = 0.1\npath_norm_penalty = 0.1\nintegrator = "
                         "\"rk4\"\n[diagnostics]\nkl = [\"transport\"]\n"),
            "accepted");
  const Config c = parse_config("[init]\nseed = 9\n[flow]\ntemperature = 0.1\n");
  EXPECT_EQ(c.flow.regularisation.noise_seed, 9u);
}

TEST(Langevin, TemperatureSchedules) {
  Regularisation r;
  r.temperature = 0.3;
  EXPECT_DOUBLE_EQ(r.temperature_at(5), 0.3);
  r.schedule = TemperatureSchedule::logarithmic;
  EXPECT_DOUBLE_EQ(r.temperature_at(0), 0.3);
  EXPECT_DOUBLE_EQ(r.temperature_at(2), 0.3 / std::log(M_E + 2));
  r.schedule = TemperatureSchedule::exponential;
  r.temperature_rate = 0.5;
  EXPECT_DOUBLE_EQ(r.temperature_at(2), 0.3 * std::exp(-1.0));
}

}  // namespace
}  // namespace mfsim

// Model A against independent references: finite differences of the loss and of the potential,
// the energy identity (A11), antithetic zero output, ReLU balancedness, split-invariant init; its
// tiled kernels alone against the formulas on every execution space of the build
// (TwoLayerKernels/<backend>).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "detail/two_layer_kernels.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

struct Problem {
  Dataset data;
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
};

Problem make_problem(ActivationKind act, index_t width = 6, bool bias = true,
                     bool antithetic = false, bool log_density = true,
                     LossKind loss = LossKind::square) {
  Problem p;
  SyntheticDataSpec data = test::small_data(3, 9, 4);
  data.sign_labels = needs_signed_labels(loss);
  p.data = make_synthetic_dataset(data);
  p.spec.loss = loss;
  p.spec.width = width;
  p.spec.beta = 1.7;
  p.spec.bias = bias;
  p.spec.activation = {act, real(1.5)};
  p.spec.std_b = 0.5;
  p.model = std::make_unique<TwoLayerModel>(p.spec, p.data);
  p.state = allocate_state(p.model->groups(), log_density, "test");
  p.model->initialize(p.state, 11, antithetic);
  if (log_density) set_initial_log_density(p.state, p.model->groups());
  return p;
}

// Host reference of the network, written from MATH.md (A1) without the kernels.
struct HostNetwork {
  std::vector<double> x, y;
  int n, d;
  double beta;
  bool bias;
  Activation act;
  LossKind loss_kind;

  explicit HostNetwork(const Problem& p)
      : x(test::host(p.data.x_train)),
        y(test::host(p.data.y_train)),
        n(int(p.data.n_train())),
        d(p.data.dim()),
        beta(p.spec.beta),
        bias(p.spec.bias),
        act(p.spec.activation),
        loss_kind(p.spec.loss) {}

  int D() const { return d + 1 + (bias ? 1 : 0); }
  double pre(const std::vector<double>& th, int k, int i) const {
    double z = bias ? th[k * D() + d + 1] : 0;
    for (int c = 0; c < d; ++c) z += th[k * D() + 1 + c] * x[i * d + c];
    return z;
  }
  // σ in double from the C library (MATH.md §1.3), whatever the build's precision: the finite
  // differences below are then those of a double-precision function in both builds.
  double sigma(double z) const {
    switch (act.kind) {
      case ActivationKind::relu:
        return z > 0 ? z : 0;
      case ActivationKind::tanh:
        return std::tanh(z);
      case ActivationKind::sigmoid:
        return 1 / (1 + std::exp(-z));
      case ActivationKind::softplus: {
        const double k = act.kappa, kz = k * z;
        return (std::fmax(kz, 0) + std::log1p(std::exp(-std::fabs(kz)))) / k;
      }
      case ActivationKind::erf:
        return std::erf(z);
      case ActivationKind::gelu:
        break;
    }
    return z * 0.5 * std::erfc(-z / std::sqrt(2.0));
  }
  std::vector<double> residual(const std::vector<double>& th) const {
    const int m = int(th.size()) / D();
    std::vector<double> r(n);
    for (int i = 0; i < n; ++i) {
      double f = 0;
      for (int k = 0; k < m; ++k) f += th[k * D()] * sigma(pre(th, k, i));
      r[i] = beta / m * f - y[i];
    }
    return r;
  }
  // The empirical loss: |f − y|²/(2n), or (1/n) Σ log(1 + e^{−y f}) (computed naively: the test
  // outputs are O(1)).
  double loss(const std::vector<double>& th) const {
    double s = 0;
    const std::vector<double> r = residual(th);
    for (int i = 0; i < n; ++i)
      s += loss_kind == LossKind::square ? 0.5 * r[i] * r[i]
                                         : std::log(1 + std::exp(-y[i] * (r[i] + y[i])));
    return s / n;
  }
  // Ψ(θ) = (β/n) Σ_i r_i a σ(w·x_i + b) for particle row k of th, with the residual r fixed.
  double potential(const std::vector<double>& th, int k, const std::vector<double>& r) const {
    double s = 0;
    for (int i = 0; i < n; ++i) s += r[i] * th[k * D()] * sigma(pre(th, k, i));
    return beta / n * s;
  }
};

class TwoLayerActivation : public ::testing::TestWithParam<std::string> {};

TEST_P(TwoLayerActivation, VelocityIsMinusWidthTimesLossGradient) {
  const ActivationKind act = parse_activation(GetParam());
  for (const auto& [bias, kind] : {std::pair{true, LossKind::square},
                                   {false, LossKind::square},
                                   {true, LossKind::logistic},
                                   {false, LossKind::logistic}}) {
    Problem p = make_problem(act, 6, bias, false, true, kind);
    ParticleState v = allocate_like(p.state, "v");
    const double loss = test::evaluate(*p.model, p.state, v)->loss;
    const HostNetwork net(p);
    const auto th = test::host(p.state.theta[0]), vel = test::host(v.theta[0]);
    EXPECT_NEAR(loss, net.loss(th), test::tol(1e-13, 1e-5));
    const double h = 1e-5;
    const int m = 6;
    std::vector<double> fd(th.size());
    for (std::size_t j = 0; j < th.size(); ++j) {
      auto plus = th, minus = th;
      plus[j] += h, minus[j] -= h;
      fd[j] = -m * (net.loss(plus) - net.loss(minus)) / (2 * h);
    }
    const double scale = test::max_abs(fd);
    EXPECT_LT(test::max_abs_diff(vel, fd), test::tol(1e-7, 1e-4) * scale)
        << GetParam() << " bias=" << bias << " loss=" << loss_name(kind);
  }
}

TEST_P(TwoLayerActivation, LaplacianIsTraceOfPotentialHessian) {
  const ActivationKind act = parse_activation(GetParam());
  if (!is_twice_differentiable(act)) GTEST_SKIP() << "σ'' is a Dirac mass";
  Problem p = make_problem(act);
  ParticleState v = allocate_like(p.state, "v");
  const auto e = test::evaluate(*p.model, p.state, v);
  const HostNetwork net(p);
  const auto th = test::host(p.state.theta[0]), lap = test::host(v.log_density[0]);
  const auto r = test::host(e->residual);
  const double h = 1e-4;
  for (int k = 0; k < 6; ++k) {
    double fd = 0;
    for (int j = 0; j < net.D(); ++j) {
      auto plus = th, minus = th;
      plus[k * net.D() + j] += h, minus[k * net.D() + j] -= h;
      fd += (net.potential(plus, k, r) - 2 * net.potential(th, k, r) + net.potential(minus, k, r)) /
            (h * h);
    }
    EXPECT_NEAR(lap[k], fd, test::tol(1e-5, 1e-4) * (1 + std::fabs(fd)))
        << GetParam() << " particle " << k;
  }
}

TEST_P(TwoLayerActivation, EnergyIdentity) {
  // dL/dt along the flow = ∇L·v = −(1/m) Σ_k |v_k|² (A11), checked by a central difference.
  Problem p = make_problem(parse_activation(GetParam()), 8);
  ParticleState v = allocate_like(p.state, "v");
  test::evaluate(*p.model, p.state, v);
  const HostNetwork net(p);
  const auto th = test::host(p.state.theta[0]), vel = test::host(v.theta[0]);
  double speed2 = 0;
  for (double c : vel) speed2 += c * c;
  const double dissipation = -speed2 / 8;
  const double h = 1e-6;
  auto plus = th, minus = th;
  for (std::size_t j = 0; j < th.size(); ++j) plus[j] += h * vel[j], minus[j] -= h * vel[j];
  const double fd = (net.loss(plus) - net.loss(minus)) / (2 * h);
  EXPECT_NEAR(fd, dissipation, test::tol(1e-7, 1e-4) * std::fabs(dissipation));
}

INSTANTIATE_TEST_SUITE_P(All, TwoLayerActivation,
                         ::testing::Values("relu", "tanh", "sigmoid", "softplus", "erf", "gelu"));

// The tiled kernels at sizes that span several particle tiles and sample chunks with ragged
// edges (m, n not multiples of any tile or chunk), against (A1), (A5) and (A6) evaluated on the
// host in long double; and bitwise reproducible from one call to the next.
// The logistic flow of model A against a host reference that applies (A5) with
// r_i = ℓ'(f_i, y_i) = −y_i / (1 + e^{y_i f_i}) (models/loss.hpp): the velocities and 100 Euler
// steps, 1e−12 relative.
TEST(TwoLayer, LogisticEulerTrajectoryMatchesTheHostReference) {
  if (!test::is_double()) GTEST_SKIP() << "a 1e-12 comparison needs double precision";
  Problem p = make_problem(ActivationKind::tanh, 6, true, false, false, LossKind::logistic);
  const HostNetwork net(p);
  std::vector<double> th = test::host(p.state.theta[0]);
  const int m = 6, D = net.D(), n = net.n, d = net.d;
  const double dt = 0.05;
  ParticleState v0 = allocate_like(p.state, "v0");
  test::evaluate(*p.model, p.state, v0);
  const std::vector<double> model_velocity = test::host(v0.theta[0]);
  for (int step = 0; step < 100; ++step) {
    const std::vector<double> r = net.residual(th);
    std::vector<double> v(th.size(), 0.0);
    for (int i = 0; i < n; ++i) {
      const double f = r[i] + net.y[i];
      const double dl = -net.y[i] / (1 + std::exp(net.y[i] * f));
      for (int k = 0; k < m; ++k) {
        const double s = std::tanh(net.pre(th, k, i)), ds = 1 - s * s;
        const double a = th[k * D];
        v[k * D] -= net.beta / n * dl * s;
        for (int c = 0; c < d; ++c)
          v[k * D + 1 + c] -= net.beta / n * dl * a * ds * net.x[i * d + c];
        v[k * D + d + 1] -= net.beta / n * dl * a * ds;
      }
    }
    if (step == 0)  // the velocities themselves, before the trajectory compounds them
      EXPECT_LT(test::max_abs_diff(model_velocity, v), 1e-12 * test::max_abs(v));
    for (std::size_t j = 0; j < th.size(); ++j) th[j] += dt * v[j];
  }
  RunSettings settings;
  settings.dt = dt;
  settings.steps = 100;
  test::RecordingOutput out;
  run_flow(*p.model, p.state, settings, {}, out);
  const std::vector<double> got = test::host(p.state.theta[0]);
  EXPECT_LT(test::max_abs_diff(got, th), 1e-12 * test::max_abs(th));
  EXPECT_GT(test::max_abs_diff(got, test::host(make_problem(ActivationKind::tanh, 6, true, false,
                                                            false, LossKind::logistic)
                                                   .state.theta[0])),
            1e-3);  // it moved
}

// The tiled kernels' reference, written out in long double for the tanh network with particles
// th (rows of D = 1 + d (+ 1)) on samples x (rows of d): the pre-activation z_ki = w_k·x̃_i, and
// particle k's velocity sums Σ_i r_i ∂θ[a_k tanh(z_ki)] (D entries, then the Laplacian's sum
// Σ_i r_i a_k tanh''(z_ki) |x̃_i|² last).
struct TanhReference {
  const std::vector<double>& th;
  const std::vector<double>& x;
  int d;
  bool bias;

  int D() const { return d + 1 + (bias ? 1 : 0); }
  long double z(int k, int i) const {
    long double acc = bias ? th[k * D() + d + 1] : 0;
    for (int c = 0; c < d; ++c) acc += (long double)th[k * D() + 1 + c] * x[i * d + c];
    return acc;
  }
  template <class Residuals>
  std::vector<long double> velocity_sums(int k, const Residuals& r) const {
    std::vector<long double> sums(D() + 1, 0);
    const long double a = th[k * D()];
    for (std::size_t i = 0; i < r.size(); ++i) {
      const long double t = std::tanh(z(k, int(i))), ds = 1 - t * t;
      sums[0] += r[i] * t;
      for (int c = 0; c < d; ++c) sums[1 + c] += r[i] * a * ds * x[i * d + c];
      if (bias) sums[d + 1] += r[i] * a * ds;
      long double norm2 = bias ? 1 : 0;
      for (int c = 0; c < d; ++c) norm2 += (long double)x[i * d + c] * x[i * d + c];
      sums[D()] += r[i] * a * (-2 * t * ds) * norm2;
    }
    return sums;
  }
};

TEST(TwoLayer, TiledKernelsMatchTheFormulasAcrossTilesAndChunks) {
  for (bool bias : {true, false}) {
    const int d = 7, n = 101, m = 142;  // widths are even (antithetic pairs)
    const Dataset data = make_synthetic_dataset(test::small_data(d, n, 0));
    TwoLayerSpec spec;
    spec.width = m;
    spec.beta = 1.3;
    spec.bias = bias;
    spec.activation = {ActivationKind::tanh, 1};
    TwoLayerModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), true, "s");
    model.initialize(s, 3, false);
    ParticleState v = allocate_like(s, "v"), v_again = allocate_like(s, "v_again");
    const double loss = test::evaluate(model, s, v)->loss;
    test::evaluate(model, s, v_again);
    EXPECT_EQ(test::host(v.theta[0]), test::host(v_again.theta[0]));
    EXPECT_EQ(test::host(v.log_density[0]), test::host(v_again.log_density[0]));

    const auto th = test::host(s.theta[0]), x = test::host(data.x_train),
               y = test::host(data.y_train), vel = test::host(v.theta[0]),
               lap = test::host(v.log_density[0]);
    const TanhReference reference{th, x, d, bias};
    const int D = reference.D();
    std::vector<long double> r(n);
    long double loss_ref = 0;
    for (int i = 0; i < n; ++i) {
      long double f = 0;
      for (int k = 0; k < m; ++k) f += th[k * D] * std::tanh(reference.z(k, i));
      r[i] = spec.beta / m * f - y[i];
      loss_ref += r[i] * r[i] / (2 * n);
    }
    EXPECT_NEAR(loss, double(loss_ref), test::tol(1e-13, 1e-5) * double(loss_ref));
    double worst = 0, scale = 0, worst_lap = 0, scale_lap = 0;
    for (int k = 0; k < m; ++k) {
      const std::vector<long double> ref = reference.velocity_sums(k, r);
      const long double lap_ref = ref[D];
      for (int j = 0; j < D; ++j) {
        const double expected = double(-spec.beta / n * ref[j]);
        worst = std::fmax(worst, std::fabs(vel[k * D + j] - expected));
        scale = std::fmax(scale, std::fabs(expected));
      }
      const double expected_lap = double(spec.beta / n * lap_ref);
      worst_lap = std::fmax(worst_lap, std::fabs(lap[k] - expected_lap));
      scale_lap = std::fmax(scale_lap, std::fabs(expected_lap));
    }
    EXPECT_LT(worst, test::tol(1e-13, 1e-5) * scale) << "bias=" << bias;
    EXPECT_LT(worst_lap, test::tol(1e-13, 1e-5) * scale_lap) << "bias=" << bias;
  }
}

Vector device_vector(const std::string& name, const std::vector<double>& values) {
  Vector v(name, values.size());
  const auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = real(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

// The kernels alone, on each execution space (TypeParam) of the build.
template <class Space>
class TwoLayerKernels : public ::testing::Test {};
TYPED_TEST_SUITE(TwoLayerKernels, test::ExecutionSpaces);

// Sizes straddling the tiles: n = 101 samples make two full chunks and a ragged one, m = 142
// particles two full tiles and a ragged one; inputs, parameters and residuals without structure
// (sin of their indices) that a tiling bug could hide in. The velocity is checked without and with
// the activation cache (the pre-activations that the forward pass keeps).
TYPED_TEST(TwoLayerKernels, ForwardAndVelocityMatchTheFormulasAcrossTilesAndChunks) {
  const TypeParam space;
  const activations::Tanh act;
  const int d = 7, n = 101, m = 142;
  const real scale = real(0.37), coeff = real(1.3) / n;
  for (bool bias : {true, false}) {
    const int dz = d + (bias ? 1 : 0), D = 1 + dz;
    std::vector<double> x(n * d), th(m * D), r(n);
    for (int i = 0; i < n * d; ++i) x[i] = std::sin(1.0 + 0.73 * i);
    for (int i = 0; i < m * D; ++i) th[i] = 0.8 * std::sin(2.0 + 1.37 * i);
    for (int i = 0; i < n; ++i) r[i] = std::sin(3.0 + 0.41 * i * i);
    Matrix x_dev("x", n, d), theta("theta", m, D);
    test::set(x_dev, x);
    test::set(theta, th);
    const Vector rv = device_vector("r", r);
    Vector f("f", n), norm2("norm2", n), lap("lap", m), lap_cached("lap_cached", m);
    Matrix v("v", m, D), v_cached("v_cached", m, D);
    Matrix cache("preactivations", detail::preactivation_blocks(m), n * tiles::lanes);
    const tiles::SamplePanels samples = tiles::pack_samples(space, x_dev, bias);
    detail::squared_row_norms(space, x_dev, bias ? real(1) : real(0), norm2);
    detail::two_layer_forward(space, "test::forward", theta, x_dev, f, scale, bias, act, cache);
    detail::two_layer_velocity<true>(space, "test::velocity", theta, samples, rv, norm2, v, lap,
                                     coeff, act);
    detail::two_layer_velocity<true>(space, "test::velocity_cached", theta, samples, rv, norm2,
                                     v_cached, lap_cached, coeff, act, cache);
    space.fence();

    const TanhReference reference{th, x, d, bias};
    double worst_f = 0, scale_f = 0, worst_n2 = 0;
    const std::vector<double> f_got = test::host(f), n2_got = test::host(norm2);
    for (int i = 0; i < n; ++i) {
      long double sum = 0, n2 = bias ? 1 : 0;
      for (int k = 0; k < m; ++k) sum += th[k * D] * std::tanh(reference.z(k, i));
      for (int c = 0; c < d; ++c) n2 += (long double)x[i * d + c] * x[i * d + c];
      const double expected = double(scale * sum);
      worst_f = std::fmax(worst_f, std::fabs(f_got[i] - expected));
      scale_f = std::fmax(scale_f, std::fabs(expected));
      worst_n2 = std::fmax(worst_n2, std::fabs(n2_got[i] - double(n2)) / double(n2));
    }
    EXPECT_LT(worst_f, test::tol(1e-13, 1e-5) * scale_f) << "bias=" << bias;
    EXPECT_LT(worst_n2, test::tol(1e-15, 1e-6)) << "bias=" << bias;

    std::vector<double> v_ref(m * D), lap_ref(m);
    for (int k = 0; k < m; ++k) {
      const std::vector<long double> sums = reference.velocity_sums(k, r);
      for (int j = 0; j < D; ++j) v_ref[k * D + j] = double(-coeff * sums[j]);
      lap_ref[k] = double(coeff * sums[D]);
    }
    for (const auto& [vel, laplacian, what] :
         {std::make_tuple(v, lap, "recomputed"), std::make_tuple(v_cached, lap_cached, "cached")}) {
      EXPECT_LT(test::max_abs_diff(test::host(vel), v_ref),
                test::tol(1e-13, 1e-5) * test::max_abs(v_ref))
          << "bias=" << bias << ", " << what << " pre-activations";
      EXPECT_LT(test::max_abs_diff(test::host(laplacian), lap_ref),
                test::tol(1e-13, 1e-5) * test::max_abs(lap_ref))
          << "bias=" << bias << ", " << what << " pre-activations";
    }
  }
}

TEST(TwoLayer, AntitheticInitialisationHasZeroOutput) {
  Problem p = make_problem(ActivationKind::tanh, 64, true, true);
  const auto th = test::host(p.state.theta[0]);
  const int D = 5;
  for (int k = 0; k < 64; k += 2) {
    EXPECT_EQ(th[k * D], -th[(k + 1) * D]);
    for (int j = 1; j < D; ++j) EXPECT_EQ(th[k * D + j], th[(k + 1) * D + j]);
  }
  Vector f("f", p.data.n_test());
  p.model->predict(p.state, p.data.x_test, f);
  for (double v : test::host(f)) EXPECT_EQ(v, 0.0);
  ParticleState v = allocate_like(p.state, "v");
  const double loss = test::evaluate(*p.model, p.state, v)->loss;
  const auto y = test::host(p.data.y_train);
  double expected = 0;
  for (double yi : y) expected += yi * yi;
  EXPECT_NEAR(loss, expected / (2 * y.size()), test::tol(1e-15, 1e-7));
}

TEST(TwoLayer, InitialLawMatchesTheSpecifiedStds) {
  Problem p = make_problem(ActivationKind::tanh, 20000, true, false, true);
  const auto th = test::host(p.state.theta[0]);
  const int D = 5;
  std::vector<double> var(D, 0);
  for (std::size_t i = 0; i < th.size(); ++i) var[i % D] += th[i] * th[i] / 20000;
  EXPECT_NEAR(var[0], 1.0, 0.05);
  EXPECT_NEAR(var[1], 1.0, 0.05);
  EXPECT_NEAR(var[4], 0.25, 0.0125);  // std_b = 0.5
  // log ρ0 at each particle, from the closed form of the product Gaussian.
  const auto logp = test::host(p.state.log_density[0]);
  for (int k = 0; k < 5; ++k) {
    double expected = 0;
    for (int j = 0; j < D; ++j) {
      const double sd = j == 4 ? 0.5 : 1.0;
      expected +=
          -0.5 * th[k * D + j] * th[k * D + j] / (sd * sd) - std::log(sd * std::sqrt(2 * M_PI));
    }
    EXPECT_NEAR(logp[k], expected, test::tol(1e-12, 1e-4));
  }
}

TEST(TwoLayer, InitialisationDoesNotDependOnTheSplit) {
  const Dataset data = make_synthetic_dataset(test::small_data());
  TwoLayerSpec spec;
  spec.width = 30;
  for (bool antithetic : {false, true}) {
    TwoLayerModel whole(spec, data);
    ParticleState all = allocate_state(whole.groups(), false, "all");
    whole.initialize(all, 5, antithetic);
    const auto expected = test::host(all.theta[0]);
    std::vector<double> joined;
    for (int rank = 0; rank < 3; ++rank) {
      test::FakeShardComm comm(rank, 3);
      TwoLayerModel part(spec, data, comm);
      ParticleState s = allocate_state(part.groups(), false, "part");
      part.initialize(s, 5, antithetic);
      const auto h = test::host(s.theta[0]);
      joined.insert(joined.end(), h.begin(), h.end());
    }
    EXPECT_EQ(joined, expected);
  }
}

// a_k² − |w_k|² − b_k² is conserved by the ReLU flow; explicit Euler drifts by O(dt) over [0, T].
TEST(TwoLayer, ReluBalancednessDriftShrinksLikeDt) {
  auto drift = [](double dt) {
    Problem p = make_problem(ActivationKind::relu, 16, true, false, false);
    const int D = 5;
    auto balance = [&](const std::vector<double>& th) {
      std::vector<double> b(16);
      for (int k = 0; k < 16; ++k) {
        b[k] = th[k * D] * th[k * D];
        for (int j = 1; j < D; ++j) b[k] -= th[k * D + j] * th[k * D + j];
      }
      return b;
    };
    const auto b0 = balance(test::host(p.state.theta[0]));
    Integrator euler(IntegratorKind::euler, p.state);
    ParticleState v = allocate_like(p.state, "v");
    const VelocityField field = [&](const ExecSpace&, const ParticleState& s, ParticleState& ds) {
      return test::evaluate(*p.model, s, ds)->loss;
    };
    for (int step = 0; step < int(std::lround(1.0 / dt)); ++step) {
      field(ExecSpace(), p.state, v);
      euler.finish_step(p.state, v, real(dt), field);
    }
    return test::max_abs_diff(balance(test::host(p.state.theta[0])), b0);
  };
  const double e1 = drift(0.02), e2 = drift(0.01), e3 = drift(0.005);
  EXPECT_GT(e1, 0);
  EXPECT_NEAR(std::log2(e1 / e2), 1.0, 0.3);
  EXPECT_NEAR(std::log2(e2 / e3), 1.0, 0.3);
}

}  // namespace
}  // namespace mfsim

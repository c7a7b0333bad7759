// The Gram matrix: the tiled kernel against a naive ΦΦᵀ (on every execution space of the build:
// GramKernel/<backend>), model A's features against (A9) written out on the host, the eigensolvers
// against each other, and the identities (A11), (A12) along a run (MATH.md §6 V5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "detail/gram_kernel.hpp"
#include "detail/two_layer_kernels.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/eigenvalues.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

// φ_{i,k}[q] = sin(1 + i + 2.3 k + 0.7 q·i) / (1 + q): no structure a tiling bug could hide in.
struct SyntheticFeatures {
  int p;
  int size() const { return p; }
  KOKKOS_INLINE_FUNCTION static real value(index_t i, index_t k, int q) {
    return math::sin(real(1 + i) + real(2.3) * real(k) + real(0.7) * real(q * i)) / real(1 + q);
  }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    for (int q = 0; q < p; ++q) phi[q] = value(i, k, q);
  }
};

// The kernels alone, on each execution space (TypeParam) of the build.
template <class Space>
class GramKernel : public ::testing::Test {};
TYPED_TEST_SUITE(GramKernel, test::ExecutionSpaces);

TYPED_TEST(GramKernel, EqualsNaiveProductOfFeatures) {
  const TypeParam space;
  // Sizes straddling the block size, chunks of one particle (wide p) and a ragged last chunk.
  for (const auto& [n, m, p] : std::vector<std::tuple<index_t, index_t, int>>{
           {1, 1, 1}, {5, 7, 3}, {33, 70, 4}, {64, 129, 1}, {70, 3, 300}}) {
    Matrix gram("gram", n, n);
    Kokkos::deep_copy(gram, real(1));  // accumulate_gram adds
    Workspace scratch;
    accumulate_gram(space, SyntheticFeatures{p}, m, gram, scratch);
    space.fence();
    const HostMatrix g = to_host(gram);
    double worst = 0, scale = 0;
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < n; ++j) {
        double naive = 1;
        for (index_t k = 0; k < m; ++k)
          for (int q = 0; q < p; ++q)
            naive += double(SyntheticFeatures::value(i, k, q)) * SyntheticFeatures::value(j, k, q);
        worst = std::fmax(worst, std::fabs(g(i, j) - naive));
        scale = std::fmax(scale, std::fabs(naive));
        EXPECT_EQ(g(i, j), g(j, i));  // summed in the same order: exactly symmetric
      }
    EXPECT_LT(worst, test::tol(1e-12, 1e-5) * scale) << "n=" << n << " m=" << m << " p=" << p;
  }
}

struct ModelA {
  Dataset data;
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
  ModelA(ActivationKind act, index_t width, index_t n, bool bias = true, double beta = 1.3,
         int dim = 3) {
    data = make_synthetic_dataset(test::small_data(dim, n, 0));
    spec.width = width;
    spec.beta = beta;
    spec.bias = bias;
    spec.activation = {act, real(2)};
    spec.std_b = 0.5;
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), false, "s");
    model->initialize(state, 3, false);
  }
};

TEST(TwoLayerGram, EqualsFeatureProductOfA9) {
  for (bool bias : {true, false}) {
    for (ActivationKind act : {ActivationKind::tanh, ActivationKind::relu}) {
      ModelA a(act, 50, 37, bias);
      const index_t n = 37, m = 50;
      const int d = 3, D = a.model->groups()[0].dim();
      Matrix gram("gram", n, n);
      ASSERT_EQ(a.model->gram_parts().size(), 1u);
      Workspace scratch;
      a.model->accumulate_gram(a.state, *a.model->make_evaluation(), 0, gram, scratch);
      const HostMatrix g = to_host(gram);
      // Φ on the host from (A9): φ = (β/√m)(σ(z), a σ'(z) x, a σ'(z)).
      const auto th = test::host(a.state.theta[0]), x = test::host(a.data.x_train);
      const int p = D;
      std::vector<double> phi(std::size_t(n * m * p));
      for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < m; ++k) {
          double z = bias ? th[std::size_t(k * D + d + 1)] : 0;
          for (int c = 0; c < d; ++c)
            z += th[std::size_t(k * D + 1 + c)] * x[std::size_t(i * d + c)];
          real s, ds;
          with_activation(a.spec.activation, [&](auto f) { f.eval(real(z), s, ds); });
          const double scale = a.spec.beta / std::sqrt(double(m)), ak = th[std::size_t(k * D)];
          double* row = &phi[std::size_t((i * m + k) * p)];
          row[0] = scale * s;
          for (int c = 0; c < d; ++c) row[1 + c] = scale * ak * ds * x[std::size_t(i * d + c)];
          if (bias) row[d + 1] = scale * ak * ds;
        }
      double worst = 0, largest = 0;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) {
          double naive = 0;
          for (std::size_t e = 0; e < std::size_t(m * p); ++e)
            naive += phi[std::size_t(i * m * p) + e] * phi[std::size_t(j * m * p) + e];
          worst = std::fmax(worst, std::fabs(g(i, j) - naive));
          largest = std::fmax(largest, std::fabs(naive));
        }
      EXPECT_LT(worst, test::tol(1e-12, 1e-5) * largest) << "bias=" << bias;
    }
  }
}

TYPED_TEST(GramKernel, FactoredTwoLayerGramEqualsGenericKernel) {
  // Model A's Gram matrix in the factored form S Sᵀ + (T Tᵀ) ∘ (X̃ X̃ᵀ) (what the model uses)
  // against the generic kernel on the full features (A9), at a size spanning several tiles.
  const TypeParam space;
  for (bool bias : {true, false}) {
    const index_t n = 101, m = 70;
    ModelA a(ActivationKind::tanh, m, n, bias);
    const real scale = real(a.spec.beta / std::sqrt(double(m)));
    Matrix factored("factored", n, n), generic("generic", n, n);
    Workspace scratch;
    with_activation(a.spec.activation, [&](auto act) {
      detail::accumulate_two_layer_gram(space, a.state.theta[0], a.data.x_train, scale, bias, act,
                                        factored, scratch);
      accumulate_gram(space,
                      detail::TwoLayerFeatures<decltype(act)>{a.state.theta[0], a.data.x_train,
                                                              scale, bias, act},
                      m, generic, scratch);
    });
    space.fence();
    const std::vector<double> f = test::host(factored), g = test::host(generic);
    EXPECT_TRUE(test::is_exactly_symmetric(f, std::size_t(n)));
    const double worst = test::max_abs_diff(f, g), largest = test::max_abs(g);
    EXPECT_GT(largest, 0);
    EXPECT_LT(worst, test::tol(1e-12, 1e-5) * largest) << "bias=" << bias;
  }
}

TYPED_TEST(GramKernel, WeightedEqualsNaiveWeightedProduct) {
  const TypeParam space;
  // G_ij = 1 + (x̃_i·x̃_j) Σ_k φ_ik·φ_jk, over several tiles with a ragged edge (n = 101).
  for (bool append_one : {true, false}) {
    const index_t n = 101, m = 9;
    const int p = 2, d = 3;
    Matrix x("x", n, d);
    auto xh = Kokkos::create_mirror_view(x);
    for (index_t i = 0; i < n; ++i)
      for (int c = 0; c < d; ++c) xh(i, c) = real(std::cos(0.3 * double(i) + 1.7 * c));
    Kokkos::deep_copy(x, xh);
    Matrix gram("gram", n, n);
    Kokkos::deep_copy(gram, real(1));
    Workspace scratch;
    accumulate_gram(space, SyntheticFeatures{p}, m, gram, scratch,
                    input_product_weight(space, x, append_one, scratch));
    space.fence();
    const HostMatrix g = to_host(gram);
    double worst = 0, scale = 0;
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < n; ++j) {
        double w = append_one ? 1 : 0, sum = 0;
        for (int c = 0; c < d; ++c) w += double(xh(i, c)) * double(xh(j, c));
        for (index_t k = 0; k < m; ++k)
          for (int q = 0; q < p; ++q)
            sum += double(SyntheticFeatures::value(i, k, q)) * SyntheticFeatures::value(j, k, q);
        const double naive = 1 + w * sum;
        worst = std::fmax(worst, std::fabs(g(i, j) - naive));
        scale = std::fmax(scale, std::fabs(naive));
        EXPECT_EQ(g(i, j), g(j, i));
      }
    EXPECT_LT(worst, test::tol(1e-12, 1e-5) * scale) << "append_one=" << append_one;
  }
}

TEST(Eigenvalues, DenseAndLanczosAgree) {
  // A Gram-like PSD matrix with a wide spectrum: M Mᵀ + diag.
  const index_t n = 120;
  HostMatrix a("a", n, n);
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = i == j ? 1e-3 * double(i + 1) : 0.0;
      for (int k = 0; k < 30; ++k) s += std::sin(1.0 + i * 0.37 + k) * std::sin(1.0 + j * 0.37 + k);
      a(i, j) = s;
    }
  const std::vector<double> all = eigenvalues(a);
  ASSERT_EQ(all.size(), std::size_t(n));
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  const ExtremeEigenvalues dense = extreme_eigenvalues(a, EigenSolverKind::dense);
  const ExtremeEigenvalues lanczos = extreme_eigenvalues(a, EigenSolverKind::lanczos);
  EXPECT_DOUBLE_EQ(dense.min, all.front());
  EXPECT_DOUBLE_EQ(dense.max, all.back());
  EXPECT_FALSE(lanczos.dense_fallback);
  EXPECT_NEAR(lanczos.min, dense.min, 1e-8 * dense.max);
  EXPECT_NEAR(lanczos.max, dense.max, 1e-8 * dense.max);
  // Trace = sum of eigenvalues: an independent check of the dense solver.
  double trace = 0, sum = 0;
  for (index_t i = 0; i < n; ++i) trace += a(i, i);
  for (double v : all) sum += v;
  EXPECT_NEAR(sum, trace, 1e-10 * trace);
  // Rank-deficient (as G is when m·p < n): λ_min = 0.
  for (index_t i = 0; i < n; ++i) a(i, i) -= 1e-3 * double(i + 1);
  const ExtremeEigenvalues singular = extreme_eigenvalues(a, EigenSolverKind::lanczos);
  EXPECT_FALSE(singular.dense_fallback);
  EXPECT_NEAR(singular.min, 0.0, 1e-9 * dense.max);
  EXPECT_NEAR(singular.min, eigenvalues(a).front(), 1e-9 * dense.max);
}

TEST(GramObserver, EnergyIdentityAndLossBoundHoldAlongARun) {
  // V5: (A11) at rounding level at every observation; (A12) L(t) <= L(0) exp(-(2/n)∫λ_min).
  for (ActivationKind act : {ActivationKind::tanh, ActivationKind::softplus}) {
    ModelA a(act, 128, 16, true, 2.0);
    DiagnosticsSettings s;
    s.gram_every = 1;
    s.gram_spectrum = true;
    GramObserver gram(*a.model, *a.model, s);
    RunSettings r;
    r.integrator = IntegratorKind::rk4;
    r.dt = 0.05;
    r.steps = 60;
    r.observe_every = 1;
    LossObserver loss;
    test::RecordingOutput out;
    run_flow(*a.model, a.state, r, {&loss, &gram}, out);
    const auto& err = out["energy_identity_error"];
    const auto& bound = out["loss_bound"];
    const auto& lmin = out["gram_lambda_min"];
    const auto& losses = out["loss"];
    ASSERT_EQ(err.value.size(), 61u);
    for (const auto& e : err.value) EXPECT_LT(e[0], test::tol(1e-11, 1e-4));
    EXPECT_EQ(bound.value[0][0], losses.value[0][0]);
    double integral = 0;
    for (std::size_t t = 0; t < bound.value.size(); ++t) {
      if (t > 0)
        integral +=
            0.5 * (lmin.time[t] - lmin.time[t - 1]) * (lmin.value[t][0] + lmin.value[t - 1][0]);
      EXPECT_NEAR(bound.value[t][0], losses.value[0][0] * std::exp(-2.0 / 16 * integral),
                  1e-12 * losses.value[0][0]);
      EXPECT_LE(losses.value[t][0], bound.value[t][0] * (1 + 1e-9)) << "t=" << lmin.time[t];
    }
    EXPECT_LT(losses.value.back()[0], 0.9 * losses.value[0][0]);  // the run did something
    // The spectrum row: ascending, its ends are λ_min and λ_max.
    const auto& spectrum = out["gram_spectrum"];
    EXPECT_EQ(spectrum.shape, std::vector<std::size_t>{16});
    EXPECT_EQ(spectrum.value.back().front(), lmin.value.back()[0]);
    EXPECT_EQ(spectrum.value.back().back(), out["gram_lambda_max"].value.back()[0]);
    EXPECT_GT(lmin.value.back()[0], 0);
  }
}

TEST(GramObserver, NotesTheFirstHandOverFromLanczosToTheDenseSolver) {
  // n = 3 is below Lanczos' minimum size: every observation falls back, one line says so.
  ModelA a(ActivationKind::tanh, 32, 3, true, 1.0);
  DiagnosticsSettings s;
  s.gram_every = 1;
  s.gram_solver = EigenSolverKind::lanczos;
  std::ostringstream log;
  GramObserver gram(*a.model, *a.model, s, &log);
  RunSettings r;
  r.steps = 3;
  r.observe_every = 1;
  test::RecordingOutput out;
  run_flow(*a.model, a.state, r, {&gram}, out);
  ASSERT_EQ(out["gram_lambda_min"].value.size(), 4u);
  const std::string text = log.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find("handed over to the dense solver at step 0"), std::string::npos) << text;
  EXPECT_NE(text.find("n = 3: too small for Lanczos"), std::string::npos) << text;
}

}  // namespace
}  // namespace mfsim

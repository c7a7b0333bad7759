// The population-risk flow (MATH.md §2.8) against independent references: the velocity against
// central differences of the exact risk (v = −m ∇R), a student equal to its teacher (R = 0,
// v = 0), the empirical flow of model A on 10⁶ samples of the same law (Monte Carlo, within its
// measured standard error), and the parser's refusals; its tiled pair kernel alone against the
// pair sums written out, on every execution space of the build (PopulationKernel/<backend>).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <vector>

#include "detail/population_kernel.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "mfsim/core/gaussian_kernels.hpp"
#include "mfsim/models/population.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;

// A student's activation against a teacher's, and the inputs' covariance diagonal (none: I_d).
struct Case {
  Activation student, teacher;
  std::vector<double> covariance;
};

// Readable parameters in test listings (the default prints the bytes, pointers included).
void PrintTo(const Case& c, std::ostream* os) {
  *os << activation_name(c.student.kind) << " student, " << activation_name(c.teacher.kind)
      << " teacher" << (c.covariance.empty() ? "" : ", diagonal covariance");
}

SyntheticDataSpec population_data(int dim, int teacher_width, const Activation& act, index_t n,
                                  const std::vector<double>& covariance = {}) {
  SyntheticDataSpec g;
  g.dim = dim;
  g.n_train = n;
  g.n_test = 0;
  g.inputs = InputDistribution::gaussian;
  g.teacher_width = teacher_width;
  g.teacher_activation = act;
  if (!covariance.empty())
    g.covariance_diagonal.assign(covariance.begin(), covariance.begin() + dim);
  g.seed = 7;
  return g;
}

Dataset with_teacher(Dataset d, const SyntheticDataSpec& g) {
  d.teacher = synthetic_teacher(g);
  d.teacher_scale = teacher_output_scale(g.teacher_width);
  d.teacher_activation = g.teacher_activation;
  d.covariance_diagonal = g.covariance_diagonal;
  return d;
}

TwoLayerSpec student(index_t width, const Activation& act, double beta = 1) {
  TwoLayerSpec s;
  s.width = width;
  s.beta = beta;
  s.bias = false;
  s.activation = act;
  s.std_a = 1;
  s.std_w = 0.7;
  return s;
}

double risk_at(const Model& model, const ParticleState& s) {
  ParticleState v = allocate_like(s, "v");
  return test::evaluate(model, s, v)->loss;
}

class PopulationFlow : public ::testing::TestWithParam<Case> {};

TEST_P(PopulationFlow, VelocityIsMinusWidthTimesTheRiskGradient) {
  if (!test::is_double()) GTEST_SKIP() << "central differences need double";
  const Case& p = GetParam();
  const Activation act = p.student;
  const auto g = population_data(4, 3, p.teacher, 0, p.covariance);
  const Dataset data = with_teacher(make_synthetic_dataset(g), g);
  const index_t m = 6;
  const PopulationModel model(student(m, act, 1.5), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  model.initialize(s, 3, false);
  ParticleState v = allocate_like(s, "v");
  test::evaluate(model, s, v);
  const std::vector<double> velocity = test::host(v.theta[0]);
  const int cols = model.groups()[0].dim();
  const double h = 1e-5;
  double worst = 0;
  for (index_t k = 0; k < m; ++k) {
    for (int c = 0; c < cols; ++c) {
      auto shifted = [&](double delta) {
        ParticleState t = allocate_like(s, "t");
        deep_copy(t, s);
        auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), t.theta[0]);
        host(k, c) += real(delta);
        Kokkos::deep_copy(t.theta[0], host);
        return risk_at(model, t);
      };
      const double fd = -double(m) * (shifted(h) - shifted(-h)) / (2 * h);
      const double analytic = velocity[std::size_t(k * cols + c)];
      EXPECT_NEAR(analytic, fd, 1e-7 * (1 + std::fabs(fd))) << "particle " << k << " coord " << c;
      worst = std::max(worst, std::fabs(analytic - fd) / (1 + std::fabs(fd)));
    }
  }
  std::printf("%s: max relative |v + m dR/dtheta (central differences)| = %.2e\n",
              activation_name(act.kind).c_str(), worst);
}

TEST_P(PopulationFlow, StudentEqualToTeacherHasZeroRiskAndVelocity) {
  const Case& p = GetParam();
  if (p.teacher.kind != p.student.kind || p.teacher.hermite != p.student.hermite)
    GTEST_SKIP() << "the student cannot equal a teacher of another activation";
  const Activation act = p.student;
  const int k = 4;
  const auto g = population_data(5, k, act, 0, p.covariance);
  const Dataset data = with_teacher(make_synthetic_dataset(g), g);
  const PopulationModel model(student(k, act), data);
  ParticleState s = allocate_state(model.groups(), false, "s");
  // f = (1/m) Σ a_k σ(w_k·x) = scale Σ a*_j σ(w*_j·x) with w_k = w*_k, a_k = m·scale·a*_k.
  const std::vector<double> rows = test::host(data.teacher);
  std::vector<double> theta;
  for (int j = 0; j < k; ++j) {
    theta.push_back(k * data.teacher_scale * rows[std::size_t(j * 6 + 5)]);
    for (int c = 0; c < 5; ++c) theta.push_back(rows[std::size_t(j * 6 + c)]);
  }
  test::set(s.theta[0], theta);
  ParticleState v = allocate_like(s, "v");
  const auto e = test::evaluate(model, s, v);
  // R = ½E[f*²] − β∫V dρ + ½β²∬U cancels terms of the size of ½E[f*²] (large for polynomials,
  // whose He_k grows like |w|^k): zero to rounding relative to that size.
  const double size = std::max(1.0, model.teacher_energy());
  EXPECT_NEAR(e->loss, 0, test::tol(1e-13, 1e-5) * size);
  EXPECT_LT(test::max_abs(test::host(v.theta[0])), test::tol(1e-12, 1e-4) * size);
  // And the risk is not zero elsewhere: the test can fail.
  test::set(s.theta[0], std::vector<double>(theta.size(), 0.3));
  EXPECT_GT(risk_at(model, s), 1e-3);
}

// The empirical velocity of model A on n = 10⁶ samples of the same law (16 batches: the spread
// of the batch means gives the standard error) against the population velocity.
TEST_P(PopulationFlow, EmpiricalFlowConvergesToThePopulationFlow) {
  if (!test::is_double()) GTEST_SKIP() << "the comparison is at the Monte-Carlo error of double";
  const Case& p = GetParam();
  const Activation act = p.student;
  const int batches = 16;
  const index_t n = 1 << 20, per = n / batches, m = 8;
  const auto g = population_data(4, 2, p.teacher, n, p.covariance);
  const Dataset all = with_teacher(make_synthetic_dataset(g), g);
  const PopulationModel population(student(m, act, 1.2), all);
  ParticleState s = allocate_state(population.groups(), false, "s");
  population.initialize(s, 5, false);
  ParticleState v = allocate_like(s, "v");
  const double risk = test::evaluate(population, s, v)->loss;
  const std::vector<double> exact = test::host(v.theta[0]);

  std::vector<std::vector<double>> batch_v;
  std::vector<double> batch_loss;
  for (int b = 0; b < batches; ++b) {
    Dataset part;
    const auto rows = std::make_pair(index_t(b) * per, index_t(b + 1) * per);
    part.x_train = Kokkos::subview(all.x_train, rows, Kokkos::ALL);
    part.y_train = Kokkos::subview(all.y_train, rows);
    part.x_test = all.x_test;
    part.y_test = all.y_test;
    const TwoLayerModel empirical(student(m, act, 1.2), part);
    ParticleState w = allocate_like(s, "w");
    batch_loss.push_back(test::evaluate(empirical, s, w)->loss);
    batch_v.push_back(test::host(w.theta[0]));
  }
  auto mean_and_error = [&](auto value) {
    double mean = 0, var = 0;
    for (int b = 0; b < batches; ++b) mean += value(b) / batches;
    for (int b = 0; b < batches; ++b) var += (value(b) - mean) * (value(b) - mean);
    return std::make_pair(mean, std::sqrt(var / (batches - 1) / batches));
  };
  double worst = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const auto [mean, se] = mean_and_error([&](int b) { return batch_v[std::size_t(b)][i]; });
    EXPECT_LE(std::fabs(mean - exact[i]), 6 * se + 1e-12) << "coordinate " << i;
    worst = std::max(worst, std::fabs(mean - exact[i]) / se);
  }
  const auto [loss, loss_se] = mean_and_error([&](int b) { return batch_loss[std::size_t(b)]; });
  EXPECT_LE(std::fabs(loss - risk), 6 * loss_se);
  std::printf(
      "%s, n = %lld: max |v_empirical - v_population| / SE = %.2f over %zu coordinates; risk "
      "%.6f, empirical %.6f +- %.1e\n",
      activation_name(act.kind).c_str(), (long long)n, worst, exact.size(), risk, loss, loss_se);
}

// hermite: a series of degree 4 with every parity (a Hermite coefficient of each order); the
// Hermite-link teachers of erf and relu students, and a diagonal covariance.
const Activation erf{ActivationKind::erf, 1}, relu{ActivationKind::relu, 1},
    series{ActivationKind::hermite, 1, {0.2, 0.8, -0.4, 0.3, 0.1}},
    link{ActivationKind::hermite, 1, {0.1, 0.5, 0.6, -0.3}};
const std::vector<double> covariance = {0.5, 1.7, 0.8, 1.3, 2.1};

INSTANTIATE_TEST_SUITE_P(
    Kernels, PopulationFlow,
    ::testing::Values(Case{erf, erf, {}}, Case{relu, relu, {}},
                      Case{{ActivationKind::linear, 1}, {ActivationKind::linear, 1}, {}},
                      Case{{ActivationKind::quadratic, 1}, {ActivationKind::quadratic, 1}, {}},
                      Case{series, series, {}}, Case{erf, erf, covariance},
                      Case{erf, link, covariance}, Case{relu, link, {}},
                      Case{{ActivationKind::quadratic, 1}, link, covariance}),
    [](const auto& info) {
      const Case& p = info.param;
      return activation_name(p.student.kind) + "_" + activation_name(p.teacher.kind) +
             (p.teacher.kind == ActivationKind::hermite && p.student.kind != p.teacher.kind
                  ? "_link"
                  : "") +
             (p.covariance.empty() ? "" : "_covariance");
    });

// The pair kernel alone, on each execution space (TypeParam) of the build.
template <class Space>
class PopulationKernel : public ::testing::Test {};
TYPED_TEST_SUITE(PopulationKernel, test::ExecutionSpaces);

// v_a(k) = Σ_j c_j K(q11, q12, q22), v_w(k) = a_k Σ_j c_j [2 K_1 Σw_k + K_2 Σw_j] and the
// teacher's and students' parts of v_a, summed pair by pair on the host (the kernels K are
// checked against quadrature in test_gaussian_kernels.cpp). m = 150 particles make two full tiles
// and a ragged one, 3 + 140 sources two full chunks and a ragged one; the teacher's kernel is the
// students' (one kernel for every pair) or another one (chosen per row).
template <class Space, class Kernel, class TeacherKernel>
void expect_pair_sums(Kernel kernel, TeacherKernel teacher_kernel, const char* what) {
  const Space space;
  const int d = 5, m = 150, n_teacher = 3, ns = n_teacher + 140;
  std::vector<double> th(m * (d + 1)), src(ns * (d + 1)), var(d);
  for (std::size_t i = 0; i < th.size(); ++i) th[i] = 0.6 * std::sin(1.0 + 0.91 * double(i));
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = 0.6 * std::sin(2.0 + 1.13 * double(i));
  for (int c = 0; c < d; ++c) var[c] = 0.5 + 0.3 * c;
  Matrix theta("theta", m, d + 1), sources("sources", ns, d + 1);
  test::set(theta, th);
  test::set(sources, src);
  Vector variance("variance", d);
  const auto variance_host = Kokkos::create_mirror_view(variance);
  for (int c = 0; c < d; ++c) variance_host(c) = real(var[c]);
  Kokkos::deep_copy(variance, variance_host);
  Matrix v("v", m, d + 1);
  Vector teacher_part("teacher_part", m), student_part("student_part", m);
  detail::population_velocity(space, theta, sources, n_teacher, variance, v, teacher_part,
                              student_part, kernel, teacher_kernel);
  space.fence();

  std::vector<double> v_ref(m * (d + 1)), teacher_ref(m), student_ref(m);
  for (int k = 0; k < m; ++k) {
    const double* w = &th[k * (d + 1) + 1];
    double q11 = 0, teacher = 0, students = 0, d11 = 0;
    std::vector<double> acc(d, 0);
    for (int c = 0; c < d; ++c) q11 += w[c] * var[c] * w[c];
    for (int j = 0; j < ns; ++j) {
      const double cj = src[j * (d + 1)], *wj = &src[j * (d + 1) + 1];
      double q12 = 0, q22 = 0;
      for (int c = 0; c < d; ++c) q12 += w[c] * var[c] * wj[c], q22 += wj[c] * var[c] * wj[c];
      const KernelValue kv = j < n_teacher ? teacher_kernel(real(q11), real(q12), real(q22))
                                           : kernel(real(q11), real(q12), real(q22));
      (j < n_teacher ? teacher : students) += cj * kv.k;
      d11 += cj * kv.d11;
      for (int c = 0; c < d; ++c) acc[c] += cj * kv.d12 * var[c] * wj[c];
    }
    v_ref[k * (d + 1)] = teacher + students;
    for (int c = 0; c < d; ++c)
      v_ref[k * (d + 1) + 1 + c] = th[k * (d + 1)] * (2 * d11 * var[c] * w[c] + acc[c]);
    teacher_ref[k] = teacher;
    student_ref[k] = students;
  }
  const double tol = test::tol(1e-12, 2e-5);
  EXPECT_LT(test::max_abs_diff(test::host(v), v_ref), tol * test::max_abs(v_ref)) << what;
  EXPECT_LT(test::max_abs_diff(test::host(teacher_part), teacher_ref),
            tol * test::max_abs(teacher_ref))
      << what;
  EXPECT_LT(test::max_abs_diff(test::host(student_part), student_ref),
            tol * test::max_abs(student_ref))
      << what;
}

TYPED_TEST(PopulationKernel, VelocityEqualsThePairSumsWrittenOut) {
  expect_pair_sums<TypeParam>(gaussian_kernels::Erf{}, gaussian_kernels::Erf{}, "erf, erf");
  expect_pair_sums<TypeParam>(gaussian_kernels::Erf{}, gaussian_kernels::Relu{}, "erf, relu");
}

TEST(PopulationConfig, RefusesWhatHasNoClosedForm) {
  const std::string base =
      "[model]\nactivation = \"erf\"\nbias = false\nwidth = 8\n[data]\nkind = \"population\"\n";
  EXPECT_EQ(test::config_error(base), "accepted");
  EXPECT_THAT(test::config_error(
                  "[model]\nactivation = \"erf\"\nwidth = 8\n[data]\nkind = \"population\"\n"),
              HasSubstr("model.bias: must be false"));
  EXPECT_THAT(test::config_error("[model]\nactivation = \"tanh\"\nbias = false\n[data]\nkind = "
                                 "\"population\"\n"),
              HasSubstr("model.activation:"));
  EXPECT_THAT(test::config_error(base + "teacher_activation = \"relu\"\n"),
              HasSubstr("data.teacher_activation:"));
  EXPECT_THAT(test::config_error("[model]\nactivation = \"erf\"\nbias = false\nwidth = "
                                 "8\noutputs = 3\n[data]\nkind = \"population\"\n"),
              HasSubstr("model.outputs: must be 1"));
  EXPECT_THAT(test::config_error(base + "inputs = \"sphere\"\n"), HasSubstr("data.inputs:"));
  EXPECT_THAT(test::config_error(base + "noise = 0.1\n"), HasSubstr("data.noise:"));
  EXPECT_THAT(test::config_error(base + "[flow]\nbatch_size = 10\n"),
              HasSubstr("flow.batch_size:"));
  EXPECT_THAT(test::config_error(base + "[diagnostics]\ngram = true\n"),
              HasSubstr("diagnostics.gram: needs samples, and data.kind = \"population\" has none: "
                        "set diagnostics.probe_samples"));
  EXPECT_THAT(test::config_error(base + "[diagnostics]\nkl = [\"transport\"]\n"),
              HasSubstr("diagnostics.kl:"));
  // The polynomial activations: hermite needs its coefficients (at most degree 8).
  auto hermite = [](const std::string& coefficients) {
    return "[model]\nactivation = \"hermite\"\nbias = false\nwidth = 8\n" + coefficients +
           "[data]\nkind = \"population\"\n";
  };
  EXPECT_THAT(test::config_error(hermite("")),
              HasSubstr("model.hermite_coefficients: is required"));
  EXPECT_EQ(test::config_error(hermite("hermite_coefficients = [0, 1, 0.5]\n")), "accepted");
  EXPECT_THAT(
      test::config_error(hermite("hermite_coefficients = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n")),
      HasSubstr("model.hermite_coefficients: must hold 1 to 9 numbers (got 10)"));
  EXPECT_THAT(test::config_error(hermite("hermite_coefficients = []\n")),
              HasSubstr("model.hermite_coefficients: must hold 1 to 9"));
  EXPECT_THAT(test::config_error(hermite("hermite_coefficients = [1, \"x\"]\n")),
              HasSubstr("model.hermite_coefficients: must be an array of numbers"));
  EXPECT_NO_THROW(
      load_config(MFSIM_SOURCE_DIR "/simulations/configs/population_single_index.toml"));
  // A single-index Hermite-link teacher of an erf student; a diagonal covariance.
  EXPECT_EQ(test::config_error(base + "teacher_activation = \"hermite\"\n"
                                      "teacher_hermite_coefficients = [0, 0, 1]\n"),
            "accepted");
  EXPECT_THAT(test::config_error(base + "teacher_activation = \"hermite\"\n"),
              HasSubstr("data.teacher_hermite_coefficients: is required"));
  EXPECT_EQ(test::config_error(base + "dim = 3\ncovariance_diagonal = [1, 2, 0.5]\n"), "accepted");
  EXPECT_THAT(test::config_error(base + "dim = 3\ncovariance_diagonal = [1, 2]\n"),
              HasSubstr("data.covariance_diagonal: must hold data.dim = 3 variances (got 2)"));
  EXPECT_THAT(test::config_error(base + "dim = 2\ncovariance_diagonal = [1, 0]\n"),
              HasSubstr("data.covariance_diagonal: must hold positive variances"));
  EXPECT_THAT(test::config_error("[data]\ndim = 2\ncovariance_diagonal = [1, 2]\n"),
              HasSubstr("data.covariance_diagonal: needs inputs = \"gaussian\""));
  for (const char* polynomial : {"linear", "quadratic"})
    EXPECT_EQ(test::config_error("[model]\nactivation = \"" + std::string(polynomial) +
                                 "\"\nbias = false\n[data]\nkind = \"population\"\n"),
              "accepted");
  EXPECT_THAT(test::config_error("[model]\nkind = \"resnet\"\nactivation = \"erf\"\nbias = "
                                 "false\n[data]\nkind = \"population\"\n"),
              HasSubstr("model.kind:"));
}

// The Gram diagnostics' probe set: population runs only, 0 ≤ n ≤ gram_max_samples; it turns the
// Gram diagnostics on, and gram = false leaves it unused.
TEST(PopulationConfig, ProbeSamples) {
  const std::string base =
      "[model]\nactivation = \"erf\"\nbias = false\nwidth = 8\n[data]\nkind = \"population\"\n"
      "[diagnostics]\n";
  EXPECT_EQ(test::config_error(base + "probe_samples = 30\n"), "accepted");
  EXPECT_EQ(test::config_error(base + "probe_samples = 30\ngram = true\n"), "accepted");
  EXPECT_EQ(test::config_error(base + "probe_samples = 0\n"), "accepted");
  EXPECT_EQ(test::config_error(base + "probe_samples = 2000\n"), "accepted");
  EXPECT_THAT(test::config_error(base + "probe_samples = -1\n"),
              HasSubstr("diagnostics.probe_samples: must be >= 0 (got -1)"));
  EXPECT_THAT(test::config_error(base + "probe_samples = 1.5\n"),
              HasSubstr("diagnostics.probe_samples: must be an integer"));
  EXPECT_THAT(
      test::config_error(base + "probe_samples = 2001\n"),
      HasSubstr("diagnostics.probe_samples: must be <= gram_max_samples = 2000 (got 2001)"));
  EXPECT_THAT(test::config_error(base + "probe_samples = 60\ngram_max_samples = 50\n"),
              HasSubstr("diagnostics.probe_samples: must be <= gram_max_samples = 50 (got 60)"));
  EXPECT_THAT(test::config_error("[diagnostics]\nprobe_samples = 30\n"),
              HasSubstr("diagnostics.probe_samples: needs data.kind = \"population\""));
  const Config on = parse_config(base + "probe_samples = 30\n");
  EXPECT_TRUE(on.diagnostics.gram);
  EXPECT_EQ(on.diagnostics.probe_samples, 30);
  const Config off = parse_config(base + "probe_samples = 30\ngram = false\n");
  EXPECT_FALSE(off.diagnostics.gram);
  EXPECT_EQ(off.diagnostics.probe_samples, 0);
  EXPECT_FALSE(parse_config(base).diagnostics.gram);
}

}  // namespace
}  // namespace mfsim

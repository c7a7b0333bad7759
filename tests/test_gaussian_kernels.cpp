// The closed-form Gaussian kernels K = E[σ(u)σ(v)] and their derivatives (MATH.md §2.8) against
// independent references: 2-D Gauss–Hermite quadrature (erf, polynomials), the conditional
// expectation integrated by Gauss–Legendre (relu, whose kink defeats Gauss–Hermite), the explicit
// linear and quadratic formulas, and central finite differences for ∂K/∂q11 and ∂K/∂q12; the pair
// form of the erf and relu kernels (the population kernel's) against their reference form.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "helpers.hpp"
#include "mfsim/core/gaussian_kernels.hpp"

namespace mfsim {
namespace {

struct Cov {
  double q11, q12, q22;
};

// Covariances of (u, v): unit, correlated, anticorrelated, nearly parallel, unequal scales.
const std::vector<Cov> covariances = {{1, 0, 1},     {1, 0.3, 2},    {0.5, -0.4, 0.7},
                                      {2.5, 2.4, 3}, {0.1, 0.05, 4}, {1.7, -1.2, 0.9}};

// Golub–Welsch: nodes and weights of the n-point Gauss rule of the Jacobi matrix with zero
// diagonal and off-diagonal `offdiag(k)`, k = 1 … n−1, for a measure of total mass `mass`.
void golub_welsch(int n, const std::function<double(int)>& offdiag, double mass,
                  std::vector<double>& x, std::vector<double>& w) {
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(n, n);
  for (int k = 1; k < n; ++k) J(k - 1, k) = J(k, k - 1) = offdiag(k);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(J);
  x.resize(n);
  w.resize(n);
  for (int i = 0; i < n; ++i) {
    x[i] = eig.eigenvalues()(i);
    w[i] = mass * eig.eigenvectors()(0, i) * eig.eigenvectors()(0, i);
  }
}

// E[g(z1, z2)] for independent standard normals: product Gauss–Hermite (probabilists').
double gauss_hermite_2d(const std::function<double(double, double)>& g, int n = 120) {
  std::vector<double> x, w;
  golub_welsch(
      n, [](int k) { return std::sqrt(double(k)); }, 1.0, x, w);
  long double sum = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) sum += (long double)(w[i] * w[j]) * g(x[i], x[j]);
  return double(sum);
}

// E[σ(u)σ2(v)] with u = √q11 z1, v = (q12/√q11) z1 + √(q22 − q12²/q11) z2.
double quadrature(const std::function<double(double)>& s1, const std::function<double(double)>& s2,
                  const Cov& c) {
  const double a = std::sqrt(c.q11), b = c.q12 / a, s = std::sqrt(c.q22 - b * b);
  return gauss_hermite_2d([&](double z1, double z2) { return s1(a * z1) * s2(b * z1 + s * z2); });
}

// relu: E[relu(u) E[relu(v) | u]], the inner expectation exact (E[relu(μ + s z)] = μΦ(μ/s) +
// sφ(μ/s)), the outer over z1 ∈ (0, 12) (u > 0; the rest of the tail is below 1e−31) by
// composite Gauss–Legendre, 24 panels of 24 points: the integrand is smooth there.
double relu_reference(const Cov& c) {
  const double a = std::sqrt(c.q11), b = c.q12 / a, s = std::sqrt(c.q22 - b * b);
  std::vector<double> x, w;
  golub_welsch(
      24, [](int k) { return k / std::sqrt(4.0 * k * k - 1); }, 2.0, x, w);
  const double length = 12.0 / 24;
  long double sum = 0;
  for (int p = 0; p < 24; ++p) {
    for (int i = 0; i < 24; ++i) {
      const double z = length * (p + 0.5 * (x[i] + 1));
      const double mu = b * z;
      const double inner = mu * 0.5 * std::erfc(-mu / (s * std::sqrt(2.0))) +
                           s * std::exp(-0.5 * mu * mu / (s * s)) / std::sqrt(2 * M_PI);
      sum += (long double)(0.5 * length * w[i]) * a * z * inner * std::exp(-0.5 * z * z) /
             std::sqrt(2 * M_PI);
    }
  }
  return double(sum);
}

// Evaluates `kernel` at every covariance inside a Kokkos kernel (the device code path).
template <class Kernel>
std::vector<KernelValue> evaluate(const Kernel& kernel, const std::vector<Cov>& points) {
  const index_t n = index_t(points.size());
  Matrix q("q", n, 3), out("out", n, 3);
  std::vector<double> flat;
  for (const Cov& c : points) flat.insert(flat.end(), {c.q11, c.q12, c.q22});
  test::set(q, flat);
  Kokkos::parallel_for(
      "test::gaussian_kernel", Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(index_t i) {
        const KernelValue v = kernel(q(i, 0), q(i, 1), q(i, 2));
        out(i, 0) = v.k, out(i, 1) = v.d11, out(i, 2) = v.d12;
      });
  const std::vector<double> h = test::host(out);
  std::vector<KernelValue> values(points.size());
  for (std::size_t i = 0; i < points.size(); ++i)
    values[i] = {real(h[3 * i]), real(h[3 * i + 1]), real(h[3 * i + 2])};
  return values;
}

// What the pair kernel evaluates (pair_of, with the prepared factors of both variances), as a
// kernel of (q11, q12, q22).
template <class Kernel>
struct PairForm {
  Kernel kernel;
  KOKKOS_INLINE_FUNCTION KernelValue operator()(real q11, real q12, real q22) const {
    return gaussian_kernels::pair_of(kernel, q11, gaussian_kernels::prepare_of(kernel, q11), q12,
                                     q22, gaussian_kernels::prepare_of(kernel, q22));
  }
};

// ∂K/∂q11 and ∂K/∂q12 against central differences (step h: truncation O(h²), rounding O(ε/h)).
template <class Kernel>
void expect_derivatives(const Kernel& kernel, double tolerance) {
  const double h = 1e-5;
  std::vector<Cov> shifted;
  for (const Cov& c : covariances) {
    shifted.push_back({c.q11 + h, c.q12, c.q22});
    shifted.push_back({c.q11 - h, c.q12, c.q22});
    shifted.push_back({c.q11, c.q12 + h, c.q22});
    shifted.push_back({c.q11, c.q12 - h, c.q22});
  }
  const auto at = evaluate(kernel, covariances), near = evaluate(kernel, shifted);
  double worst = 0;
  for (std::size_t i = 0; i < covariances.size(); ++i) {
    const double d11 = (near[4 * i].k - near[4 * i + 1].k) / (2 * h);
    const double d12 = (near[4 * i + 2].k - near[4 * i + 3].k) / (2 * h);
    EXPECT_NEAR(at[i].d11, d11, tolerance * (1 + std::fabs(d11))) << "point " << i;
    worst = std::max({worst, std::fabs(at[i].d11 - d11) / (1 + std::fabs(d11)),
                      std::fabs(at[i].d12 - d12) / (1 + std::fabs(d12))});
    EXPECT_NEAR(at[i].d12, d12, tolerance * (1 + std::fabs(d12))) << "point " << i;
  }
  std::printf("max relative |dK - central difference| = %.2e\n", worst);
}

// Probabilists' Hermite polynomial He_n(u) by its recurrence.
double hermite(int n, double u) {
  double h0 = 1, h1 = u;
  if (n == 0) return h0;
  for (int k = 1; k < n; ++k) {
    const double h2 = u * h1 - k * h0;
    h0 = h1;
    h1 = h2;
  }
  return h1;
}

gaussian_kernels::Polynomial polynomial(const std::vector<double>& c,
                                        const std::vector<double>& other) {
  gaussian_kernels::Polynomial p;
  p.degree = int(std::max(c.size(), other.size())) - 1;
  for (std::size_t i = 0; i < c.size(); ++i) p.c[i] = real(c[i]);
  for (std::size_t i = 0; i < other.size(); ++i) p.other[i] = real(other[i]);
  return p;
}

std::function<double(double)> hermite_series(const std::vector<double>& c) {
  return [c](double u) {
    double s = 0;
    for (std::size_t i = 0; i < c.size(); ++i) s += c[i] * hermite(int(i), u);
    return s;
  };
}

TEST(GaussianKernel, ErfMatchesGaussHermiteQuadrature) {
  if (!test::is_double()) GTEST_SKIP() << "the 1e-12 reference needs double";
  const auto values = evaluate(gaussian_kernels::Erf{}, covariances);
  const auto erf = [](double u) {
    return std::erf(u);
  };
  double worst = 0;
  for (std::size_t i = 0; i < covariances.size(); ++i) {
    const double ref = quadrature(erf, erf, covariances[i]);
    EXPECT_NEAR(values[i].k, ref, 1e-12) << "point " << i;
    worst = std::max(worst, std::fabs(values[i].k - ref));
  }
  std::printf("erf: max |K - Gauss-Hermite| = %.2e\n", worst);
}

TEST(GaussianKernel, ReluMatchesConditionalQuadrature) {
  if (!test::is_double()) GTEST_SKIP() << "the 1e-12 reference needs double";
  const auto values = evaluate(gaussian_kernels::Relu{}, covariances);
  double worst = 0;
  for (std::size_t i = 0; i < covariances.size(); ++i) {
    const double ref = relu_reference(covariances[i]);
    EXPECT_NEAR(values[i].k, ref, 1e-12) << "point " << i;
    worst = std::max(worst, std::fabs(values[i].k - ref));
  }
  std::printf("relu: max |K - conditional quadrature| = %.2e\n", worst);
  // Parallel units: K(q, q, q) = E[relu(u)²] = q/2, with ∂K/∂q12 = 1/2 and ∂K/∂q11 = 0.
  const auto diagonal = evaluate(gaussian_kernels::Relu{}, {{1.3, 1.3, 1.3}});
  EXPECT_NEAR(diagonal[0].k, 0.65, 1e-15);
  EXPECT_NEAR(diagonal[0].d12, 0.5, 1e-15);
  EXPECT_NEAR(diagonal[0].d11, 0, 1e-15);
}

TEST(GaussianKernel, PolynomialsMatchGaussHermiteQuadrature) {
  if (!test::is_double()) GTEST_SKIP() << "the 1e-12 reference needs double";
  const std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs = {
      {{0, 1}, {0, 1}},                                        // linear
      {{1, 0, 1}, {1, 0, 1}},                                  // quadratic
      {{0.2, -0.5, 0.3, 0.25, 0, -0.1}, {0, 1, 0, 0.5}},       // a student against a teacher
      {{0, 0, 0, 0, 0, 0, 0, 0, 0.01}, {0.3, 0, 0.2, 0, 0.1}}  // degree 8
  };
  double worst = 0;
  for (const auto& [c, other] : pairs) {
    const auto values = evaluate(polynomial(c, other), covariances);
    for (std::size_t i = 0; i < covariances.size(); ++i) {
      const double ref = quadrature(hermite_series(c), hermite_series(other), covariances[i]);
      EXPECT_NEAR(values[i].k, ref, 1e-12 * (1 + std::fabs(ref))) << "point " << i;
      worst = std::max(worst, std::fabs(values[i].k - ref) / (1 + std::fabs(ref)));
    }
  }
  std::printf("polynomials: max |K - Gauss-Hermite| / (1 + |K|) = %.2e\n", worst);
}

template <class Moments>
gaussian_kernels::HermiteLink<Moments> link(const std::vector<double>& c) {
  gaussian_kernels::HermiteLink<Moments> k;
  k.degree = int(c.size()) - 1;
  for (std::size_t i = 0; i < c.size(); ++i) k.c[i] = real(c[i]);
  return k;
}

// erf and relu students against Hermite-link teachers g = Σ c_i He_i (the single-index model):
// erf by plain Gauss–Hermite (entire integrand), relu by Gauss–Hermite of the conditional form
// E[relu(u) g(v)] = E[relu(u) E[g(v) | u]], whose inner expectation is a polynomial in u,
// integrated on u > 0 by the half-line rule of the relu reference (z ∈ (0, 12), Gauss–Legendre).
TEST(GaussianKernel, HermiteLinksMatchQuadrature) {
  if (!test::is_double()) GTEST_SKIP() << "the 1e-12 reference needs double";
  const std::vector<std::vector<double>> links = {
      {0, 1}, {0, 0, 1}, {0.1, 0.5, 0.6, -0.3}, {0.2, 0, 0, 0, 0.3, -0.1, 0, 0, 0.01}};
  std::vector<double> x, w;
  golub_welsch(
      24, [](int k) { return k / std::sqrt(4.0 * k * k - 1); }, 2.0, x, w);
  double worst = 0;
  for (const auto& c : links) {
    const auto g = hermite_series(c);
    const auto erf_values = evaluate(link<gaussian_kernels::ErfMoments>(c), covariances);
    const auto relu_values = evaluate(link<gaussian_kernels::ReluMoments>(c), covariances);
    for (std::size_t i = 0; i < covariances.size(); ++i) {
      const Cov& q = covariances[i];
      const double erf_ref = quadrature([](double u) { return std::erf(u); }, g, q);
      // relu: v | z1 = b z1 + s z2; E[g(b z1 + s z2) | z1] by 1-D Gauss–Hermite in z2 (exact
      // for a polynomial), then z1 over (0, 12) piecewise Gauss–Legendre.
      const double a = std::sqrt(q.q11), b = q.q12 / a, sd = std::sqrt(q.q22 - b * b);
      std::vector<double> hx, hw;
      golub_welsch(
          20, [](int k) { return std::sqrt(double(k)); }, 1.0, hx, hw);
      long double relu_ref = 0;
      const double length = 12.0 / 24;
      for (int p = 0; p < 24; ++p)
        for (int j = 0; j < 24; ++j) {
          const double z = length * (p + 0.5 * (x[std::size_t(j)] + 1));
          double inner = 0;
          for (std::size_t t = 0; t < hx.size(); ++t) inner += hw[t] * g(b * z + sd * hx[t]);
          relu_ref += (long double)(0.5 * length * w[std::size_t(j)]) * a * z * inner *
                      std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
        }
      EXPECT_NEAR(erf_values[i].k, erf_ref, 1e-12 * (1 + std::fabs(erf_ref))) << "point " << i;
      EXPECT_NEAR(relu_values[i].k, double(relu_ref), 1e-12 * (1 + std::fabs(double(relu_ref))))
          << "point " << i;
      worst = std::max(
          {worst, std::fabs(erf_values[i].k - erf_ref) / (1 + std::fabs(erf_ref)),
           std::fabs(relu_values[i].k - double(relu_ref)) / (1 + std::fabs(double(relu_ref)))});
    }
    expect_derivatives(link<gaussian_kernels::ErfMoments>(c), 1e-8);
    expect_derivatives(link<gaussian_kernels::ReluMoments>(c), 1e-8);
  }
  std::printf("Hermite links (erf, relu): max |K - quadrature| / (1 + |K|) = %.2e\n", worst);
}

TEST(GaussianKernel, LinearAndQuadraticClosedForms) {
  const auto linear = evaluate(polynomial({0, 1}, {0, 1}), covariances);
  const auto quadratic = evaluate(polynomial({1, 0, 1}, {1, 0, 1}), covariances);
  const double tol = test::tol(1e-14, 1e-5);
  for (std::size_t i = 0; i < covariances.size(); ++i) {
    const Cov& c = covariances[i];
    EXPECT_NEAR(linear[i].k, c.q12, tol);
    EXPECT_NEAR(linear[i].d12, 1, tol);
    EXPECT_NEAR(linear[i].d11, 0, tol);
    EXPECT_NEAR(quadratic[i].k, c.q11 * c.q22 + 2 * c.q12 * c.q12, tol * 10);
    EXPECT_NEAR(quadratic[i].d11, c.q22, tol * 10);
    EXPECT_NEAR(quadratic[i].d12, 4 * c.q12, tol * 10);
  }
}

TEST(GaussianKernel, DerivativesMatchFiniteDifferences) {
  if (!test::is_double()) GTEST_SKIP() << "central differences need double";
  expect_derivatives(gaussian_kernels::Erf{}, 1e-8);
  expect_derivatives(gaussian_kernels::Relu{}, 1e-8);
  expect_derivatives(polynomial({0.2, -0.5, 0.3, 0.25, 0, -0.1}, {0, 1, 0, 0.5}), 1e-8);
  expect_derivatives(polynomial({0, 0, 0, 0, 0, 0, 0, 0, 0.01}, {0.3, 0, 0.2, 0, 0.1}), 1e-8);
}

// The pair form against the reference form at correlations up to ±0.999 and scales 10⁻³ … 10³ (and
// the zero units of relu), to a few roundings; and its derivatives against finite differences.
template <class Kernel>
void expect_pair_form_agrees(const Kernel& kernel, double tolerance) {
  std::vector<Cov> points = covariances;
  for (double rho : {-0.999, -0.9, -0.71, -0.5, -0.1, 0.0, 0.2, 0.7, 0.72, 0.95, 0.999})
    for (double scale : {1e-3, 0.3, 1.0, 7.0, 1e3}) {
      const double q11 = scale, q22 = 1.3 / scale + 0.2;
      points.push_back({q11, rho * std::sqrt(q11 * q22), q22});
    }
  points.push_back({0, 0, 1.5});
  points.push_back({2, 0, 0});
  const auto ref = evaluate(kernel, points), pair = evaluate(PairForm<Kernel>{kernel}, points);
  double worst = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double e[3] = {std::fabs(pair[i].k - ref[i].k) / (1 + std::fabs(ref[i].k)),
                         std::fabs(pair[i].d11 - ref[i].d11) / (1 + std::fabs(ref[i].d11)),
                         std::fabs(pair[i].d12 - ref[i].d12) / (1 + std::fabs(ref[i].d12))};
    for (double v : e) {
      EXPECT_LE(v, tolerance) << "point " << i;
      worst = std::max(worst, v);
    }
  }
  std::printf("max relative |pair form - reference| = %.2e\n", worst);
  if (test::is_double()) expect_derivatives(PairForm<Kernel>{kernel}, 1e-8);
}

TEST(GaussianKernel, PairFormAgreesWithTheReference) {
  const double tolerance = test::tol(1e-13, 1e-4);
  expect_pair_form_agrees(gaussian_kernels::Erf{}, tolerance);
  expect_pair_form_agrees(gaussian_kernels::Relu{}, tolerance);
}

// The kernels without a pair form (the polynomials, the Hermite links) go through their reference
// form, bitwise, with prepared factors 0; Erf and Relu through their pair form.
TEST(GaussianKernel, PairOfPicksThePairFormWhereAKernelHasOne) {
  using namespace gaussian_kernels;
  static_assert(has_pair_form<Erf>::value && has_pair_form<Relu>::value);
  static_assert(!has_pair_form<Polynomial>::value &&
                !has_pair_form<HermiteLink<ErfMoments>>::value &&
                !has_pair_form<HermiteLink<ReluMoments>>::value);
  Polynomial polynomial;
  polynomial.degree = 2;
  polynomial.c[0] = polynomial.other[0] = real(0.3);
  polynomial.c[1] = real(1), polynomial.other[1] = real(-0.7);
  polynomial.c[2] = polynomial.other[2] = real(0.5);
  HermiteLink<ErfMoments> link;
  link.degree = 2;
  link.c[1] = real(0.4), link.c[2] = real(1.1);
  const real q11 = real(0.8), q12 = real(0.3), q22 = real(1.4);
  auto expect_reference = [&](const auto& kernel) {
    EXPECT_EQ(prepare_of(kernel, q11), real(0));
    const KernelValue a =
        pair_of(kernel, q11, prepare_of(kernel, q11), q12, q22, prepare_of(kernel, q22));
    const KernelValue b = kernel(q11, q12, q22);
    EXPECT_EQ(a.k, b.k);
    EXPECT_EQ(a.d11, b.d11);
    EXPECT_EQ(a.d12, b.d12);
  };
  expect_reference(polynomial);
  expect_reference(link);
  const Erf erf;
  EXPECT_EQ(prepare_of(erf, q11), Erf::prepare(q11));
  const KernelValue a = pair_of(erf, q11, Erf::prepare(q11), q12, q22, Erf::prepare(q22));
  EXPECT_EQ(a.k, erf.pair(q11, Erf::prepare(q11), q12, q22, Erf::prepare(q22)).k);
}

}  // namespace
}  // namespace mfsim

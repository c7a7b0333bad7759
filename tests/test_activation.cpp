// σ' and σ'' of every activation against central finite differences of σ (MATH.md §1.3).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "helpers.hpp"
#include "mfsim/core/activation.hpp"

namespace mfsim {
namespace {

struct Values {
  double s, ds, dds;
};

// (A named function template: CUDA forbids device lambdas inside generic lambdas.)
template <class Act>
void evaluate_kernel(Act act, Vector u, Vector s, Vector ds, Vector dds, Vector s1, Vector ds1,
                     Vector value) {
  Kokkos::parallel_for(
      "test::activation", Kokkos::RangePolicy<ExecSpace>(0, u.extent(0)), KOKKOS_LAMBDA(int i) {
        real a0, a1, a2, b0, b1;
        act.eval(u(i), a0, a1, a2);
        act.eval(u(i), b0, b1);
        s(i) = a0, ds(i) = a1, dds(i) = a2, s1(i) = b0, ds1(i) = b1;
        value(i) = act.value(u(i));
      });
}

// Evaluates the activation in a kernel, so that the device code path is the one tested.
std::vector<Values> evaluate(const Activation& a, const std::vector<double>& points) {
  Vector u("u", points.size()), s("s", points.size()), ds("ds", points.size()),
      dds("dds", points.size()), s1("s1", points.size()), ds1("ds1", points.size()),
      value("value", points.size());
  auto uh = Kokkos::create_mirror_view(u);
  for (std::size_t i = 0; i < points.size(); ++i) uh(i) = real(points[i]);
  Kokkos::deep_copy(u, uh);
  with_activation(a, [&](auto act) { evaluate_kernel(act, u, s, ds, dds, s1, ds1, value); });
  const auto hs = test::host(s), hds = test::host(ds), hdds = test::host(dds), hs1 = test::host(s1),
             hds1 = test::host(ds1), hv = test::host(value);
  std::vector<Values> out;
  for (std::size_t i = 0; i < points.size(); ++i) {
    // The two- and three-output forms and value() must agree exactly.
    EXPECT_EQ(hs[i], hs1[i]);
    EXPECT_EQ(hds[i], hds1[i]);
    EXPECT_EQ(hs[i], hv[i]);
    out.push_back({hs[i], hds[i], hdds[i]});
  }
  return out;
}

class SmoothActivation : public ::testing::TestWithParam<std::string> {};

TEST_P(SmoothActivation, DerivativesMatchFiniteDifferences) {
  Activation a{parse_activation(GetParam()), real(2.5), {0.3, -0.5, 0.2, 0.1, -0.05}};
  const std::vector<double> points = {-3.1, -1.2, -0.4, 0.05, 0.7, 1.9, 3.3};
  const double h = test::is_double() ? 1e-5 : 1e-2;
  std::vector<double> shifted;
  for (double x : points)
    for (double d : {-h, h}) shifted.push_back(x + d);
  const auto centre = evaluate(a, points), side = evaluate(a, shifted);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double fd1 = (side[2 * i + 1].s - side[2 * i].s) / (2 * h);
    const double fd2 = (side[2 * i + 1].ds - side[2 * i].ds) / (2 * h);
    const double t = test::tol(1e-8, 2e-3);
    EXPECT_NEAR(centre[i].ds, fd1, t * (1 + std::fabs(fd1))) << GetParam() << " at " << points[i];
    EXPECT_NEAR(centre[i].dds, fd2, t * (1 + std::fabs(fd2))) << GetParam() << " at " << points[i];
  }
}

INSTANTIATE_TEST_SUITE_P(All, SmoothActivation,
                         ::testing::Values("tanh", "sigmoid", "softplus", "erf", "gelu", "linear",
                                           "quadratic", "hermite"));

TEST(Activation, ClosedFormValues) {
  const auto tanh_v = evaluate({ActivationKind::tanh, 1}, {0.5});
  EXPECT_NEAR(tanh_v[0].s, std::tanh(0.5), 1e-7);
  const auto gelu = evaluate({ActivationKind::gelu, 1}, {1.0});
  EXPECT_NEAR(gelu[0].s, 0.8413447460685429, 1e-7);  // Φ(1)
  const auto erf_v = evaluate({ActivationKind::erf, 1}, {0.0});
  EXPECT_NEAR(erf_v[0].ds, 2 / std::sqrt(M_PI), 1e-7);
  const auto sig = evaluate({ActivationKind::sigmoid, 1}, {0.0});
  EXPECT_NEAR(sig[0].s, 0.5, 1e-7);
  EXPECT_NEAR(sig[0].ds, 0.25, 1e-7);
}

// The polynomials against their definitions: linear and quadratic exactly, He_k by its explicit
// form (MATH.md §2.8), a series by the sum of those.
TEST(Activation, PolynomialsAreTheirHermiteSeries) {
  const std::vector<double> u = {-2.5, -0.3, 0.0, 0.7, 1.9};
  const auto lin = evaluate({ActivationKind::linear, 1}, u);
  const auto quad = evaluate({ActivationKind::quadratic, 1}, u);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const double x = double(real(u[i]));
    EXPECT_EQ(lin[i].s, x);
    EXPECT_EQ(lin[i].ds, 1.0);
    EXPECT_EQ(lin[i].dds, 0.0);
    EXPECT_EQ(quad[i].s, double(real(x) * real(x)));
    EXPECT_EQ(quad[i].ds, double(2 * real(x)));
    EXPECT_EQ(quad[i].dds, 2.0);
  }
  // He_3 = u³ − 3u, He_4 = u⁴ − 6u² + 3, He_8 = u⁸ − 28u⁶ + 210u⁴ − 420u² + 105.
  auto he3 = [](double x) {
    return x * x * x - 3 * x;
  };
  auto he4 = [](double x) {
    return x * x * x * x - 6 * x * x + 3;
  };
  auto he8 = [](double x) {
    const double y = x * x;
    return (((y - 28) * y + 210) * y - 420) * y + 105;
  };
  Activation series{ActivationKind::hermite, 1, {0.5, 0, 0, -1.5, 0.25, 0, 0, 0, 0.01}};
  const auto v = evaluate(series, u);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const double x = double(real(u[i]));
    const double expected = 0.5 - 1.5 * he3(x) + 0.25 * he4(x) + 0.01 * he8(x);
    EXPECT_NEAR(v[i].s, expected, test::tol(1e-12, 1e-4) * (1 + std::fabs(expected))) << x;
  }
  EXPECT_EQ(hermite_coefficients({ActivationKind::quadratic, 1}), (std::vector<double>{1, 0, 1}));
  EXPECT_THROW(hermite_coefficients({ActivationKind::tanh, 1}), std::logic_error);
  EXPECT_THROW(polynomial_activation({ActivationKind::hermite, 1}), std::logic_error);
}

TEST(Activation, ReluIsPiecewiseLinear) {
  const auto v = evaluate({ActivationKind::relu, 1}, {-2.0, -0.0, 0.0, 3.0});
  EXPECT_EQ(v[0].s, 0.0);
  EXPECT_EQ(v[0].ds, 0.0);
  EXPECT_EQ(v[2].ds, 0.0);  // σ'(0) = 0 by convention
  EXPECT_EQ(v[3].s, 3.0);
  EXPECT_EQ(v[3].ds, 1.0);
  EXPECT_EQ(v[3].dds, 0.0);
  EXPECT_FALSE(is_twice_differentiable(ActivationKind::relu));
  EXPECT_TRUE(is_twice_differentiable(ActivationKind::softplus));
}

TEST(Activation, SoftplusIsStableAndApproachesRelu) {
  const auto v = evaluate({ActivationKind::softplus, 50}, {-40.0, -1.0, 1.0, 40.0});
  for (const auto& x : v) EXPECT_TRUE(std::isfinite(x.s) && std::isfinite(x.ds));
  EXPECT_NEAR(v[0].s, 0.0, 1e-12);
  EXPECT_NEAR(v[1].s, std::log1p(std::exp(-50.0)) / 50, 1e-12);
  EXPECT_NEAR(v[2].s, 1.0, 1e-7);
  EXPECT_NEAR(v[3].s, 40.0, 1e-5);
  EXPECT_NEAR(v[3].ds, 1.0, 1e-12);
}

TEST(Activation, ParsingAndNames) {
  for (const auto& name : activation_names())
    EXPECT_EQ(activation_name(parse_activation(name)), name);
  EXPECT_THROW(parse_activation("swish"), std::exception);
}

}  // namespace
}  // namespace mfsim

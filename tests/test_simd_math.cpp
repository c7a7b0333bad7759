// simd_math::tanh against the C library in higher precision (long double for double, double for
// float): the accuracy bound stated in core/simd_math.hpp, exact signs and limits, NaN; and
// simd_math::asin_with_cos against the C library's arcsine in higher precision.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "helpers.hpp"
#include "mfsim/core/math.hpp"
#include "mfsim/core/simd_math.hpp"

namespace mfsim {
namespace {

// Evaluates in a kernel, so that the device code path is the one tested.
std::vector<double> simd_tanh(const std::vector<double>& points) {
  Vector u("u", points.size()), t("t", points.size());
  auto uh = Kokkos::create_mirror_view(u);
  for (std::size_t i = 0; i < points.size(); ++i) uh(i) = real(points[i]);
  Kokkos::deep_copy(u, uh);
  Kokkos::parallel_for(
      "test::simd_tanh", Kokkos::RangePolicy<ExecSpace>(0, u.extent(0)),
      KOKKOS_LAMBDA(int i) { t(i) = simd_math::tanh(u(i)); });
  return test::host(t);
}

// |value − reference| in units of the spacing of `real` at the reference.
double ulps(double value, long double reference) {
  const real r = real(reference);
  const real up = std::nextafter(std::fabs(r), std::numeric_limits<real>::infinity());
  const real spacing = up - std::fabs(r);
  return double(std::fabs((long double)value - reference) / spacing);
}

long double reference_tanh(real x) {
  if constexpr (sizeof(real) == sizeof(double))
    return std::tanh((long double)x);
  else
    return std::tanh(double(x));
}

TEST(SimdMath, TanhIsWithinThreeUlpsOnTheWholeLine) {
  std::vector<double> points;
  for (double x = -25; x <= 25; x += 1.0 / 1024 + 1e-7) points.push_back(x);  // non-dyadic grid
  for (double x = 1e-300; x < 1; x *= 1.7) points.push_back(x), points.push_back(-x);
  for (double x :
       {0.34657359, 0.34657360, 0.6931471805599453, 9.01, 18.7, 19.99, 20.0, 20.01, 355.0, 1e10})
    points.push_back(x);
  std::vector<double> as_real;
  for (double x : points) as_real.push_back(double(real(x)));
  const auto t = simd_tanh(as_real);
  double worst = 0, worst_x = 0;
  for (std::size_t i = 0; i < as_real.size(); ++i) {
    const double e = ulps(t[i], reference_tanh(real(as_real[i])));
    if (e > worst) worst = e, worst_x = as_real[i];
  }
  EXPECT_LE(worst, 3.0) << "at x = " << worst_x;
}

TEST(SimdMath, TanhHasExactSignsLimitsAndPropagatesNan) {
  const double inf = std::numeric_limits<double>::infinity();
  const auto t = simd_tanh({0.0, -0.0, inf, -inf, 1e300, -1e300, 21.0, -21.0,
                            std::numeric_limits<double>::quiet_NaN(), 0.75, -0.75});
  EXPECT_EQ(t[0], 0.0);
  EXPECT_FALSE(std::signbit(t[0]));
  EXPECT_EQ(t[1], 0.0);
  EXPECT_TRUE(std::signbit(t[1]));
  EXPECT_EQ(t[2], 1.0);
  EXPECT_EQ(t[3], -1.0);
  EXPECT_EQ(t[4], 1.0);
  EXPECT_EQ(t[5], -1.0);
  EXPECT_EQ(t[6], 1.0);
  EXPECT_EQ(t[7], -1.0);
  EXPECT_TRUE(std::isnan(t[8]));
  EXPECT_EQ(t[9], -t[10]);  // odd, exactly
}

std::vector<double> simd_asin(const std::vector<double>& points) {
  Vector u("u", points.size()), t("t", points.size());
  auto uh = Kokkos::create_mirror_view(u);
  for (std::size_t i = 0; i < points.size(); ++i) uh(i) = real(points[i]);
  Kokkos::deep_copy(u, uh);
  Kokkos::parallel_for(
      "test::simd_asin", Kokkos::RangePolicy<ExecSpace>(0, u.extent(0)), KOKKOS_LAMBDA(int i) {
        const real s = u(i);
        t(i) = simd_math::asin_with_cos(s, math::sqrt((1 - s) * (1 + s)));
      });
  return test::host(t);
}

TEST(SimdMath, AsinIsWithinThreeUlpsOnTheInterval) {
  std::vector<double> points;
  for (double s = -1; s <= 1; s += 1.0 / 4096 + 1e-9) points.push_back(s);  // non-dyadic grid
  for (double s = 1e-300; s < 1; s *= 1.7) points.push_back(s), points.push_back(-s);
  for (double s : {0.7071067811865475, 0.7071067811865476, 0.714, 0.99999999, 1.0, -1.0, 0.0})
    points.push_back(s);
  std::vector<double> as_real;
  for (double s : points) as_real.push_back(double(real(s)));
  const auto t = simd_asin(as_real);
  double worst = 0, worst_s = 0;
  for (std::size_t i = 0; i < as_real.size(); ++i) {
    const real s = real(as_real[i]);
    const long double reference =
        sizeof(real) == sizeof(double) ? std::asin((long double)s) : std::asin(double(s));
    const double e = ulps(t[i], reference);
    if (e > worst) worst = e, worst_s = as_real[i];
  }
  EXPECT_LE(worst, 3.0) << "at s = " << worst_s;
  std::printf("asin_with_cos: max error %.2f ulp\n", worst);
}

}  // namespace
}  // namespace mfsim

#pragma once
// Device-callable math: Kokkos 3.4 (Debian) keeps these in Kokkos::Experimental, Kokkos 4 in
// Kokkos. This is the only place that knows the difference.
#include <Kokkos_Core.hpp>

namespace mfsim::math {

#if KOKKOS_VERSION >= 40000
using Kokkos::acos;
using Kokkos::asin;
using Kokkos::cos;
using Kokkos::erf;
using Kokkos::erfc;
using Kokkos::exp;
using Kokkos::fabs;
using Kokkos::isfinite;
using Kokkos::log;
using Kokkos::log1p;
using Kokkos::sin;
using Kokkos::sqrt;
using Kokkos::tanh;
#else
using Kokkos::Experimental::acos;
using Kokkos::Experimental::asin;
using Kokkos::Experimental::cos;
using Kokkos::Experimental::erf;
using Kokkos::Experimental::erfc;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::fabs;
using Kokkos::Experimental::isfinite;
using Kokkos::Experimental::log;
using Kokkos::Experimental::log1p;
using Kokkos::Experimental::sin;
using Kokkos::Experimental::sqrt;
using Kokkos::Experimental::tanh;
#endif

inline constexpr double pi = 3.14159265358979323846;
inline constexpr double sqrt2 = 1.41421356237309504880;
inline constexpr double two_over_sqrt_pi = 1.12837916709551257390;  // 2/√π
inline constexpr double inv_sqrt_2pi = 0.39894228040143267794;      // 1/√(2π)

template <class T>
KOKKOS_INLINE_FUNCTION constexpr T square(T x) {
  return x * x;
}

}  // namespace mfsim::math

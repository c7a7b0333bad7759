#pragma once
// Branch-free tanh, expm1 and arcsine that compilers vectorise (glibc's scalar tanh is the
// bottleneck of the pair kernels, and its vector version libmvec is only declared under
// -ffast-math, which mfsim never uses: the non-finite detection relies on isfinite).
//
// Method: y = 2|x| is reduced as y = k ln2 + r with |r| ≤ ln2/2 (k = round(y/ln2) by the
// 1.5·2^52 "shifter", which also yields 2^k's exponent bits, so there is no float→int conversion
// that AVX2 lacks); expm1(r) is its Taylor polynomial (degree 13 in double, 7 in float: truncation
// below 0.1 ulp resp. 0.25 ulp); expm1(y) = 2^k expm1(r) + (2^k − 1) with one FMA; and
// tanh|x| = expm1(2|x|) / (expm1(2|x|) + 2), which keeps full relative accuracy near 0.
// Accuracy (tests/test_simd_math.cpp, against a long-double reference): ≤ 3 ulp for double and
// ≤ 3 ulp for float over the whole line, exact ±0, ±1 beyond |x| = 20, NaN propagated.
// Device code: only arithmetic, comparisons and a memcpy bit cast (as Kokkos' own bit_cast).
#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstring>

namespace mfsim::simd_math {
namespace detail {

template <class To, class From>
KOKKOS_INLINE_FUNCTION To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
}

template <class T>
struct Ieee;

template <>
struct Ieee<double> {
  using Bits = std::uint64_t;
  static constexpr int mantissa_bits = 52;
  static constexpr Bits bias = 1023;
  static constexpr double shifter = 0x1.8p52;  // adding it rounds to an integer in the low bits
  static constexpr double log2e = 0x1.71547652b82fep0;
  static constexpr double ln2_hi = 0x1.62e42fefa3800p-1;   // 1 + 8 trailing zero bits: k·ln2_hi
  static constexpr double ln2_lo = 0x1.ef35793c76730p-45;  // is exact for the k used here
};

template <>
struct Ieee<float> {
  using Bits = std::uint32_t;
  static constexpr int mantissa_bits = 23;
  static constexpr Bits bias = 127;
  static constexpr float shifter = 0x1.8p23f;
  static constexpr float log2e = 0x1.715476p0f;
  static constexpr float ln2_hi = 0x1.62e400p-1f;
  static constexpr float ln2_lo = 0x1.7f7d1cp-20f;
};

// expm1(r) − r ≈ r²·q(r) for |r| ≤ ln2/2, q the near-minimax polynomial of the relative error of
// expm1 (Lawson-weighted least squares in 256-bit arithmetic, mpmath; benchmarks/README.md):
// 0.16 ulp in double with 10 coefficients, 0.22 ulp in float with 5 — two fewer terms than the
// Taylor series of the same accuracy. Horner: the loops that call this are throughput-bound.
KOKKOS_INLINE_FUNCTION double expm1_tail(double r) {
  double q = 0x1.ae6bdede4080ep-26;
  q = q * r + 0x1.28a1d7bfb01b1p-22;
  q = q * r + 0x1.71de87dd862adp-19;
  q = q * r + 0x1.a019a776d54aep-16;
  q = q * r + 0x1.a01a0175295e5p-13;
  q = q * r + 0x1.6c16c17ed9733p-10;
  q = q * r + 0x1.1111111118f6cp-7;
  q = q * r + 0x1.55555555522bfp-5;
  q = q * r + 0x1.555555555553ap-3;
  q = q * r + 0x1.0000000000005p-1;
  return r * r * q;
}

KOKKOS_INLINE_FUNCTION float expm1_tail(float r) {
  float q = 0x1.6bebe2p-10f;
  q = q * r + 0x1.12276ap-7f;
  q = q * r + 0x1.555674p-5f;
  q = q * r + 0x1.5554b0p-3f;
  q = q * r + 0x1.fffffep-2f;
  return r * r * q;
}

}  // namespace detail

// expm1(y) for 0 ≤ y ≤ 40 (or NaN): the range tanh needs; 2^k stays a normal number.
template <class T>
KOKKOS_INLINE_FUNCTION T expm1_bounded(T y) {
  using C = detail::Ieee<T>;
  using Bits = typename C::Bits;
  const T kd = y * C::log2e + C::shifter;
  const T k = kd - C::shifter;
  T r = y - k * C::ln2_hi;
  r = r - k * C::ln2_lo;
  const T p = r + detail::expm1_tail(r);
  // kd's low mantissa bits hold k (+ the shifter's 2^(mantissa_bits−1), shifted out below).
  const Bits scale_bits = (detail::bit_cast<Bits>(kd) + C::bias) << C::mantissa_bits;
  const T scale = detail::bit_cast<T>(scale_bits);  // 2^k
  return scale * p + (scale - T(1));
}

// (Signs by bit masks and the range limit as a select of values: branch-free, so that the loops
// calling this vectorise. GCC needs -fno-trapping-math for that, which CMake sets.)
template <class T>
KOKKOS_INLINE_FUNCTION T tanh(T x) {
  using Bits = typename detail::Ieee<T>::Bits;
  constexpr Bits sign_bit = Bits(1) << (8 * sizeof(T) - 1);
  const Bits bits = detail::bit_cast<Bits>(x);
  const T ax = detail::bit_cast<T>(bits & ~sign_bit);
  T y = ax + ax;
  y = T(40) < y ? T(40) : y;  // tanh(20) rounds to 1 in both precisions; NaN stays NaN
  const T e = expm1_bounded(y);
  const T t = e / (e + T(2));
  return detail::bit_cast<T>(detail::bit_cast<Bits>(t) | (bits & sign_bit));
}

// asin(x) − x ≈ x³·p(x²) for |x| ≤ 0.714 (x² ≤ 0.51): p the degree-17 interpolant of
// (asin √z − √z)/z^{3/2} at the Chebyshev nodes of [0, 0.51] (mpmath, 60 digits; 1.3 ulp in
// double by Horner); its even and odd parts in z are two independent Horner
// chains in z² (half the latency of one). Float evaluates the same polynomial in float.
template <class T>
KOKKOS_INLINE_FUNCTION T asin_small(T x) {
  const T z = x * x, z2 = z * z;
  T e = T(-0x1.56f948ae0ba0cp+1);
  e = e * z2 + T(-0x1.26b0d92da235ep+2);
  e = e * z2 + T(-0x1.9e34ed4cbf45ap+0);
  e = e * z2 + T(-0x1.4731d24f9393cp-3);
  e = e * z2 + T(0x1.1dfc9af7d7bc4p-8);
  e = e * z2 + T(0x1.c7eedc7255fd5p-7);
  e = e * z2 + T(0x1.6e8b2cb7a2134p-6);
  e = e * z2 + T(0x1.6db6db698ba1cp-5);
  e = e * z2 + T(0x1.5555555555551p-3);
  T o = T(0x1.84ffdb1059bd0p-1);
  o = o * z2 + T(0x1.1f58a960ab034p+2);
  o = o * z2 + T(0x1.9df7482c0ad14p+1);
  o = o * z2 + T(0x1.37b98da126b7bp-1);
  o = o * z2 + T(0x1.617c0b38d6596p-5);
  o = o * z2 + T(0x1.8ec3533ef22bfp-7);
  o = o * z2 + T(0x1.1c5afe41a32aap-6);
  o = o * z2 + T(0x1.f1c71f2690ca2p-6);
  o = o * z2 + T(0x1.3333333335bcbp-4);
  return x + x * (z * (e + z * o));
}

// asin(s) given also c = √(1 − s²) ≥ 0 (the callers have it): the polynomial at min(|s|, c) ≤ 1/√2,
// and asin|s| = π/2 − asin(c) where |s| > c, which stays accurate as |s| → 1 (no cancellation in
// 1 − |s|). Selects only: vectorises. Within 2.4 ulp of asin on [−1, 1] in double
// (tests/test_simd_math.cpp).
template <class T>
KOKKOS_INLINE_FUNCTION T asin_with_cos(T s, T c) {
  const T as = s < T(0) ? -s : s;
  const bool small = as <= c;
  const T y = asin_small(small ? as : c);
  const T a = small ? y : T(1.57079632679489661923) - y;
  return s < T(0) ? -a : a;
}

}  // namespace mfsim::simd_math

#pragma once
// Closed-form Gaussian kernels K(q11, q12, q22) = E[σ(u) σ'(v)] for centred jointly Gaussian
// (u, v) with Var u = q11, Cov(u, v) = q12, Var v = q22, and the two partial derivatives the
// population velocity needs, ∂K/∂q11 and ∂K/∂q12 (MATH.md §2.8). Device functions.
//
// Each kernel has the reference form operator()(q11, q12, q22). Erf and Relu also have a pair
// form, pair(q11, p11, q12, q22, p22) with p = prepare(q) computed once per particle (erf:
// 1/√(1 + 2q), relu: 1/√q), which leaves one square root and no arcsine call of libm per pair:
// branch-free code that vectorises over the lanes of a register block (simd_math::asin_with_cos).
// The two agree to a few roundings (tests/test_gaussian_kernels.cpp). The pair kernel calls
// prepare_of and pair_of (end of this file), which use the pair form where a kernel has one and
// the reference form with p = 0 where it has none (the polynomial kernels).
#include <type_traits>
#include <utility>

#include "mfsim/core/activation.hpp"
#include "mfsim/core/math.hpp"
#include "mfsim/core/simd_math.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

// K and its derivatives in the first variance and in the covariance.
struct KernelValue {
  real k = 0, d11 = 0, d12 = 0;
};

namespace gaussian_kernels {

// erf: the arcsine kernel, K = (2/π) arcsin(2 q12 / √((1 + 2 q11)(1 + 2 q22))).
struct Erf {
  KOKKOS_INLINE_FUNCTION KernelValue operator()(real q11, real q12, real q22) const {
    const real A = 1 + 2 * q11, B = 1 + 2 * q22;
    // AB − 4 q12² ≥ 1 + 2(q11 + q22) > 0 whenever q12² ≤ q11 q22; max() only guards rounding.
    const real det = A * B - 4 * q12 * q12;
    const real D = math::sqrt(det > real(1e-30) ? det : real(1e-30));
    const real inv_pi = real(1 / math::pi);
    KernelValue r;
    r.k = 2 * inv_pi * math::asin(clamp_unit(2 * q12 / math::sqrt(A * B)));
    r.d12 = 4 * inv_pi / D;
    r.d11 = -4 * inv_pi * q12 / (A * D);
    return r;
  }
  KOKKOS_INLINE_FUNCTION static real clamp_unit(real s) {
    return s > real(1) ? real(1) : (s < real(-1) ? real(-1) : s);
  }

  KOKKOS_INLINE_FUNCTION static real prepare(real q) { return 1 / math::sqrt(1 + 2 * q); }
  // With r = 1/√A, 1/√B: s = 2 q12 r11 r22 the arcsine's argument, D = √(1 − s²)/(r11 r22), so
  // K_2 = (4/π) r11 r22/√(1 − s²) and K_1 = −q12 r11² K_2. The floor of 1 − s² is the reference's
  // det ≥ 1e−30 in these units.
  KOKKOS_INLINE_FUNCTION KernelValue pair(real, real r11, real q12, real, real r22) const {
    const real t = r11 * r22, s = clamp_unit(2 * q12 * t);
    const real c2 = (1 - s) * (1 + s), floor = real(1e-30) * t * t;
    const real c = math::sqrt(c2 > floor ? c2 : floor);
    KernelValue r;
    r.k = real(2 / math::pi) * simd_math::asin_with_cos(s, c);
    r.d12 = real(4 / math::pi) * t / c;
    r.d11 = -q12 * (r11 * r11) * r.d12;
    return r;
  }
};

// relu: the arc-cosine kernel of order 1, K = (n + q12 (π − arccos ρ)) / (2π) with
// n = √(q11 q22 − q12²), ρ = q12/√(q11 q22).
struct Relu {
  KOKKOS_INLINE_FUNCTION KernelValue operator()(real q11, real q12, real q22) const {
    KernelValue r;
    const real qq = q11 * q22;
    if (!(q11 > real(0)) || !(q22 > real(0))) return r;  // a zero unit: σ(0) = 0 identically
    // n² = q11 q22 − q12² cancels for (nearly) parallel units: below a few roundings of q11 q22
    // it is noise, and the pair is taken as parallel (n = 0; the error in K is O(n³), in ∂K/∂q11
    // at most √(4ε q22/q11)/(4π)). The angle comes from the same n (not from ρ), so that
    // n − q12·(π − angle) cancels to O(n³) as it does exactly.
    const real n2 = qq - q12 * q12;
    const real eps = real(sizeof(real) == sizeof(double) ? 2.220446049250313e-16 : 1.1920929e-7);
    const real n = n2 > 4 * eps * qq ? math::sqrt(n2) : real(0);
    // arccos ρ = asin(n/√(q11 q22)) for q12 ≥ 0, π − that for q12 < 0.
    const real tilt = math::asin(n / math::sqrt(qq));
    const real angle = q12 >= real(0) ? real(math::pi) - tilt : tilt;  // π − arccos ρ
    const real inv_2pi = real(1 / (2 * math::pi));
    r.k = inv_2pi * (n + q12 * angle);
    r.d12 = inv_2pi * angle;
    r.d11 = inv_2pi * n / (2 * q11);
    return r;
  }

  KOKKOS_INLINE_FUNCTION static real prepare(real q) {
    return q > real(0) ? 1 / math::sqrt(q) : real(0);
  }
  // The same with ρ_1 = 1/√q11, ρ_2 = 1/√q22: the tilt's sine n ρ_1 ρ_2 and cosine |q12| ρ_1 ρ_2
  // are both at hand, K_1 = n ρ_1²/(4π); selects instead of the early return.
  KOKKOS_INLINE_FUNCTION KernelValue pair(real q11, real rho1, real q12, real q22,
                                          real rho2) const {
    const real qq = q11 * q22, n2 = qq - q12 * q12;
    const real eps = real(sizeof(real) == sizeof(double) ? 2.220446049250313e-16 : 1.1920929e-7);
    const real n = math::sqrt(n2 > 4 * eps * qq ? n2 : real(0));
    const real t = rho1 * rho2, cosine = (q12 < real(0) ? -q12 : q12) * t;
    const real tilt = simd_math::asin_with_cos(n * t, cosine);
    const real angle = q12 >= real(0) ? real(math::pi) - tilt : tilt;  // π − arccos ρ
    const real inv_2pi = real(1 / (2 * math::pi));
    const bool live = q11 > real(0) && q22 > real(0);  // else a zero unit: everything 0
    KernelValue r;
    r.k = live ? inv_2pi * (n + q12 * angle) : real(0);
    r.d12 = live ? inv_2pi * angle : real(0);
    r.d11 = live ? real(0.5) * inv_2pi * n * (rho1 * rho1) : real(0);
    return r;
  }
};

// b_n(q) = Σ_i c_{n+2i} (q − 1)^i (n+2i)!/(n! i! 2^i) and db = b_n'(q) for σ = Σ_{i ≤ degree} c_i
// He_i: n! b_n(q) = E[σ^{(n)}(u)] for u ~ N(0, q) (MATH.md §2.8).
KOKKOS_INLINE_FUNCTION void hermite_scaled(const real* coef, int degree, int n, real q, real& b,
                                           real& db) {
  b = 0;
  db = 0;
  real ratio = 1;   // (n+2i)!/(n! i! 2^i), from i to i + 1: × (n+2i+1)(n+2i+2)/((i+1)·2)
  real power = 1;   // (q − 1)^i
  real dpower = 0;  // d/dq (q − 1)^i
  for (int i = 0; n + 2 * i <= degree; ++i) {
    b += coef[n + 2 * i] * ratio * power;
    db += coef[n + 2 * i] * ratio * dpower;
    dpower = dpower * (q - 1) + power;
    power *= (q - 1);
    ratio *= real((n + 2 * i + 1) * (n + 2 * i + 2)) / real(2 * (i + 1));
  }
}

// σ = Σ_{i ≤ degree} c_i He_i (probabilists' Hermite), against σ' = Σ other_i He_i:
// K = Σ_n n! q12^n b_n(q11) b'_n(q22). linear (c = (0, 1)) and quadratic (c = (1, 0, 1)) are the
// special cases of MATH.md §2.8.
struct Polynomial {
  int degree = 0;                           // max of the two degrees
  real c[max_hermite_degree + 1] = {};      // the first activation (the student)
  real other[max_hermite_degree + 1] = {};  // the second one

  KOKKOS_INLINE_FUNCTION KernelValue operator()(real q11, real q12, real q22) const {
    KernelValue r;
    real factorial = 1;  // n!
    real power = 1;      // q12^n
    real dpower = 0;     // n q12^{n−1}
    for (int n = 0; n <= degree; ++n) {
      if (n > 0) factorial *= real(n);
      real b1, db1, b2, db2;
      hermite_scaled(c, degree, n, q11, b1, db1);
      hermite_scaled(other, degree, n, q22, b2, db2);
      r.k += factorial * power * b1 * b2;
      r.d11 += factorial * power * db1 * b2;
      r.d12 += factorial * dpower * b1 * b2;
      dpower = dpower * q12 + power;
      power *= q12;
    }
    return r;
  }
};

// The Gaussian derivative moments M_n(q) = E[σ^{(n)}(u)], u ~ N(0, q), n = 0 … count − 1, of erf
// and relu (MATH.md §2.8): erf M_{2j+1} = (2/√π) s^{−1/2} (−1)^j (2j)!/(j! s^j) with s = 1 + 2q,
// M_{2j} = 0; relu M_0 = √(q/(2π)), M_1 = ½, M_{k+2} = φ_q^{(k)}(0)·(−1)^k =
// (2πq)^{−1/2} (−1/q)^{k/2} (k−1)!! for even k, 0 for odd k.
struct ErfMoments {
  KOKKOS_INLINE_FUNCTION void operator()(real q, int count, real* M) const {
    const real s = 1 + 2 * q;
    real term = real(math::two_over_sqrt_pi) / math::sqrt(s);  // j = 0
    for (int n = 0; n < count; ++n) M[n] = 0;
    for (int j = 0; 2 * j + 1 < count; ++j) {
      M[2 * j + 1] = term;
      term *= -real((2 * j + 1) * (2 * j + 2)) / (real(j + 1) * s);  // (2j)!/j! → (2j+2)!/(j+1)!
    }
  }
};

struct ReluMoments {
  KOKKOS_INLINE_FUNCTION void operator()(real q, int count, real* M) const {
    const real inv_sqrt_2pi = real(math::inv_sqrt_2pi);
    for (int n = 0; n < count; ++n) M[n] = 0;
    if (!(q > real(0))) return;  // a zero unit: σ(0·x) ≡ 0, its w-gradient taken as 0 (as Relu)
    if (count > 0) M[0] = inv_sqrt_2pi * math::sqrt(q);
    if (count > 1) M[1] = real(0.5);
    real term = inv_sqrt_2pi / math::sqrt(q);  // k = 0: φ_q(0)
    for (int k = 0; k + 2 < count; k += 2) {
      M[k + 2] = term;
      term *= -real(k + 1) / q;  // (−1/q)^{k/2} (k−1)!! → k + 2
    }
  }
};

// E[σ(u) g(v)] for σ = erf or relu (its Moments) and a Hermite series g = Σ_{i ≤ degree} c_i He_i
// (a single-index teacher's link): K = Σ_n q12^n M_n(q11) b_n(q22), K_1 = ½ Σ_n q12^n M_{n+2} b_n
// (the heat equation ∂_q E[f(u)] = ½E[f''(u)]), K_2 = Σ_n n q12^{n−1} M_n b_n (MATH.md §2.8).
template <class Moments>
struct HermiteLink {
  int degree = 0;
  real c[max_hermite_degree + 1] = {};  // g's coefficients
  Moments moments;

  KOKKOS_INLINE_FUNCTION KernelValue operator()(real q11, real q12, real q22) const {
    KernelValue r;
    real M[max_hermite_degree + 3];
    moments(q11, degree + 3, M);
    real power = 1, dpower = 0;  // q12^n, n q12^{n−1}
    for (int n = 0; n <= degree; ++n) {
      real b, db;
      hermite_scaled(c, degree, n, q22, b, db);
      r.k += power * M[n] * b;
      r.d11 += real(0.5) * power * M[n + 2] * b;
      r.d12 += dpower * M[n] * b;
      dpower = dpower * q12 + power;
      power *= q12;
    }
    return r;
  }
};

// Whether Kernel has a pair form: a static prepare(q) and pair(q11, p11, q12, q22, p22).
template <class Kernel, class = void>
struct has_pair_form : std::false_type {};
template <class Kernel>
struct has_pair_form<Kernel, std::void_t<decltype(Kernel::prepare(real())),
                                         decltype(std::declval<const Kernel&>().pair(
                                             real(), real(), real(), real(), real()))>>
    : std::true_type {};

// The per-particle factor p of the pair form, 0 for a kernel without one.
template <class Kernel>
KOKKOS_INLINE_FUNCTION real prepare_of(const Kernel&, real q) {
  if constexpr (has_pair_form<Kernel>::value)
    return Kernel::prepare(q);
  else
    return 0;
}

// K and its derivatives at one pair: the pair form where the kernel has one (p = prepare_of(q)),
// else the reference form (p ignored).
template <class Kernel>
KOKKOS_INLINE_FUNCTION KernelValue pair_of(const Kernel& kernel, real q11, real p11, real q12,
                                           real q22, real p22) {
  if constexpr (has_pair_form<Kernel>::value)
    return kernel.pair(q11, p11, q12, q22, p22);
  else
    return kernel(q11, q12, q22);
}

}  // namespace gaussian_kernels
}  // namespace mfsim

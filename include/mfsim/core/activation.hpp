#pragma once
// Activation functions σ with σ' and σ'' as device functions (MATH.md §1.3).
//
// Each activation is a small functor; kernels are templated on it so that the compiler inlines and
// vectorises σ inside the pair loops. `with_activation` turns the runtime choice into that type
// once, on the host, outside every kernel.
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "mfsim/core/math.hpp"
#include "mfsim/core/simd_math.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

// linear, quadratic and hermite are the polynomial activations: σ = Σ_i c_i He_i (probabilists'
// Hermite polynomials), linear σ = u, quadratic σ = u², hermite with the config's coefficients.
enum class ActivationKind { relu, tanh, sigmoid, softplus, erf, gelu, linear, quadratic, hermite };

// The highest degree of a polynomial activation.
inline constexpr int max_hermite_degree = 8;

// Host-side description of an activation (the config's choice).
struct Activation {
  ActivationKind kind = ActivationKind::tanh;
  real kappa = 1;               // softplus sharpness
  std::vector<double> hermite;  // kind hermite: c_0 … c_p, p ≤ max_hermite_degree

  Activation() = default;
  Activation(ActivationKind kind_, real kappa_, std::vector<double> hermite_ = {})
      : kind(kind_), kappa(kappa_), hermite(std::move(hermite_)) {}
};

ActivationKind parse_activation(const std::string& name);  // throws InputError
std::string activation_name(ActivationKind kind);
const std::vector<std::string>& activation_names();
// False for ReLU, whose σ'' is a Dirac mass: Laplacians and transport KL are undefined.
bool is_twice_differentiable(ActivationKind kind);
bool is_polynomial(ActivationKind kind);
// The Hermite coefficients c_0 … c_p of a polynomial activation (linear: (0, 1); quadratic:
// (1, 0, 1), since u² = He_2 + He_0); throws std::logic_error for the others.
std::vector<double> hermite_coefficients(const Activation& a);

namespace activations {

struct Relu {
  KOKKOS_INLINE_FUNCTION real value(real u) const { return u > real(0) ? u : real(0); }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    s = value(u);
    ds = u > real(0) ? real(1) : real(0);
  }
  // σ'' = δ(u) as a distribution; 0 almost everywhere is what a pointwise evaluation returns.
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    eval(u, s, ds);
    dds = 0;
  }
};

// simd_math::tanh (≤ 3 ulp, vectorisable) rather than the scalar library call: the pair kernels
// spend most of their time here.
struct Tanh {
  KOKKOS_INLINE_FUNCTION real value(real u) const { return simd_math::tanh(u); }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    s = simd_math::tanh(u);
    ds = real(1) - s * s;
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    eval(u, s, ds);
    dds = real(-2) * s * ds;
  }
};

struct Sigmoid {
  KOKKOS_INLINE_FUNCTION real value(real u) const { return real(1) / (real(1) + math::exp(-u)); }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    s = value(u);
    ds = s * (real(1) - s);
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    eval(u, s, ds);
    dds = ds * (real(1) - real(2) * s);
  }
};

// softplus_κ(u) = log(1 + e^{κu})/κ, written to neither overflow nor cancel for large |κu|.
struct Softplus {
  real kappa = 1;
  KOKKOS_INLINE_FUNCTION real value(real u) const {
    const real ku = kappa * u;
    const real pos = ku > real(0) ? ku : real(0);
    return (pos + math::log1p(math::exp(-math::fabs(ku)))) / kappa;
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    s = value(u);
    ds = real(1) / (real(1) + math::exp(-kappa * u));
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    eval(u, s, ds);
    dds = kappa * ds * (real(1) - ds);
  }
};

struct Erf {
  KOKKOS_INLINE_FUNCTION real value(real u) const { return math::erf(u); }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    s = math::erf(u);
    ds = real(math::two_over_sqrt_pi) * math::exp(-u * u);
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    eval(u, s, ds);
    dds = real(-2) * u * ds;
  }
};

// GELU(u) = u Φ(u) with the exact normal cdf Φ (not the tanh approximation).
struct Gelu {
  KOKKOS_INLINE_FUNCTION real value(real u) const {
    return u * real(0.5) * math::erfc(-u / real(math::sqrt2));
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    const real cdf = real(0.5) * math::erfc(-u / real(math::sqrt2));
    const real pdf = real(math::inv_sqrt_2pi) * math::exp(real(-0.5) * u * u);
    s = u * cdf;
    ds = cdf + u * pdf;
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    const real cdf = real(0.5) * math::erfc(-u / real(math::sqrt2));
    const real pdf = real(math::inv_sqrt_2pi) * math::exp(real(-0.5) * u * u);
    s = u * cdf;
    ds = cdf + u * pdf;
    dds = pdf * (real(2) - u * u);
  }
};

// A polynomial σ(u) = Σ_i p_i u^i, evaluated by Horner's scheme in the monomial basis (so that
// linear and quadratic are exactly u and u²): the polynomial activations (polynomial_activation).
struct Polynomial {
  int degree = 0;
  real p[max_hermite_degree + 1] = {};
  KOKKOS_INLINE_FUNCTION real value(real u) const {
    real s = p[degree];
    for (int i = degree - 1; i >= 0; --i) s = s * u + p[i];
    return s;
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds) const {
    real dds;
    eval(u, s, ds, dds);
  }
  KOKKOS_INLINE_FUNCTION void eval(real u, real& s, real& ds, real& dds) const {
    s = p[degree];
    ds = 0;
    dds = 0;
    for (int i = degree - 1; i >= 0; --i) {
      dds = dds * u + 2 * ds;
      ds = ds * u + s;
      s = s * u + p[i];
    }
  }
};

}  // namespace activations

// The monomial form of a polynomial activation (hermite_coefficients converted exactly as far as
// rounding allows: He_i has integer coefficients).
activations::Polynomial polynomial_activation(const Activation& a);

// Calls f(functor) with the functor type of `a`; f is typically a generic lambda that launches a
// kernel templated on the activation.
template <class F>
decltype(auto) with_activation(const Activation& a, F&& f) {
  switch (a.kind) {
    case ActivationKind::relu:
      return f(activations::Relu{});
    case ActivationKind::tanh:
      return f(activations::Tanh{});
    case ActivationKind::sigmoid:
      return f(activations::Sigmoid{});
    case ActivationKind::softplus:
      return f(activations::Softplus{a.kappa});
    case ActivationKind::erf:
      return f(activations::Erf{});
    case ActivationKind::linear:
    case ActivationKind::quadratic:
    case ActivationKind::hermite:
      return f(polynomial_activation(a));
    case ActivationKind::gelu:
      break;
  }
  return f(activations::Gelu{});
}

}  // namespace mfsim

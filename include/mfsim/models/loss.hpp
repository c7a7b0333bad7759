#pragma once
// The per-sample loss ℓ(f, y) of the empirical risk L = (1/n) Σ_i ℓ(f(x_i), y_i) and its derivative
// ℓ'(f, y) = ∂ℓ/∂f, which weighs each sample in the velocity field, the potential Ψ and the
// dissipation identity (MATH.md (A3), (A5), (A11) with r_i = ℓ'(f_i, y_i)):
//   square    ℓ = (f − y)²/2,        ℓ' = f − y           (any real y; the default)
//   logistic  ℓ = log(1 + e^{−yf}),  ℓ' = −y / (1 + e^{yf}) (labels y = ±1; Chizat–Bach 2020)
// The logistic loss is evaluated as softplus(−yf) = max(−yf, 0) + log1p(e^{−|yf|}), exact for any
// |f| (no overflow, no cancellation).
#include <string>
#include <vector>

#include "mfsim/core/math.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

enum class LossKind { square, logistic };
LossKind parse_loss(const std::string& name);  // throws InputError
const std::string& loss_name(LossKind kind);
const std::vector<std::string>& loss_names();
// Whether the loss needs labels ±1.
inline bool needs_signed_labels(LossKind kind) {
  return kind == LossKind::logistic;
}

KOKKOS_INLINE_FUNCTION double logistic_loss(double f, double y) {
  const double u = -y * f;
  return (u > 0 ? u : 0.0) + math::log1p(math::exp(-math::fabs(u)));
}

KOKKOS_INLINE_FUNCTION double logistic_derivative(double f, double y) {
  // −y σ(−yf), with σ(u) = 1/(1 + e^{−u}) evaluated on the side where e^{...} ≤ 1.
  const double u = -y * f;
  const double sigma = u >= 0 ? 1 / (1 + math::exp(-u)) : math::exp(u) / (1 + math::exp(u));
  return -y * sigma;
}

// dl(i) = ℓ'(f(i), y(i)); returns (1/n) Σ ℓ(f(i), y(i)) (0 for n = 0). dl may alias f. The square
// loss computes r = f − y and |r|²/(2n) in the order of the square-loss-only code it replaced, so
// that its results are bitwise the same.
// Runs on `space` and waits for it (the loss is read on the host); without it, the default
// instance.
double loss_and_derivative(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                           Vector dl);
double loss_and_derivative(LossKind kind, ConstVector f, ConstVector y, Vector dl);
// (1/n) Σ ℓ(f(i), y(i)) without the derivative; `scratch` (length n) is overwritten.
double mean_loss(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                 Vector scratch);
double mean_loss(LossKind kind, ConstVector f, ConstVector y, Vector scratch);

}  // namespace mfsim

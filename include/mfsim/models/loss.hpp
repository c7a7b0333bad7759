#pragma once
// The per-sample loss ℓ(f, y) of the empirical risk L = (1/n) Σ_i ℓ(f(x_i), y_i) and its derivative
// ℓ'(f, y) = ∂ℓ/∂f, which weighs each sample in the velocity field, the potential Ψ and the
// dissipation identity (MATH.md (A3), (A5), (A11) with r_i = ℓ'(f_i, y_i)):
//   square    ℓ = (f − y)²/2,        ℓ' = f − y           (any real y; the default)
//   logistic  ℓ = log(1 + e^{−yf}),  ℓ' = −y / (1 + e^{yf}) (labels y = ±1; Chizat–Bach 2020)
// The logistic loss is evaluated as softplus(−yf) = max(−yf, 0) + log1p(e^{−|yf|}), exact for any
// |f| (no overflow, no cancellation).
// With c = model.outputs > 1 outputs, f(x_i) ∈ R^c and r_i = ∇_f ℓ ∈ R^c, stored flat (entry
// i·c + j; MATH.md §1.5):
//   square         ℓ = |f − y|²/2, r = f − y                  (targets y_i ∈ R^c, stored flat)
//   cross_entropy  ℓ = log Σ_j e^{f_j} − f_y, r = softmax(f) − e_y   (class labels y ∈ {0..c−1})
// Cross-entropy is evaluated as M + log Σ_j e^{f_j − M} with M = max_j f_j (no overflow).
#include <string>
#include <vector>

#include "mfsim/core/math.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

enum class LossKind { square, logistic, cross_entropy };
LossKind parse_loss(const std::string& name);  // throws InputError
const std::string& loss_name(LossKind kind);
const std::vector<std::string>& loss_names();
// The empirical risk as /parameters/flow_scaling states it ("L = |f(x)-y|^2/(2n)", ...).
std::string loss_formula(LossKind kind);
// Whether the loss needs labels ±1.
inline bool needs_signed_labels(LossKind kind) {
  return kind == LossKind::logistic;
}
// Whether the loss needs class labels 0 … c−1 (one per sample, whatever c).
inline bool needs_class_labels(LossKind kind) {
  return kind == LossKind::cross_entropy;
}
// Whether the loss classifies (accuracy and margin observables).
inline bool classifies(LossKind kind) {
  return kind != LossKind::square;
}
// Target values per sample: one label for the classification losses, c targets for the square
// loss.
inline int targets_per_sample(LossKind kind, int outputs) {
  return kind == LossKind::square ? outputs : 1;
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

// Cross-entropy of one sample: the c outputs f[0 … c−1] and its class y; with `grad`, also writes
// softmax(f) − e_y there (grad may alias f).
KOKKOS_INLINE_FUNCTION double cross_entropy(const real* f, int c, int y, real* grad) {
  double top = f[0];
  for (int j = 1; j < c; ++j) top = f[j] > top ? double(f[j]) : top;
  double sum = 0;
  for (int j = 0; j < c; ++j) sum += math::exp(double(f[j]) - top);
  const double loss = top + math::log(sum) - double(f[y]);
  if (grad)
    for (int j = 0; j < c; ++j)
      grad[j] = real(math::exp(double(f[j]) - top) / sum - (j == y ? 1.0 : 0.0));
  return loss;
}

// dl = ∇_f ℓ sample by sample; returns (1/n) Σ ℓ(f(x_i), y_i) (0 for n = 0), for n samples of
// `outputs` values each (f and dl hold n·outputs values, y n·targets_per_sample). dl may alias f.
// The scalar square loss computes r = f − y and |r|²/(2n) in the order of the square-loss-only
// code it replaced, so that its results are bitwise the same.
// Runs on `space` and waits for it (the loss is read on the host); without it, the default
// instance.
double loss_and_derivative(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                           Vector dl, int outputs = 1);
double loss_and_derivative(LossKind kind, ConstVector f, ConstVector y, Vector dl, int outputs = 1);
// (1/n) Σ ℓ(f(i), y(i)) without the derivative; `scratch` (the size of f) is overwritten.
double mean_loss(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                 Vector scratch, int outputs = 1);
double mean_loss(LossKind kind, ConstVector f, ConstVector y, Vector scratch, int outputs = 1);

}  // namespace mfsim

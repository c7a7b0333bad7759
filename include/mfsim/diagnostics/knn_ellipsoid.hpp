#pragma once
// The geometric k-nearest-neighbour entropy estimate of Lord, Sun & Bollt ("Geometric k-nearest
// neighbor estimation of entropy and mutual information", Chaos 28, 033114, 2018): the
// Kozachenko–Leonenko estimate with each point's k-NN ball replaced by the ellipsoid of its
// neighbourhood's principal axes, for laws concentrated near lower-dimensional sets (trained laws),
// where a ball around a point holds mostly empty space and the ball estimate of the density is far
// too low (MATH.md §5.3):
//   Ĥ = ψ(N) − ψ(k) + (1/N) Σ_i log vol(E_i),
// E_i centred at x_i with the axes e_l and semi-axes s_i √λ_l of the eigen-decomposition of
// C_i = (1/k) Σ_j (y_j − x_i)(y_j − x_i)ᵀ over x_i's k nearest neighbours y_j, scaled (s_i) to
// the smallest ellipsoid that holds them all; λ_l is floored at 10⁻¹² of the largest. Needs
// k > D (a full-rank C_i); brute-force neighbours, O(N²·D) work, O(N·k) memory.
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"

namespace mfsim {

inline constexpr int knn_ellipsoid_max_dim = 16, knn_ellipsoid_max_k = 48;

// Ĥ with its standard error (the spread of the per-point log-volumes over √N). Throws
// std::invalid_argument unless D ≤ knn_ellipsoid_max_dim and D < k ≤ knn_ellipsoid_max_k < N.
Estimate entropy_knn_ellipsoid(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch);

// KL(P || N(0, I_D)) = −Ĥ + (D/2) log 2π + (1/2N) Σ_i |x_i|² with Ĥ above.
Estimate kl_knn_ellipsoid_standard_normal(const ExecSpace& space, ConstMatrix x, int k,
                                          Workspace& scratch);

// The fitted ellipsoid is the smallest that holds the k neighbours, so the count inside it is not
// the ball's, and ψ(N) − ψ(k) leaves a bias that depends on N and D and hardly on the law (the
// calibration: +0.60 in D = 7 at N = 2048 for Gaussian, Ornstein–Uhlenbeck and mildly folded
// laws alike). mfsim subtracts it, measured on N fresh draws of ρ₀ (and N/2 for the halving
// check): once per (N, D), kept here.
struct EllipsoidReference {
  Estimate full;    // kl_knn_ellipsoid_standard_normal on N draws of N(0, I_D)
  double half = 0;  // the same on the first N/2 of them
  int k = 0;        // the neighbours of the estimate: 2D + 1 (a full-rank local covariance)
};
EllipsoidReference ellipsoid_reference(const ExecSpace& space, index_t n, int dim,
                                       const ReferenceDraws& draws, Workspace& scratch);

// kl_knn_ellipsoid: the geometric estimate less its reference value, with its standard error
// (both samples' combined) and its halving check (the mean over both halves of each half's
// estimate, less the reference's value at N/2). Needs N ≥ 2 (2D + 2), D ≤ knn_ellipsoid_max_dim.
struct EllipsoidKl {
  Estimate kl;
  double half = 0;
};
EllipsoidKl kl_knn_ellipsoid(const ExecSpace& space, ConstMatrix x,
                             const EllipsoidReference& reference, Workspace& scratch);

// Whether kl_knn_ellipsoid applies to N points in D dimensions.
inline bool knn_ellipsoid_applies(index_t n, int dim) {
  return dim <= knn_ellipsoid_max_dim && n >= 2 * (2 * dim + 2);
}

}  // namespace mfsim

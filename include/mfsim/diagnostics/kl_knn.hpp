#pragma once
// k-nearest-neighbour estimators of KL(P || Q) from samples (MATH.md §5.3).
//
// Both work on *whitened* points: the diagnostics divide each coordinate by the std of the
// Gaussian initial law (GroupSpec::init_std), which maps the reference law to N(0, I_D) and leaves
// KL unchanged (it is invariant under a bijection applied to both laws) while making Euclidean
// neighbourhoods match the law's shape.
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim {

// Kozachenko–Leonenko one-sample estimate of KL(P || N(0, I_D)) from the rows x_i of `x` ~ P:
//   KL = −Ĥ + (D/2) log 2π + (1/2N) Σ_i |x_i|²,
//   Ĥ  = ψ(N) − ψ(k) + log V_D + (D/N) Σ_i log ε_k(i),   V_D = π^{D/2} / Γ(D/2 + 1),
// ε_k(i) the distance from x_i to its k-th nearest neighbour among the other N − 1 rows.
// Every estimator here runs on `space` (the overloads without one: the default instance) and
// returns when its value is known.
double kl_knn_standard_normal(const ExecSpace& space, ConstMatrix x, int k);
double kl_knn_standard_normal(ConstMatrix x, int k);

// The Kozachenko–Leonenko entropy estimate Ĥ above (differential entropy, nats) of the law of the
// rows of x; the neighbour distances and panels live in `scratch`.
double entropy_knn(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch);
double entropy_knn(ConstMatrix x, int k, Workspace& scratch);

// Wang–Kulkarni–Verdú two-sample estimate of KL(P || Q) from the rows of `x` ~ P (N of them) and
// of `y` ~ Q (M):
//   KL = (D/N) Σ_i log( ν_k(i) / ρ_k(i) ) + log( M' / (N − 1) ),
// ρ_k(i) the k-th neighbour distance of x_i among the other rows of x, ν_k(i) among the rows of y.
// With `paired`, y_i is the counterpart of x_i (the same particle at t = 0) and is left out of
// x_i's candidates, M' = M − 1: then y \ {y_i} is independent of x_i in the mean-field limit, and
// the estimate is exactly 0 when x = y. Otherwise M' = M.
double kl_knn_two_sample(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k, bool paired);
double kl_knn_two_sample(ConstMatrix x, ConstMatrix y, int k, bool paired);

// Both estimates above (y, k and paired as for kl_knn_two_sample) from one search of x among itself
// (ε_k = ρ_k): two neighbour searches instead of three.
struct KlKnnEstimates {
  double standard_normal, two_sample;
};
// The distances and packed panels live in `scratch`.
KlKnnEstimates kl_knn_estimates(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k,
                                bool paired, Workspace& scratch);
KlKnnEstimates kl_knn_estimates(ConstMatrix x, ConstMatrix y, int k, bool paired,
                                Workspace& scratch);

// ψ(x) = Γ'(x)/Γ(x) for x > 0.
double digamma(double x);

}  // namespace mfsim

#pragma once
// k-nearest-neighbour estimators of KL(P || Q) and of the entropy from samples (MATH.md §5.3),
// each with its standard error and the halving checks on which its reliability flag rests
// (kl_reliability.hpp).
//
// They work on *whitened* points: the diagnostics divide each coordinate by the std of the
// Gaussian initial law (GroupSpec::init_std), which maps the reference law to N(0, I_D) and leaves
// KL unchanged (it is invariant under a bijection applied to both laws) while making Euclidean
// neighbourhoods match the law's shape.
#include <cstdint>

#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim {

// An estimate that is the mean of N per-point terms plus a constant, with the sampling error of
// that mean, (spread of the terms)/√N. For the kNN estimators the terms are weakly dependent and
// carry the neighbour distances' own noise (ψ'(k) per term), so this over- rather than
// under-states their variance; it says nothing about their bias (the halving checks do).
struct Estimate {
  double value = 0, standard_error = 0;
};

// Kozachenko–Leonenko one-sample estimate of KL(P || N(0, I_D)) from the rows x_i of `x` ~ P:
//   KL = −Ĥ + (D/2) log 2π + (1/2N) Σ_i |x_i|²,
//   Ĥ  = ψ(N) − ψ(k) + log V_D + (D/N) Σ_i log ε_k(i),   V_D = π^{D/2} / Γ(D/2 + 1),
// ε_k(i) the distance from x_i to its k-th nearest neighbour among the other N − 1 rows.
// Every estimator here runs on `space` (the overloads without one: the default instance) and
// returns when its value is known; the distances and packed panels live in `scratch`.
Estimate kl_knn_standard_normal(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch);
Estimate kl_knn_standard_normal(ConstMatrix x, int k);

// The Kozachenko–Leonenko entropy estimate Ĥ above (differential entropy, nats) of the law of the
// rows of x.
Estimate entropy_knn(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch);
Estimate entropy_knn(ConstMatrix x, int k, Workspace& scratch);

// Wang–Kulkarni–Verdú two-sample estimate of KL(P || Q) from the rows of `x` ~ P (N of them) and
// of `y` ~ Q (M):
//   KL = (D/N) Σ_i log( ν_k(i) / ρ_k(i) ) + log( M' / (N − 1) ),
// ρ_k(i) the k-th neighbour distance of x_i among the other rows of x, ν_k(i) among the rows of y.
// With `paired`, y_i is the counterpart of x_i (the same particle at t = 0) and is left out of
// x_i's candidates, M' = M − 1; otherwise M' = M.
Estimate kl_knn_two_sample(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k, bool paired,
                           Workspace& scratch);
Estimate kl_knn_two_sample(ConstMatrix x, ConstMatrix y, int k, bool paired);

// The standard-normal draws of the streamed two-sample estimate: draw j of `stream` is
// (normal(stream·2⁴⁰ + j, c))_c of CounterRng(seed, rng_reference).
struct ReferenceDraws {
  std::uint64_t seed = 0, stream = 0;
  index_t count = 0;  // M, the number of draws
};

// out's rows [0, rows) = the draws [first, first + rows) of `draws` (out: rows × D).
void generate_reference_draws(const ExecSpace& space, const ReferenceDraws& draws, index_t first,
                              index_t rows, Matrix out);

// The kNN estimates of KL(P || N(0, I_D)) of the rows of x, and the halving check of the
// one-sample estimates: the same from half the particles (the mean over the two contiguous
// halves, whose k-th neighbours are searched within each half). A kNN estimate's bias falls as its
// sample grows, so a change on halving measures it (kl_reliability.hpp).
struct KnnKlEstimates {
  Estimate one_sample;         // Kozachenko–Leonenko against the known N(0, I_D)
  Estimate two_sample;         // Wang–Kulkarni–Verdú against M fresh draws of N(0, I_D)
  double one_sample_half = 0;  // one_sample from N/2 particles (NaN where N/2 ≤ k)
  Estimate entropy;            // the Kozachenko–Leonenko entropy Ĥ of x
  double entropy_half = 0;     // Ĥ from N/2 particles
};

// The draws are generated in chunks of max(N, 1024) rows and streamed through the neighbour
// search (merge_nearest_neighbours), never stored at once. With draws.count = 0 the two-sample
// estimate stays 0 (the one-sample estimates and the entropy only). Needs N > k and, with draws,
// M ≥ k.
KnnKlEstimates knn_kl_estimates(const ExecSpace& space, ConstMatrix x, int k,
                                const ReferenceDraws& draws, Workspace& scratch);

// The Kozachenko–Leonenko estimate of KL(N(0, I_D) || N(0, I_D)) = 0 from the first n draws of
// `draws` (stored at once: n × D, the size of the particles): the one-sample estimator's bias at
// ρ₀ for n points in D dimensions, its least bias on the laws near ρ₀.
double reference_bias(const ExecSpace& space, index_t n, int dim, int k,
                      const ReferenceDraws& draws, Workspace& scratch);

// ψ(x) = Γ'(x)/Γ(x) for x > 0.
double digamma(double x);

}  // namespace mfsim

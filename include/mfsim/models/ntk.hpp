#pragma once
// The infinite-width (NTK) reference Gram of a two-layer unit at its Gaussian initial law
// (MATH.md §2.6), for λ₀ = λ_min(K).
//
// A unit h(x; θ) = a σ(w·x + b) with a ~ N(0, σ_a²), w ~ N(0, σ_w² I), b ~ N(0, σ_b²) independent
// has, for m → ∞, G(τ₀)/β² → K with
//
//   K(x, x') = E[σ(u)σ(u')] + σ_a² (x·x' + 1[bias]) E[σ'(u)σ'(u')],   u = w·x + b, u' = w·x' + b,
//
// (u, u') centred Gaussian with Var u = σ_w²|x|² + σ_b² [bias], Cov(u, u') = σ_w² x·x' + σ_b²
// [bias]. The expectations are closed forms for ReLU (arc-cosine kernels, Cho–Saul) and erf
// (Williams), and a 2-D Gauss–Hermite rule for the other activations (exponentially convergent for
// analytic σ; slower for softplus with a large κ, whose kink-like σ' limits the rule's accuracy).
#include <vector>

#include "mfsim/core/activation.hpp"

namespace mfsim {

struct TwoLayerKernelSpec {
  Activation activation;
  double std_a = 1, std_w = 1, std_b = 1;
  bool bias = true;
};

// Nodes per dimension of the Gauss–Hermite rule for activations without a closed form.
// 64 gives ~1e−7 relative for tanh at unit scale (1e−9 at 96); softplus with κ = 10 only ~1e−2.
inline constexpr int ntk_quadrature_nodes = 64;

// kernel(i, j) = K(x_i, x_j) for every pair of rows of x, on the execution-space instance `space`
// (without it, the default instance). With `force_quadrature`, ReLU and erf also go through the
// quadrature (tests compare it with the closed forms).
void two_layer_kernel(const ExecSpace& space, const TwoLayerKernelSpec& spec, ConstMatrix x,
                      Matrix kernel, bool force_quadrature = false,
                      int nodes = ntk_quadrature_nodes);
inline void two_layer_kernel(const TwoLayerKernelSpec& spec, ConstMatrix x, Matrix kernel,
                             bool force_quadrature = false, int nodes = ntk_quadrature_nodes) {
  two_layer_kernel(ExecSpace(), spec, x, kernel, force_quadrature, nodes);
}

// The n-point Gauss–Hermite rule for the standard normal weight: Σ_j w_j g(z_j) ≈ E[g(Z)],
// Z ~ N(0, 1), exact for polynomials of degree < 2n (Golub–Welsch).
void gauss_hermite(int n, std::vector<double>& nodes, std::vector<double>& weights);

}  // namespace mfsim

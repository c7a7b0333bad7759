#pragma once
// Pair kernels of a two-layer unit a σ(w·x + b) over a set of inputs: model A itself, and the head
// of the ResNet (model B), whose inputs are the last layer's states z_L.
#include <string>

#include "mfsim/core/types.hpp"
#include "mfsim/diagnostics/gram_kernel.hpp"

namespace mfsim::detail {

// f(x_i) = scale · Σ_k a_k σ(w_k·x_i + b_k) over the rows of theta = (a, w, [b]); one team per
// sample.
template <class Act>
void two_layer_forward(const std::string& label, ConstMatrix theta, ConstMatrix x, Vector f,
                       real scale, bool bias, Act act) {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  const int dim = int(x.extent(1));
  const index_t m = index_t(theta.extent(0));
  Kokkos::parallel_for(
      label, Policy(int(x.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t i = team.league_rank();
        real sum = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, m),
            [&](index_t k, real& acc) {
              real z = bias ? theta(k, dim + 1) : real(0);
              for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
              acc += theta(k, 0) * act.value(z);
            },
            sum);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { f(i) = scale * sum; });
      });
}

// v_k = −coeff Σ_i r_i ∇_θ[a σ(w·x_i + b)] (A5) and ΔΨ(θ_k) = coeff Σ_i r_i a σ''(z) norm2_i (A6),
// with norm2_i = |x_i|² (+1 with bias); one thread per particle.
template <bool WithLaplacian, class Act>
void two_layer_velocity(const std::string& label, ConstMatrix theta, ConstMatrix x, ConstVector r,
                        ConstVector norm2, Matrix v, Vector laplacian, real coeff, bool bias,
                        Act act) {
  const int dim = int(x.extent(1));
  const index_t n = index_t(x.extent(0));
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))), KOKKOS_LAMBDA(index_t k) {
        const real a = theta(k, 0);
        const real b = bias ? theta(k, dim + 1) : real(0);
        real va = 0, vb = 0, lap = 0;
        for (int c = 0; c < dim; ++c) v(k, c + 1) = 0;
        for (index_t i = 0; i < n; ++i) {
          real z = b;
          for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
          real s, ds, dds = 0;
          if constexpr (WithLaplacian) {
            act.eval(z, s, ds, dds);
          } else {
            act.eval(z, s, ds);
          }
          const real ri = r(i);
          va += ri * s;
          const real g = ri * a * ds;
          for (int c = 0; c < dim; ++c) v(k, c + 1) += g * x(i, c);
          vb += g;
          if constexpr (WithLaplacian) lap += ri * a * dds * norm2(i);
        }
        v(k, 0) = -coeff * va;
        for (int c = 0; c < dim; ++c) v(k, c + 1) *= -coeff;
        if (bias) v(k, dim + 1) = -coeff * vb;
        if constexpr (WithLaplacian) laplacian(k) = coeff * lap;
      });
}

// Gram features φ_{i,k} = scale · (σ(z), a σ'(z) x_i, a σ'(z) [bias]), z = w_k·x_i + b_k (A9;
// scale = β/√m), for accumulate_gram.
template <class Act>
struct TwoLayerFeatures {
  ConstMatrix theta, x;
  real scale;
  bool bias;
  Act act;

  int size() const { return int(theta.extent(1)); }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    const int dim = int(x.extent(1));
    real z = bias ? theta(k, dim + 1) : real(0);
    for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
    real s, ds;
    act.eval(z, s, ds);
    const real g = scale * theta(k, 0) * ds;
    phi[0] = scale * s;
    for (int c = 0; c < dim; ++c) phi[c + 1] = g * x(i, c);
    if (bias) phi[dim + 1] = g;
  }
};

// gram += Φ Φᵀ over the rows of theta, on the inputs x.
template <class Act>
void accumulate_two_layer_gram(ConstMatrix theta, ConstMatrix x, real scale, bool bias, Act act,
                               Matrix gram) {
  accumulate_gram(TwoLayerFeatures<Act>{theta, x, scale, bias, act}, index_t(theta.extent(0)),
                  gram);
}

}  // namespace mfsim::detail

#pragma once
// The Gram matrix G = ΦΦᵀ of per-particle gradient features (MATH.md §2.5, §3.6), accumulated
// without ever forming Φ (n × m·p).
//
// G_ij = Σ_k φ_{i,k}·φ_{j,k}, φ_{i,k} ∈ R^p the feature row of sample i and particle k (model A:
// φ = (β/√m) ∇_θ h(x_i; θ_k)). A model supplies a *feature functor*:
//
//   struct Features {
//     int size() const;                                    // p, called on the host
//     KOKKOS_INLINE_FUNCTION
//     void operator()(index_t i, index_t k, real* phi) const;  // writes φ_{i,k}[0..p)
//   };
//
// and calls accumulate_gram(features, particles, G). The functor is copied to the device: it holds
// views and scalars, and may call nothing virtual.
//
// Scheme (GPU-suitable, deterministic): the particles are taken in chunks of ~gram_panel_length/p.
// For each chunk, one kernel evaluates every feature of the chunk once into a panel P (n × C·p,
// stored transposed so that a feature's n values are contiguous), and a second adds the rank-C·p
// update P Pᵀ to G: one team per gram_tile² block of the upper triangle, each thread a 4×4
// micro-tile accumulated in registers (the outer-product form, which vectorises over j).
// Memory: O(n²) for G plus O(n·gram_panel_length) for the panel; work n·m feature evaluations
// and n²·m·p/2 multiply-adds. Every entry is summed by one thread in a fixed order: no atomics,
// bitwise reproducible, and G is exactly symmetric.
#include <algorithm>

#include "mfsim/core/types.hpp"

namespace mfsim {

inline constexpr int gram_tile = 32;           // rows of a team's block of G (multiple of 4)
inline constexpr int gram_panel_length = 512;  // features per sample held at a time (C·p)

// gram(i, j) += Σ_{k < particles} φ_{i,k}·φ_{j,k} for all i, j < gram.extent(0).
template <class Features>
void accumulate_gram(const Features& features, index_t particles, Matrix gram) {
  constexpr int micro = 4, per_side = gram_tile / micro;
  const index_t n = index_t(gram.extent(0));
  const int p = features.size();
  if (n == 0 || particles == 0 || p == 0) return;
  const index_t chunk = std::max<index_t>(1, std::min<index_t>(particles, gram_panel_length / p));
  const index_t padded = (n + micro - 1) / micro * micro;  // micro-tiles never leave the panel
  Matrix rows(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::Gram::features"), n,
              chunk * p);
  Matrix panel(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::Gram::panel"), chunk * p,
               padded);
  const index_t tiles = (n + gram_tile - 1) / gram_tile;
  using Team = Kokkos::TeamPolicy<ExecSpace>;
  for (index_t k0 = 0; k0 < particles; k0 += chunk) {
    const index_t count = std::min(chunk, particles - k0);
    const index_t length = count * p;
    Kokkos::parallel_for(
        "mfsim::Gram::features", Kokkos::RangePolicy<ExecSpace>(0, n * count),
        KOKKOS_LAMBDA(index_t e) {
          const index_t i = e / count, c = e % count;
          features(i, k0 + c, &rows(i, c * p));
        });
    Kokkos::parallel_for(
        "mfsim::Gram::transpose", Kokkos::RangePolicy<ExecSpace>(0, length * padded),
        KOKKOS_LAMBDA(index_t e) {
          const index_t l = e / padded, i = e % padded;
          panel(l, i) = i < n ? rows(i, l) : real(0);
        });
    Kokkos::parallel_for(
        "mfsim::Gram::rank_update", Team(int(tiles * tiles), Kokkos::AUTO),
        KOKKOS_LAMBDA(const Team::member_type& team) {
          const index_t bi = team.league_rank() / tiles, bj = team.league_rank() % tiles;
          if (bi > bj) return;  // the lower triangle is the transpose of the upper one
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, per_side * per_side), [&](int u) {
            const index_t i0 = bi * gram_tile + (u / per_side) * micro;
            const index_t j0 = bj * gram_tile + (u % per_side) * micro;
            if (i0 >= n || j0 >= n) return;
            real s[micro][micro] = {};
            for (index_t l = 0; l < length; ++l) {
              const real* x = &panel(l, i0);
              const real* y = &panel(l, j0);
              for (int r = 0; r < micro; ++r)
                for (int c = 0; c < micro; ++c) s[r][c] += x[r] * y[c];
            }
            for (int r = 0; r < micro; ++r)
              for (int c = 0; c < micro; ++c) {
                const index_t i = i0 + r, j = j0 + c;
                if (i < n && j < n) {
                  gram(i, j) += s[r][c];
                  if (bi != bj) gram(j, i) += s[r][c];
                }
              }
          });
        });
  }
}

}  // namespace mfsim

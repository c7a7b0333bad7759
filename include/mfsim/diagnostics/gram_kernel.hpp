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
// Scheme (GPU-suitable, deterministic): G is cut into blocks of gram_block_rows² entries, one team
// per block of the upper triangle. The team streams the particles through team scratch in chunks:
// it evaluates the features of its two row blocks for a chunk, then each thread adds its entries'
// dot products over the chunk to an accumulator in scratch. Memory is O(n²) for G plus
// O(rows·chunk·p) scratch per team. Each φ_{i,k} is evaluated once per block pair it belongs to (≈
// 2n/rows times), against n²·m·p/2 multiply-adds for the products. Every entry is summed by one
// thread in a fixed order: no atomics, bitwise reproducible.
#include <algorithm>

#include "mfsim/core/types.hpp"

namespace mfsim {

inline constexpr int gram_block_rows = 32;
// Scratch per team for the feature rows of a chunk, in reals (32 KiB in double).
inline constexpr int gram_scratch_reals = 4096;

// gram(i, j) += Σ_{k < particles} φ_{i,k}·φ_{j,k} for all i, j < gram.extent(0).
template <class Features>
void accumulate_gram(const Features& features, index_t particles, Matrix gram) {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Scratch = Kokkos::View<real*, ExecSpace::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  const index_t n = index_t(gram.extent(0));
  const int p = features.size();
  if (n == 0 || particles == 0 || p == 0) return;
  const int rows = int(std::min<index_t>(gram_block_rows, n));  // small n: no padded rows
  const int chunk = int(std::max<index_t>(
      1, std::min<index_t>({64, gram_scratch_reals / (2 * rows * p), particles})));
  const int block_reals = rows * chunk * p;
  const std::size_t bytes = 2 * Scratch::shmem_size(block_reals) + Scratch::shmem_size(rows * rows);
  // Level 0 (on-chip on a GPU) unless very wide features need more than it offers.
  const int level = bytes <= 40 * 1024 ? 0 : 1;
  const index_t blocks = (n + rows - 1) / rows;
  Policy policy(int(blocks * blocks), Kokkos::AUTO);
  policy.set_scratch_size(level, Kokkos::PerTeam(bytes));
  Kokkos::parallel_for(
      "mfsim::Gram::accumulate", policy, KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t bi = team.league_rank() / blocks, bj = team.league_rank() % blocks;
        if (bi > bj) return;  // the lower triangle is the transpose of the upper one
        const bool diagonal = bi == bj;
        Scratch phi_i(team.team_scratch(level), block_reals);
        Scratch phi_j(team.team_scratch(level), block_reals);
        Scratch acc(team.team_scratch(level), rows * rows);
        if (diagonal) phi_j = phi_i;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * rows),
                             [&](int e) { acc(e) = 0; });
        for (index_t k0 = 0; k0 < particles; k0 += chunk) {
          const int count = int(particles - k0 < chunk ? particles - k0 : chunk);
          team.team_barrier();
          // Feature rows, layout [row][particle][p]: a row's chunk is one contiguous run.
          const int per_block = rows * count;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, (diagonal ? 1 : 2) * per_block),
                               [&](int t) {
                                 const bool second = t >= per_block;
                                 const int r = (t % per_block) / count, c = t % count;
                                 real* phi = (second ? phi_j : phi_i).data() + (r * chunk + c) * p;
                                 const index_t i = (second ? bj : bi) * rows + r;
                                 if (i < n) {
                                   features(i, k0 + c, phi);
                                 } else {
                                   for (int q = 0; q < p; ++q) phi[q] = 0;
                                 }
                               });
          team.team_barrier();
          const int length = count * p;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * rows), [&](int e) {
            const real* x = phi_i.data() + (e / rows) * chunk * p;
            const real* y = phi_j.data() + (e % rows) * chunk * p;
            real s = 0;
            for (int q = 0; q < length; ++q) s += x[q] * y[q];
            acc(e) += s;
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * rows), [&](int e) {
          const index_t i = bi * rows + e / rows, j = bj * rows + e % rows;
          if (i < n && j < n) {
            gram(i, j) += acc(e);
            if (!diagonal) gram(j, i) += acc(e);
          }
        });
      });
}

}  // namespace mfsim

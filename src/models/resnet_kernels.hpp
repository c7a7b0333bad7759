#pragma once
// Pair kernels of the ResNet blocks (model B, MATH.md §3): the per-layer sums over particles of
// the forward and backward passes, and the per-particle sums over samples of the velocities.
// Private to resnet.cpp.
//
// Block particle θ = (u, w, b) (theta columns [0, d), [d, 2d), 2d) acts on a state z through
// π = w·z + b. The techniques of the two-layer kernels (two_layer_kernels.hpp): the pre-activations
// of `lanes` particles at a time in a vector loop with a compile-time trip count, σ (and σ') once
// per pair on that vector (simd_math's tanh vectorises), reductions per lane in a fixed order
// (bitwise reproducible, no atomics).
//
// - Per-sample sums (forward, backward, head adjoint): a layer's particles are first transposed
//   into a panel P(c, j) (coordinate c of particle j, zero-padded to whole `sample_sum_chunk`s), so
//   that a thread owning sample i reads P row by row, contiguous across particles — on a GPU all
//   threads of a team read the same addresses (broadcast).
// - Per-particle sums (velocities): a team owns a tile of particles of one layer in scratch,
//   transposed in blocks of `lanes`, and sweeps the samples in chunks, staging the weights of the
//   chunk's pairs in registers before the accumulations over coordinates.
#include <string>

#include "mfsim/core/pair_tiles.hpp"

namespace mfsim::detail {

using tiles::lanes;
using tiles::min_of;
using tiles::ScratchPanels;
using tiles::ScratchVector;
using ParticlePanel = Kokkos::View<real**, Kokkos::LayoutRight, MemSpace>;

// Particles of one per-sample pass held in registers at a time (σ of each staged once).
constexpr int sample_sum_chunk = 8 * lanes;

// P(c, j) = theta(first + j, c) for j < count, 0 for count ≤ j < padded width.
inline ParticlePanel transpose_particles(ConstMatrix theta, index_t first, index_t count) {
  const int cols = int(theta.extent(1));
  const index_t width = (count + sample_sum_chunk - 1) / sample_sum_chunk * sample_sum_chunk;
  ParticlePanel panel = uninitialized<ParticlePanel>("mfsim::ResNet::particle_panel", cols, width);
  Kokkos::parallel_for(
      "mfsim::ResNet::transpose_particles", Kokkos::RangePolicy<ExecSpace>(0, cols * width),
      KOKKOS_LAMBDA(index_t e) {
        const index_t c = e / width, j = e % width;
        panel(c, j) = j < count ? theta(first + j, c) : real(0);
      });
  return panel;
}

// What a per-sample pass sums: out(i, c) = scale Σ_j g_ij P(acc_row + c, j), c < d, with
//   forward       g = σ(π),            π from rows [d, 2d) and bias row 2d (block particles);
//   backward      g = (q_i·u) σ'(π),   u = rows [0, d);
//   head_adjoint  g = a σ'(v·z),       a = row 0, v = rows [1, 1 + d), no bias (head particles).
enum class SampleSum { forward, backward, head_adjoint };

template <SampleSum Kind, class Act>
void per_sample_sum(const std::string& label, ParticlePanel panel, ConstMatrix z, ConstMatrix q,
                    Matrix out, real scale, Act act) {
  // A thread owns `rows` samples: each vector of panel values it loads serves all of them.
  constexpr int rows = tiles::gpu ? 1 : 4, chunk = sample_sum_chunk, blocks = chunk / lanes;
  const index_t n = index_t(z.extent(0));
  const int d = int(z.extent(1));
  const index_t width = index_t(panel.extent(1));
  const int w_row = Kind == SampleSum::head_adjoint ? 1 : d;
  const int acc_row = Kind == SampleSum::forward ? 0 : Kind == SampleSum::backward ? d : 1;
  const bool bias = Kind != SampleSum::head_adjoint;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  constexpr int per_team = tiles::gpu ? 64 : rows;  // samples of a team
  const index_t stride = width;                     // between rows of the panel
  Kokkos::parallel_for(
      label, Policy(int((n + per_team - 1) / per_team), Kokkos::AUTO),
      KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t first = index_t(team.league_rank()) * per_team;
        const int threads = int((min_of<index_t>(per_team, n - first) + rows - 1) / rows);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, threads), [&](int t) {
          const index_t i0 = first + t * rows;
          const int live = int(min_of<index_t>(rows, n - i0));
          // Rows past n repeat the last sample; their sums are not written.
          const real* zs[rows];
          const real* qs[rows];
          for (int s = 0; s < rows; ++s) {
            const index_t i = i0 + (s < live ? s : live - 1);
            zs[s] = &z(i, 0);
            qs[s] = &q(i, 0);
          }
          for (int s = 0; s < live; ++s)
            for (int c = 0; c < d; ++c) out(i0 + s, c) = 0;
          const real* base = panel.data();
          for (index_t j0 = 0; j0 < width; j0 += chunk) {
            real g[rows][chunk];
            for (int b = 0; b < blocks; ++b) {
              const real* col = base + j0 + b * lanes;  // column j0 + b·lanes of the panel
              real pre[rows][lanes], qu[rows][lanes];
              for (int s = 0; s < rows; ++s) {
                MFSIM_LANES
                for (int l = 0; l < lanes; ++l) {
                  pre[s][l] = bias ? col[2 * d * stride + l] : real(0);
                  qu[s][l] = Kind == SampleSum::head_adjoint ? col[l] : real(0);
                }
              }
              for (int c = 0; c < d; ++c) {
                const real* w = col + (w_row + c) * stride;
                for (int s = 0; s < rows; ++s) {
                  const real zc = zs[s][c];
                  MFSIM_LANES
                  for (int l = 0; l < lanes; ++l) pre[s][l] += w[l] * zc;
                }
              }
              if constexpr (Kind == SampleSum::backward) {
                for (int c = 0; c < d; ++c) {
                  const real* u = col + c * stride;
                  for (int s = 0; s < rows; ++s) {
                    const real qc = qs[s][c];
                    MFSIM_LANES
                    for (int l = 0; l < lanes; ++l) qu[s][l] += u[l] * qc;
                  }
                }
              }
              for (int s = 0; s < rows; ++s) {
                MFSIM_LANES
                for (int l = 0; l < lanes; ++l) {
                  if constexpr (Kind == SampleSum::forward) {
                    g[s][b * lanes + l] = act.value(pre[s][l]);
                  } else {
                    real sv, ds;
                    act.eval(pre[s][l], sv, ds);
                    g[s][b * lanes + l] = qu[s][l] * ds;
                  }
                }
              }
            }
            for (int c = 0; c < d; ++c) {
              const real* a = base + (acc_row + c) * stride + j0;
              real acc[rows][lanes] = {};
              for (int b = 0; b < blocks; ++b)
                for (int s = 0; s < rows; ++s) {
                  MFSIM_LANES
                  for (int l = 0; l < lanes; ++l)
                    acc[s][l] += a[b * lanes + l] * g[s][b * lanes + l];
                }
              for (int s = 0; s < live; ++s) {
                real sum = 0;
                for (int l = 0; l < lanes; ++l) sum += acc[s][l];
                out(i0 + s, c) += sum;
              }
            }
          }
          for (int s = 0; s < live; ++s)
            for (int c = 0; c < d; ++c) out(i0 + s, c) *= scale;
        });
      });
}

// (B11)–(B12) for the blocks, every layer in one launch: v = −coeff Σ_i r_i (σ(π) q_{l+1,i},
// (q_{l+1,i}·u) σ'(π) (z_{l,i}, 1)) and, WithLaplacian, ΔΨ = coeff Σ_i r_i (q·u) σ''(π)(|z_i|²+1),
// π = w·z_{l,i} + b. Local row k is global row offset + k, in layer (offset + k) / width.
// A team owns `tile` particles of one layer: (u, w, b) and the accumulators in scratch, blocks of
// `lanes` particles side by side.
template <bool WithLaplacian, class Act, class LayerView>
void block_velocity(ConstMatrix theta, LayerView z, LayerView q, ConstVector r, index_t offset,
                    index_t width, Matrix v, Vector laplacian, real coeff, Act act) {
  constexpr int blocks = tiles::blocks, tile = blocks * lanes, chunk = tiles::sample_chunk;
  const int d = int(z.extent(2));
  const index_t n = index_t(z.extent(1)), count = index_t(theta.extent(0));
  if (count == 0) return;
  const index_t first_layer = offset / width, last_layer = (offset + count - 1) / width;
  const index_t tiles_per_layer = (width + tile - 1) / tile;
  const int cols = 2 * d + 1;
  const std::size_t bytes =
      tiles::scratch_bytes({{blocks, cols, lanes}, {blocks, cols, lanes}}, {tile});
  const int level = tiles::scratch_level(bytes);
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  Kokkos::parallel_for(
      "mfsim::ResNet::block_velocity",
      Policy(int((last_layer - first_layer + 1) * tiles_per_layer), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t l = first_layer + team.league_rank() / tiles_per_layer;
        const index_t t = team.league_rank() % tiles_per_layer;
        // This rank's rows of layer l, and the team's tile of them.
        const index_t layer_begin = (l * width > offset ? l * width : offset) - offset;
        const index_t layer_end = min_of((l + 1) * width, offset + count) - offset;
        const index_t k0 = layer_begin + t * tile;
        if (k0 >= layer_end) return;
        const int np = int(min_of<index_t>(tile, layer_end - k0));
        ScratchPanels params(team.team_scratch(level), blocks, cols, lanes);
        ScratchPanels sums(team.team_scratch(level), blocks, cols, lanes);
        ScratchVector lap(team.team_scratch(level), tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
          for (int e = 0; e < lanes; ++e) {
            const int p = b * lanes + e;
            for (int c = 0; c < cols; ++c) {
              params(b, c, e) = p < np ? theta(k0 + p, c) : real(0);
              sums(b, c, e) = 0;
            }
            lap(p) = 0;
          }
        });
        team.team_barrier();
        const int active_blocks = (np + lanes - 1) / lanes;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
          real sum_lap[lanes];
          MFSIM_LANES
          for (int e = 0; e < lanes; ++e) sum_lap[e] = 0;
          const real* ub = &params(b, 0, 0);  // u of the block's particles, then (w, b)
          const real* wb = &params(b, d, 0);
          for (index_t i0 = 0; i0 < n; i0 += chunk) {
            const int ns = int(min_of<index_t>(chunk, n - i0));
            real rs[chunk][lanes], g[chunk][lanes];  // r σ(π) and r (q·u) σ'(π) per pair
            for (int s = 0; s < ns; ++s) {
              const index_t i = i0 + s;
              const real* zi = &z(l, i, 0);
              const real* qi = &q(l + 1, i, 0);
              real pre[lanes], qu[lanes];
              MFSIM_LANES
              for (int e = 0; e < lanes; ++e) pre[e] = wb[std::size_t(d) * lanes + e], qu[e] = 0;
              for (int c = 0; c < d; ++c) {
                const real zc = zi[c], qc = qi[c];
                MFSIM_LANES
                for (int e = 0; e < lanes; ++e) {
                  pre[e] += wb[std::size_t(c) * lanes + e] * zc;
                  qu[e] += ub[std::size_t(c) * lanes + e] * qc;
                }
              }
              const real ri = r(i);
              real z2 = 1;
              if constexpr (WithLaplacian)
                for (int c = 0; c < d; ++c) z2 += zi[c] * zi[c];
              MFSIM_LANES
              for (int e = 0; e < lanes; ++e) {
                real sv, ds, dds;
                if constexpr (WithLaplacian) {
                  act.eval(pre[e], sv, ds, dds);
                  sum_lap[e] += ri * qu[e] * dds * z2;
                } else {
                  act.eval(pre[e], sv, ds);
                }
                rs[s][e] = ri * sv;
                g[s][e] = ri * qu[e] * ds;
              }
            }
            // Accumulations over the chunk's samples, coordinate by coordinate.
            const real* z0 = &z(l, i0, 0);
            const real* q0 = &q(l + 1, i0, 0);
            real* su = &sums(b, 0, 0);
            real* sw = &sums(b, d, 0);
            for (int c = 0; c < d; ++c) {
              real vu[lanes], vw[lanes];
              MFSIM_LANES
              for (int e = 0; e < lanes; ++e) {
                vu[e] = su[std::size_t(c) * lanes + e];
                vw[e] = sw[std::size_t(c) * lanes + e];
              }
              for (int s = 0; s < ns; ++s) {
                const real qc = q0[std::size_t(s) * d + c], zc = z0[std::size_t(s) * d + c];
                MFSIM_LANES
                for (int e = 0; e < lanes; ++e) {
                  vu[e] += qc * rs[s][e];
                  vw[e] += zc * g[s][e];
                }
              }
              MFSIM_LANES
              for (int e = 0; e < lanes; ++e) {
                su[std::size_t(c) * lanes + e] = vu[e];
                sw[std::size_t(c) * lanes + e] = vw[e];
              }
            }
            real vb[lanes];
            MFSIM_LANES
            for (int e = 0; e < lanes; ++e) vb[e] = sums(b, 2 * d, e);
            for (int s = 0; s < ns; ++s) {
              MFSIM_LANES
              for (int e = 0; e < lanes; ++e) vb[e] += g[s][e];
            }
            MFSIM_LANES
            for (int e = 0; e < lanes; ++e) sums(b, 2 * d, e) = vb[e];
          }
          MFSIM_LANES
          for (int e = 0; e < lanes; ++e) lap(b * lanes + e) = sum_lap[e];
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const int b = p / lanes, e = p % lanes;
          for (int c = 0; c < cols; ++c) v(k, c) = -coeff * sums(b, c, e);
          if constexpr (WithLaplacian) laplacian(k) = coeff * lap(p);
        });
      });
}

}  // namespace mfsim::detail

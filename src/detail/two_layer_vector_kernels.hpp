#pragma once
// Model A's pair kernels with c > 1 outputs (MATH.md §1.5): a unit a σ(w·x + b) with a ∈ R^c, the
// particle row θ = (a_1 … a_c, w, b). The tiling is that of the scalar kernels
// (detail/two_layer_kernels.hpp), which stay the c = 1 path bit for bit; per particle-sample pair
// these add the c products of r_i·a and the c sums of v_a to the O(d) of w·x̃ and v_w. Outputs and
// residuals are stored flat, entry i·c + j; the velocity packs the residuals as samples of c
// coordinates (tiles::pack_samples), so that both products run in the register blocks of
// accumulate_outer, as w·x̃ and v_w do.
#include <string>

#include "detail/two_layer_kernels.hpp"

namespace mfsim::detail {

// acc(j·samples + s) += Σ_p a_pj σ(z_ps) for the lanes of block b, by antithetic pairs as in
// forward_block (so that f ≡ 0 exactly at t = 0).
template <class Act, class Panels, class Vec>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void vector_forward_block(
    const Act& act, const Panels& w_panels, const Vec& a, int c, int particle_panels,
    const Panels& x_panels, int b, int samples, const Vec& acc) {
  const int dz = int(x_panels.extent(1));
  for (int pb = 0; pb < particle_panels; ++pb) {
    real z[block_rows][lanes] = {};
    tiles::accumulate_outer(z, &w_panels(pb, 0, 0), &x_panels(b, 0, 0), dz);
    // σ of the whole block first, then one read-modify-write of acc per output and block.
    for (int p = 0; p < block_rows; ++p) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) z[p][l] = act.value(z[p][l]);
    for (int j = 0; j < c; ++j) {
      real sum[lanes] = {};
      for (int p = 0; p < block_rows; p += 2) {
        const int k = pb * block_rows + p;
        const real a0 = a(k * c + j), a1 = a((k + 1) * c + j), a01 = a0 + a1;
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) sum[l] += a0 * (z[p][l] - z[p + 1][l]) + a01 * z[p + 1][l];
      }
      real* out = &acc(j * samples + b * lanes);
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) out[l] += sum[l];
    }
  }
}

// f(x_i)_j = scale · Σ_k a_kj σ(w_k·x_i + b_k) over this rank's particles, f(i·c + j). (Every
// kernel of this file runs on the instance `space` it is given, as those of
// two_layer_kernels.hpp.)
template <class Space, class Act>
void two_layer_vector_forward(const Space& space, const std::string& label, ConstMatrix theta,
                              ConstMatrix x, Vector f, real scale, bool bias, Act act, int c) {
  static_assert(tiles::fits_tiles<Space>);
  using Policy = TeamPolicyOn<Space>;
  using Panels = tiles::ScratchViewOn<Space, real***>;
  using Vec = tiles::ScratchViewOn<Space, real*>;
  const int dim = int(x.extent(1)), dz = dim + (bias ? 1 : 0);
  const index_t n = index_t(x.extent(0)), m = index_t(theta.extent(0));
  constexpr int chunk_panels = particle_chunk / block_rows;
  const int blocks = forward_team_blocks(space, n), samples = blocks * lanes;
  const std::size_t bytes = tiles::scratch_bytes(
      {{blocks, dz, lanes}, {chunk_panels, dz, block_rows}}, {samples * c, particle_chunk * c});
  const int level = tiles::scratch_level(bytes);
  Kokkos::parallel_for(
      label,
      Policy(space, int((n + samples - 1) / samples), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t i0 = index_t(team.league_rank()) * samples;
        const int ns = int(min_of<index_t>(samples, n - i0));
        Panels x_panels(team.team_scratch(level), blocks, dz, lanes);
        Panels w_panels(team.team_scratch(level), chunk_panels, dz, block_rows);
        Vec acc(team.team_scratch(level), samples * c);
        Vec a(team.team_scratch(level), particle_chunk * c);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
          for (int l = 0; l < lanes; ++l) {
            const int s = b * lanes + l;
            const bool live = s < ns;
            for (int q = 0; q < dim; ++q) x_panels(b, q, l) = live ? x(i0 + s, q) : real(0);
            if (bias) x_panels(b, dim, l) = real(1);
            for (int j = 0; j < c; ++j) acc(j * samples + s) = 0;
          }
        });
        const int active_blocks = (ns + lanes - 1) / lanes;
        for (index_t k0 = 0; k0 < m; k0 += particle_chunk) {
          const int np = int(min_of<index_t>(particle_chunk, m - k0));
          const int panels = (np + block_rows - 1) / block_rows;
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, panels), [&](int pb) {
            for (int r = 0; r < block_rows; ++r) {
              const int p = pb * block_rows + r;
              const bool live = p < np;
              for (int j = 0; j < c; ++j) a(p * c + j) = live ? theta(k0 + p, j) : real(0);
              for (int q = 0; q < dz; ++q)
                w_panels(pb, q, r) = live ? theta(k0 + p, c + q) : real(0);
            }
          });
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
            vector_forward_block(act, w_panels, a, c, panels, x_panels, b, samples, acc);
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, ns), [&](int s) {
          for (int j = 0; j < c; ++j) f((i0 + s) * c + j) = scale * acc(j * samples + s);
        });
      });
}

// The per-particle sums of thread block b over chunk `chunk` of the samples: va_j += Σ_i r_ij σ(z),
// vw̃ += Σ_i (r_i·a) σ'(z) x̃_i and, WithLaplacian, lap += Σ_i (r_i·a) σ''(z) |x̃_i|², with the
// residuals packed as samples of c coordinates (`residuals`, zero beyond n and c).
template <bool WithLaplacian, class Act, class Panels, class Vec>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void vector_velocity_block(
    const Act& act, const SamplePanels& samples, index_t chunk, const SamplePanels& residuals,
    const ConstVector& norm2, const Panels& w_panels, const Panels& a_panels,
    const Panels& vw_panels, const Panels& va_panels, const Vec& lap, int b) {
  const int dz = samples.dz, c = residuals.dz;
  const index_t i0 = chunk * sample_chunk;
  const int ns = int(min_of<index_t>(sample_chunk, samples.n - i0));
  const int sample_panels = (ns + block_rows - 1) / block_rows;
  real sum_lap[lanes];
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) sum_lap[l] = lap(b * lanes + l);
  // (r_i·a) σ'(z_il), the weights of the x̃_i in vw̃, and σ(z_il), those of the r_i in va.
  real g[sample_chunk][lanes], sigma[sample_chunk][lanes];
  for (int sb = 0; sb < sample_panels; ++sb) {
    real z[block_rows][lanes] = {}, ra[block_rows][lanes] = {};
    const index_t panel = chunk * (sample_chunk / block_rows) + sb;
    tiles::accumulate_outer(z, &samples.rows(panel, 0, 0), &w_panels(b, 0, 0), dz);
    tiles::accumulate_outer(ra, &residuals.rows(panel, 0, 0), &a_panels(b, 0, 0), c);
    for (int q = 0; q < block_rows; ++q) {
      const int s = sb * block_rows + q;
      const real n2 = WithLaplacian && s < ns ? norm2(i0 + s) : real(0);
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) {
        real sv, ds, dds;
        if constexpr (WithLaplacian) {
          act.eval(z[q][l], sv, ds, dds);
          sum_lap[l] += ra[q][l] * n2 * dds;
        } else {
          act.eval(z[q][l], sv, ds);
        }
        g[s][l] = ra[q][l] * ds;
        sigma[s][l] = sv;
      }
    }
  }
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) lap(b * lanes + l) = sum_lap[l];
  const int depth = sample_panels * block_rows;
  // acc[j][l] += Σ_s p_s[j] weights[s][l] over blocks of coordinates j of the packed p (x̃ or r).
  const auto accumulate = [&](const SamplePanels& packed, const Panels& out, const real* weights) {
    for (int cb = 0; cb < int(packed.cols.extent(1)); ++cb) {
      real acc[block_rows][lanes];
      for (int q = 0; q < block_rows; ++q) MFSIM_LANES
      for (int l = 0; l < lanes; ++l) acc[q][l] = out(b, cb * block_rows + q, l);
      tiles::accumulate_outer(acc, &packed.cols(chunk, cb, 0, 0), weights, depth);
      for (int q = 0; q < block_rows; ++q) MFSIM_LANES
      for (int l = 0; l < lanes; ++l) out(b, cb * block_rows + q, l) = acc[q][l];
    }
  };
  accumulate(samples, vw_panels, &g[0][0]);
  accumulate(residuals, va_panels, &sigma[0][0]);
}

// v_a = −(β/n) Σ_i r_i σ(z_i), v_w̃ = −(β/n) Σ_i (r_i·a) σ'(z_i) x̃_i and
// ΔΨ = (β/n) Σ_i (r_i·a) σ''(z_i) |x̃_i|² (MATH.md §1.5; coeff = β/n), tiled as two_layer_velocity;
// the residuals r (n·c values) are packed first, in `scratch` (O(n·c)).
template <bool WithLaplacian, class Space, class Act>
void two_layer_vector_velocity(const Space& space, const std::string& label, ConstMatrix theta,
                               const SamplePanels& samples, ConstVector r, ConstVector norm2,
                               Matrix v, Vector laplacian, real coeff, Act act, int c,
                               Workspace& scratch) {
  static_assert(tiles::fits_tiles<Space>);
  using Policy = TeamPolicyOn<Space>;
  using Panels = tiles::ScratchViewOn<Space, real***>;
  using Vec = tiles::ScratchViewOn<Space, real*>;
  const SamplePanels residuals = tiles::pack_samples(space, ConstMatrix(r.data(), samples.n, c),
                                                     false, scratch, "residual_panels");
  const int dz = samples.dz;
  const int padded_dz = int(samples.cols.extent(1)) * block_rows;
  const int padded_c = int(residuals.cols.extent(1)) * block_rows;
  const index_t m = index_t(theta.extent(0));
  const index_t chunks = index_t(samples.cols.extent(0));
  const std::size_t bytes = tiles::scratch_bytes({{tiles::blocks, dz, lanes},
                                                  {tiles::blocks, padded_dz, lanes},
                                                  {tiles::blocks, c, lanes},
                                                  {tiles::blocks, padded_c, lanes}},
                                                 {tile});
  const int level = tiles::scratch_level(bytes);
  Kokkos::parallel_for(
      label,
      Policy(space, int((m + tile - 1) / tile), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t k0 = index_t(team.league_rank()) * tile;
        const int np = int(min_of<index_t>(tile, m - k0));
        Panels w_panels(team.team_scratch(level), tiles::blocks, dz, lanes);
        Panels vw_panels(team.team_scratch(level), tiles::blocks, padded_dz, lanes);
        Panels a_panels(team.team_scratch(level), tiles::blocks, c, lanes);
        Panels va_panels(team.team_scratch(level), tiles::blocks, padded_c, lanes);
        Vec lap(team.team_scratch(level), tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, tiles::blocks), [&](int b) {
          for (int l = 0; l < lanes; ++l) {
            const int p = b * lanes + l;
            const bool live = p < np;
            for (int j = 0; j < c; ++j) a_panels(b, j, l) = live ? theta(k0 + p, j) : real(0);
            for (int j = 0; j < padded_c; ++j) va_panels(b, j, l) = 0;
            for (int q = 0; q < dz; ++q) w_panels(b, q, l) = live ? theta(k0 + p, c + q) : real(0);
            for (int q = 0; q < padded_dz; ++q) vw_panels(b, q, l) = 0;
            lap(p) = 0;
          }
        });
        team.team_barrier();
        const int active_blocks = (np + lanes - 1) / lanes;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
          for (index_t chunk = 0; chunk < chunks; ++chunk)
            vector_velocity_block<WithLaplacian>(act, samples, chunk, residuals, norm2, w_panels,
                                                 a_panels, vw_panels, va_panels, lap, b);
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const int b = p / lanes, l = p % lanes;
          for (int j = 0; j < c; ++j) v(k, j) = -coeff * va_panels(b, j, l);
          for (int q = 0; q < dz; ++q) v(k, c + q) = -coeff * vw_panels(b, q, l);
          // Captured outside the if constexpr: nvcc's extended lambdas cannot first capture a
          // variable inside one.
          (void)laplacian;
          if constexpr (WithLaplacian) laplacian(k) = coeff * lap(p);
        });
      });
}

// Gram features of row (i, j) (flat index i·c + j of an nc × nc Gram matrix):
// φ_{(i,j),k} = scale · (e_j σ(z), a_kj σ'(z) x̃_i), z = w_k·x̃_i (MATH.md §1.5).
template <class Act>
struct TwoLayerVectorFeatures {
  ConstMatrix theta, x;
  real scale;
  bool bias;
  Act act;
  int c;

  int size() const { return int(theta.extent(1)); }
  KOKKOS_INLINE_FUNCTION void operator()(index_t row, index_t k, real* phi) const {
    const int dim = int(x.extent(1));
    const index_t i = row / c;
    const int j = int(row - i * c);
    real z = bias ? theta(k, c + dim) : real(0);
    for (int q = 0; q < dim; ++q) z += theta(k, c + q) * x(i, q);
    real s, ds;
    act.eval(z, s, ds);
    for (int o = 0; o < c; ++o) phi[o] = o == j ? scale * s : real(0);
    const real g = scale * theta(k, j) * ds;
    for (int q = 0; q < dim; ++q) phi[c + q] = g * x(i, q);
    if (bias) phi[c + dim] = g;
  }
};

}  // namespace mfsim::detail

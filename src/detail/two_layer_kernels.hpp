#pragma once
// Pair kernels of a two-layer unit a σ(w·x + b) over a set of inputs: model A itself, and the head
// of the ResNet (model B), whose inputs are the last layer's states z_L. The forward pass and the
// velocity field are tiled particles × samples in team scratch (detail/pair_tiles.hpp); the Gram
// features feed detail/gram_kernel.hpp. Private to the library and its benchmarks.
//
// The pre-activation z = w·x + b is the product of the particle's (w, b) = θ(k, 1 … dz) with the
// extended sample x̃ = (x, 1) (dz = d + 1 with bias, d without). The kernels stage x̃ in scratch,
// so that neither the bias nor its velocity needs a special case, and pad every staged side to
// whole register blocks with zeros (a zero particle or sample adds nothing).
//
// The activation cache: the forward pass may keep the n × m pre-activations it computes for the
// velocity pass of the same evaluation, which then reads z instead of recomputing w·x̃ (dz
// multiply-adds a pair). They are stored by blocks of `lanes` particles, the velocity kernel's
// register blocks: z_ik is entry (k / lanes, i·lanes + k % lanes) of a ⌈m/lanes⌉ × n·lanes matrix,
// so that a block of the velocity reads one contiguous stream (row-major n × m, it would read 64
// bytes a row m reals apart: a TLB miss a sample). An empty matrix: no cache, each pass computes
// its own (the n × m bound). The two passes sum w·x̃ in the same order, so the cached z are the
// ones the velocity pass would compute.
#include <string>

#include "detail/gram_kernel.hpp"
#include "detail/pair_tiles.hpp"

namespace mfsim::detail {

using tiles::block_rows;  // samples, particles or coordinates per register block
using tiles::lanes;
template <class Space>
using TeamPolicyOn = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;

using tiles::min_of;
using tiles::sample_chunk;
using tiles::SamplePanels;
constexpr int tile = tiles::blocks * lanes;      // particles (velocity) or samples (forward)
constexpr int particle_chunk = 10 * block_rows;  // particles staged per step of the forward
static_assert(block_rows % 2 == 0, "forward_block sums particles by antithetic pairs");

// Rows of the activation cache of `particles` particles (see the top of this file).
inline index_t preactivation_blocks(index_t particles) {
  return (particles + lanes - 1) / lanes;
}

// Where a forward pass keeps its pre-activations (the activation cache, by blocks of particles):
// those of the staged samples i0 + s, s < samples, and particles k0 + p, p < particles. No
// matrix: nowhere.
struct PreactivationStore {
  Matrix z;
  index_t i0 = 0, k0 = 0;
  int samples = 0, particles = 0;
};

// Forward pass of thread block b (`lanes` samples) against a staged chunk of particles:
// acc[l] += Σ_p a_p σ(z_pl), keeping the z_pl in `store`. (Named functions, not lambdas: CUDA
// forbids lambdas in the generic lambdas of with_activation.)
template <class Act, class Panels, class Vec>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void forward_block(const Act& act, const Panels& w_panels,
                                                           const Vec& a, int particle_panels,
                                                           const Panels& x_panels, int b,
                                                           const Vec& acc,
                                                           const PreactivationStore& store) {
  const int dz = int(x_panels.extent(1));
  real f[lanes];
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) f[l] = acc(b * lanes + l);
  const int live_lanes = store.samples - b * lanes;  // ≥ 1: blocks of padding are not run
  for (int pb = 0; pb < particle_panels; ++pb) {
    real z[block_rows][lanes] = {};
    tiles::accumulate_outer(z, &w_panels(pb, 0, 0), &x_panels(b, 0, 0), dz);
    if (store.z.data()) {
      for (int p = 0; p < block_rows && pb * block_rows + p < store.particles; ++p) {
        const index_t k = store.k0 + pb * block_rows + p;
        real* column = &store.z(k / lanes, (store.i0 + b * lanes) * lanes + k % lanes);
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l)
          if (l < live_lanes) column[l * lanes] = z[p][l];
      }
    }
    // By pairs of particles (2q, 2q+1), written a0 (σ0 − σ1) + (a0 + a1) σ1: antithetic partners
    // (a1 = −a0, same w and b) then add exactly 0 whether or not the compiler fuses the products
    // into FMAs, so that f ≡ 0 exactly at t = 0. (Pairs never straddle blocks: blocks, chunks and
    // shards start at even particles.)
    for (int p = 0; p < block_rows; p += 2) {
      const real a0 = a(pb * block_rows + p), a1 = a(pb * block_rows + p + 1), a01 = a0 + a1;
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) {
        const real s0 = act.value(z[p][l]), s1 = act.value(z[p + 1][l]);
        f[l] += a0 * (s0 - s1) + a01 * s1;
      }
    }
  }
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) acc(b * lanes + l) = f[l];
}

// Blocks of `lanes` samples per team of the forward pass: tiles::blocks, fewer on CPUs when that
// leaves less than 4 teams per thread of `space` (the ResNet head: n = 200 samples make 4 full
// teams, 3 + 1 on 2 threads), down to one block. Smaller teams restage the particles more often:
// O(m·dz) per team against O(tile·m·dz) of work.
template <class Space>
int forward_team_blocks(const Space& space, index_t n) {
  if (tiles::gpu) return tiles::blocks;
  const index_t threads = index_t(space.concurrency());
  const index_t per_team = (n + 4 * threads - 1) / (4 * threads);
  return int(min_of<index_t>(tiles::blocks, (per_team + lanes - 1) / lanes));
}

// f(x_i) = scale · Σ_k a_k σ(w_k·x_i + b_k) over this rank's particles. A team owns a tile of
// samples (x̃ packed by blocks of lanes) and sweeps the particles in staged chunks. Each f(x_i) is
// summed in the same order whatever the tiles: bitwise equal across thread counts. (Every kernel
// of this file runs on the instance `space` it is given: the library's ExecSpace, or, in the
// tests, any space of its kind that reads MemSpace.) With an n × m `preactivations`, keeps
// z = w·x̃ there (the activation cache: ⌈m/lanes⌉ × n·lanes).
template <class Space, class Act>
void two_layer_forward(const Space& space, const std::string& label, ConstMatrix theta,
                       ConstMatrix x, Vector f, real scale, bool bias, Act act,
                       Matrix preactivations = Matrix()) {
  static_assert(tiles::fits_tiles<Space>);
  using Policy = TeamPolicyOn<Space>;
  using Panels = tiles::ScratchViewOn<Space, real***>;
  using Vec = tiles::ScratchViewOn<Space, real*>;
  const int dim = int(x.extent(1)), dz = dim + (bias ? 1 : 0);
  const index_t n = index_t(x.extent(0)), m = index_t(theta.extent(0));
  constexpr int chunk_panels = particle_chunk / block_rows;
  const int blocks = forward_team_blocks(space, n), samples = blocks * lanes;
  const std::size_t bytes = tiles::scratch_bytes(
      {{blocks, dz, lanes}, {chunk_panels, dz, block_rows}}, {samples, particle_chunk});
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
        Vec acc(team.team_scratch(level), samples);
        Vec a(team.team_scratch(level), particle_chunk);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
          for (int l = 0; l < lanes; ++l) {
            const int s = b * lanes + l;
            const bool live = s < ns;
            for (int c = 0; c < dim; ++c) x_panels(b, c, l) = live ? x(i0 + s, c) : real(0);
            if (bias) x_panels(b, dim, l) = real(1);
            acc(s) = 0;
          }
        });
        const int active_blocks = (ns + lanes - 1) / lanes;
        for (index_t k0 = 0; k0 < m; k0 += particle_chunk) {
          const int np = int(min_of<index_t>(particle_chunk, m - k0));
          const int panels = (np + block_rows - 1) / block_rows;
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, panels), [&](int pb) {
            for (int j = 0; j < block_rows; ++j) {
              const int p = pb * block_rows + j;
              const bool live = p < np;
              a(p) = live ? theta(k0 + p, 0) : real(0);
              for (int c = 0; c < dz; ++c)
                w_panels(pb, c, j) = live ? theta(k0 + p, 1 + c) : real(0);
            }
          });
          team.team_barrier();
          const PreactivationStore store{preactivations, i0, k0, ns, np};
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
            forward_block(act, w_panels, a, panels, x_panels, b, acc, store);
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, ns),
                             [&](int s) { f(i0 + s) = scale * acc(s); });
      });
}

// The per-particle sums of thread block b (`lanes` particles, of which `live` are not padding)
// over chunk `chunk` of the samples: va += Σ_i r_i σ(z), vw̃ += Σ_i r_i σ'(z) x̃_i and,
// WithLaplacian, lap += Σ_i r_i σ''(z) |x̃_i|², with z read from row `block` of `cached` when it
// has values (the activation cache), else computed from the packed samples and particles.
template <bool WithLaplacian, class Act, class Panels, class Vec>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void velocity_block(
    const Act& act, const SamplePanels& samples, index_t chunk, const ConstVector& r,
    const ConstVector& norm2, const Panels& w_panels, const Panels& vw_panels, const Vec& va,
    const Vec& lap, int b, const ConstMatrix& cached, index_t block, int live) {
  const int dz = samples.dz;
  const index_t i0 = chunk * sample_chunk;
  const int ns = int(min_of<index_t>(sample_chunk, samples.n - i0));
  const int sample_panels = (ns + block_rows - 1) / block_rows;
  real sum_a[lanes], sum_lap[lanes];
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) sum_a[l] = va(b * lanes + l), sum_lap[l] = lap(b * lanes + l);
  real g[sample_chunk][lanes];  // r_i σ'(z_il): the weights of the x̃_i in vw̃
  for (int sb = 0; sb < sample_panels; ++sb) {
    real z[block_rows][lanes] = {};
    if (cached.data()) {
      // Padding samples and particles keep z = 0, as the zero padding of the packs gives.
      for (int j = 0; j < block_rows && sb * block_rows + j < ns; ++j) {
        const real* row = &cached(block, (i0 + sb * block_rows + j) * lanes);
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) z[j][l] = l < live ? row[l] : real(0);
      }
    } else {
      const index_t panel = chunk * (sample_chunk / block_rows) + sb;
      tiles::accumulate_outer(z, &samples.rows(panel, 0, 0), &w_panels(b, 0, 0), dz);
    }
    real rsv[block_rows], rn2v[block_rows];
    for (int j = 0; j < block_rows; ++j) {
      const int s = sb * block_rows + j;
      const bool live = s < ns;  // padding samples: r = 0
      rsv[j] = live ? r(i0 + s) : real(0);
      rn2v[j] = live ? rsv[j] * norm2(i0 + s) : real(0);
    }
    for (int j = 0; j < block_rows; ++j) {
      const int s = sb * block_rows + j;
      const real rs = rsv[j], rn2 = rn2v[j];
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) {
        real sv, ds, dds;
        if constexpr (WithLaplacian) {
          act.eval(z[j][l], sv, ds, dds);
          sum_lap[l] += rn2 * dds;
        } else {
          act.eval(z[j][l], sv, ds);
        }
        sum_a[l] += rs * sv;
        g[s][l] = rs * ds;
      }
    }
  }
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) va(b * lanes + l) = sum_a[l], lap(b * lanes + l) = sum_lap[l];
  // vw̃[c][l] += Σ_s x̃_s[c] g[s][l], by blocks of coordinates (padded with zero rows).
  const int depth = sample_panels * block_rows;
  for (int cb = 0; cb < int(samples.cols.extent(1)); ++cb) {
    real acc[block_rows][lanes];
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) acc[j][l] = vw_panels(b, cb * block_rows + j, l);
    tiles::accumulate_outer(acc, &samples.cols(chunk, cb, 0, 0), &g[0][0], depth);
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) vw_panels(b, cb * block_rows + j, l) = acc[j][l];
  }
}

// v_k = −(β/n) Σ_i r_i ∇_θ[a σ(w·x_i + b)] (A5) and ΔΨ(θ_k) = (β/n) Σ_i r_i a σ''(z) (|x_i|²+1)
// (A6). A team owns a tile of particles ((w, b) packed by blocks of lanes in scratch, with the
// accumulators) and sweeps the packed samples chunk by chunk. With `preactivations` (the n × m
// z(i, k) that two_layer_forward kept at these particles and samples), reads z from there.
template <bool WithLaplacian, class Space, class Act>
void two_layer_velocity(const Space& space, const std::string& label, ConstMatrix theta,
                        const SamplePanels& samples, ConstVector r, ConstVector norm2, Matrix v,
                        Vector laplacian, real coeff, Act act,
                        ConstMatrix preactivations = ConstMatrix()) {
  static_assert(tiles::fits_tiles<Space>);
  using Policy = TeamPolicyOn<Space>;
  using Panels = tiles::ScratchViewOn<Space, real***>;
  using Vec = tiles::ScratchViewOn<Space, real*>;
  const int dz = samples.dz;
  const int padded_dz = int(samples.cols.extent(1)) * block_rows;
  const index_t m = index_t(theta.extent(0));
  const index_t chunks = index_t(samples.cols.extent(0));
  const std::size_t bytes = tiles::scratch_bytes(
      {{tiles::blocks, dz, lanes}, {tiles::blocks, padded_dz, lanes}}, {tile, tile, tile});
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
        Vec a(team.team_scratch(level), tile);
        Vec va(team.team_scratch(level), tile);
        Vec lap(team.team_scratch(level), tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, tiles::blocks), [&](int b) {
          for (int l = 0; l < lanes; ++l) {
            const int p = b * lanes + l;
            const bool live = p < np;
            a(p) = live ? theta(k0 + p, 0) : real(0);
            for (int c = 0; c < dz; ++c) w_panels(b, c, l) = live ? theta(k0 + p, 1 + c) : real(0);
            for (int c = 0; c < padded_dz; ++c) vw_panels(b, c, l) = 0;
            va(p) = 0;
            lap(p) = 0;
          }
        });
        team.team_barrier();
        const int active_blocks = (np + lanes - 1) / lanes;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
          for (index_t chunk = 0; chunk < chunks; ++chunk)
            velocity_block<WithLaplacian>(act, samples, chunk, r, norm2, w_panels, vw_panels, va,
                                          lap, b, preactivations, k0 / lanes + b,
                                          min_of(lanes, np - b * lanes));
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const int b = p / lanes, l = p % lanes;
          const real ca = coeff * a(p);
          v(k, 0) = -coeff * va(p);
          for (int c = 0; c < dz; ++c) v(k, 1 + c) = -ca * vw_panels(b, c, l);
          // Captured outside the if constexpr: nvcc's extended lambdas cannot first capture a
          // variable inside one.
          (void)laplacian;
          if constexpr (WithLaplacian) laplacian(k) = ca * lap(p);
        });
      });
}

// The same on inputs that change from call to call (the ResNet head's z_L): packs them first
// (O(n·d), against the O(n·m·d) of the kernel).
template <bool WithLaplacian, class Space, class Act>
void two_layer_velocity(const Space& space, const std::string& label, ConstMatrix theta,
                        ConstMatrix x, ConstVector r, ConstVector norm2, Matrix v, Vector laplacian,
                        real coeff, bool bias, Act act, Workspace& scratch) {
  two_layer_velocity<WithLaplacian>(
      space, label, theta, tiles::pack_samples(space, x, bias, scratch, "velocity_samples"), r,
      norm2, v, laplacian, coeff, act);
}

// out(i) = |x_i|² + extra: the Laplacians' data factor (extra = 1 for x̃ = (x, 1)).
template <class Space>
void squared_row_norms(const Space& space, ConstMatrix x, real extra, Vector out) {
  const int d = int(x.extent(1));
  Kokkos::parallel_for(
      "mfsim::squared_row_norms", Kokkos::RangePolicy<Space>(space, 0, index_t(x.extent(0))),
      KOKKOS_LAMBDA(index_t i) {
        real s = extra;
        for (int c = 0; c < d; ++c) s += x(i, c) * x(i, c);
        out(i) = s;
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

// The two scalar factors of model A's features, φ_{i,k} = (S_ik, T_ik x̃_i) with S = scale·σ(z)
// and T = scale·a σ'(z) (A9): Derivative selects T.
template <class Act, bool Derivative>
struct TwoLayerFactor {
  ConstMatrix theta, x;
  real scale;
  bool bias;
  Act act;

  int size() const { return 1; }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    const int dim = int(x.extent(1));
    real z = bias ? theta(k, dim + 1) : real(0);
    for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
    real s, ds;
    act.eval(z, s, ds);
    phi[0] = Derivative ? scale * theta(k, 0) * ds : scale * s;
  }
};

// gram += Φ Φᵀ over the rows of theta, on the inputs x, in the factored form
// Φ Φᵀ = S Sᵀ + (T Tᵀ) ∘ (X̃ X̃ᵀ): two rank-m updates (n²·m multiply-adds) instead of one of rank
// m·(d + 2) (TwoLayerFeatures with the generic kernel: the reference of the tests).
template <class Space, class Act>
void accumulate_two_layer_gram(const Space& space, ConstMatrix theta, ConstMatrix x, real scale,
                               bool bias, Act act, Matrix gram, Workspace& scratch) {
  const index_t m = index_t(theta.extent(0));
  accumulate_gram(space, TwoLayerFactor<Act, false>{theta, x, scale, bias, act}, m, gram, scratch);
  accumulate_gram(space, TwoLayerFactor<Act, true>{theta, x, scale, bias, act}, m, gram, scratch,
                  input_product_weight(space, x, bias, scratch));
}

}  // namespace mfsim::detail

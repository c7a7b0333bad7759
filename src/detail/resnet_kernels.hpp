#pragma once
// Pair kernels of the ResNet blocks (model B, MATH.md §3): the per-layer sums over particles of
// the forward and backward passes, the per-particle sums over samples of the velocities, and the
// Gram features of G₁ (B13). Private to resnet.cpp (and its tests).
//
// Block particle θ = (u, w, b) (theta columns [0, d), [d, 2d), 2d) acts on a state z through
// π = w·z + b. The techniques of the two-layer kernels (two_layer_kernels.hpp): the pre-activations
// of `lanes` particles at a time in a vector loop with a compile-time trip count, σ (and σ') once
// per pair on that vector (simd_math's tanh vectorises), reductions per lane in a fixed order
// (bitwise reproducible, no atomics).
//
// - Per-sample sums (forward, backward, head adjoint): the particles of every layer are first
//   transposed, once per evaluation and in one kernel, into panels P(c, j) (coordinate c of
//   particle j, zero-padded to whole `sample_sum_chunk`s, each chunk of particles a contiguous
//   slab), so that a thread reads P row by row, contiguous across particles, 4 samples at a time,
//   each loaded vector serving the 4 samples; a thread owns 32 samples and sweeps them chunk by
//   chunk, so that a slab comes from memory once per thread and from cache for each 4 samples — on
//   a GPU a thread owns one sample and all threads of a team read the same addresses (broadcast).
//   (A variant in 6 × lanes register blocks with the particles staged per team, as the two-layer
//   forward, measured 20 % slower at the reference size: n = 200 samples make 4 teams that each
//   restage every particle.)
// - Per-particle sums (velocities): the two-layer velocity's scheme, all layers in one kernel (or
//   groups of layers, past 64 MiB of packs: ResNetEvaluation::velocity_layer_group): a team owns
//   a tile of one layer's particles in scratch (blocks of `lanes`), every layer's
//   z̃_l = (z_l, 1) and q_{l+1} are packed once (tiles::pack_layers), and 6-sample × lanes register
//   blocks give π and q·u (accumulate_outer), σ once per pair, then the accumulations over the
//   chunk's samples.
// - The activation cache (ResNetModel::activation_caches, where the budget has room): the forward
//   pass keeps every block pair's pre-activation π = w·z_l + b, the backward pass reads it and
//   keeps q_{l+1}·u, and the velocity kernel reads both instead of recomputing them: 6 rather than
//   9 multiply-adds per pair and input. Stored by blocks of `lanes` particles as model A's cache
//   (two_layer_kernels.hpp): one layer's entry (j / lanes, i·lanes + j % lanes) for its particle j
//   and sample i, the layers one after another (LayerCache). The backward pass reads exactly the π
//   it would compute (same code, same order), so only the velocities' rounding changes.
// A step thus launches 2L + 10 kernels rather than 9L + 10: at the reference size (L = 16, a few
// hundred particles per layer) the launches and the idle threads of small kernels had capped the
// 2-thread speed-up at 1.7×.
// Every kernel of the file runs on the execution-space instance it is given (`space`): the
// library's ExecSpace, or, in the tests, any space of its kind that reads MemSpace
// (tiles::fits_tiles).
#include <string>

#include "detail/gram_kernel.hpp"
#include "detail/pair_tiles.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim::detail {

using tiles::lanes;
using tiles::min_of;
using ParticlePanel = Kokkos::View<real**, Kokkos::LayoutRight, MemSpace>;

// Particles of one per-sample pass held in registers at a time (σ of each staged once).
constexpr int sample_sum_chunk = 8 * lanes;
static_assert(sample_sum_chunk % 8 == 0, "transpose_layers moves blocks of 8 particles");

// The panels of every layer, in one kernel, shared by the forward and the backward pass (the head
// is one layer): the particles of layer l in chunks of `sample_sum_chunk`, each chunk k a
// contiguous slab of `cols` rows, P(l, k·cols + c, j) = theta(l·per_layer + k·sample_sum_chunk + j,
// c) (0 past per_layer), in `scratch` (name). Contiguous slabs, not one row per coordinate: a row
// of a whole layer is a power-of-two multiple of 64 reals at widths of 1024 or more, whose rows
// then fall into the same few cache sets.
using ParticlePanels = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;
template <class Space>
ParticlePanels transpose_layers(const Space& space, ConstMatrix theta, index_t layers,
                                index_t per_layer, Workspace& scratch, const std::string& name) {
  constexpr index_t chunk = sample_sum_chunk;
  const int cols = int(theta.extent(1));
  const index_t chunks = (per_layer + chunk - 1) / chunk;
  const ParticlePanels panels =
      scratch.view<ParticlePanels>(name, layers, chunks * cols, index_t(chunk));
  // A block of 8 particles of one layer per iteration: their rows of theta read once (L1), each
  // panel row written a cache line at a time. (One iteration per panel row reads theta with a
  // stride of its row length, from another core's cache after the update: 3x slower on Threads.)
  constexpr index_t block = 8;
  const index_t blocks = chunks * chunk / block;
  Kokkos::parallel_for(
      "mfsim::ResNet::transpose_particles::" + name,
      Kokkos::RangePolicy<Space>(space, 0, layers * blocks), KOKKOS_LAMBDA(index_t lb) {
        const index_t l = lb / blocks, j0 = lb % blocks * block;
        const index_t row0 = j0 / chunk * cols, e0 = j0 % chunk;
        for (int c = 0; c < cols; ++c)
          for (index_t e = 0; e < block; ++e) {
            const index_t j = j0 + e;
            panels(l, row0 + c, e0 + e) = j < per_layer ? theta(l * per_layer + j, c) : real(0);
          }
      });
  return panels;
}

inline ParticlePanel layer_panel(const ParticlePanels& panels, index_t l) {
  return Kokkos::subview(panels, l, Kokkos::ALL, Kokkos::ALL);
}

// What a per-sample pass sums: out(i, c) = base(i, c) + scale Σ_j g_ij P(acc_row + c, j), c < d
// (no base term when base is empty), with
//   forward       g = σ(π),            π from rows [d, 2d) and bias row 2d (block particles);
//   backward      g = (q_i·u) σ'(π),   u = rows [0, d);
//   head_adjoint  g = a σ'(v·z),       a = row 0, v = rows [1, 1 + d), no bias (head particles);
//   weighted_head_adjoint  g = (q_i·a) σ'(v·z), a = rows [0, c), v = rows [c, c + d), no bias
//                 (head particles of c outputs; q has c columns: the weights of the outputs).
enum class SampleSum { forward, backward, head_adjoint, weighted_head_adjoint };

// One layer's part of the activation cache (see the top of this file): rows the blocks of `lanes`
// particles of the layer, ⌈M/lanes⌉ of them (the zero particles that pad the last chunk have no
// row), columns n·lanes. The forward pass writes `pre` (π); the backward pass reads `pre` and
// writes `input_products` (q_{l+1}·u). Empty views: nothing kept, every pass computes its own.
struct LayerCache {
  Matrix pre, input_products;
};

// The rows of a particle of each kind (theta's columns).
template <SampleSum Kind>
KOKKOS_INLINE_FUNCTION int panel_cols(int d, int weights) {
  return Kind == SampleSum::forward || Kind == SampleSum::backward ? 2 * d + 1
         : Kind == SampleSum::head_adjoint                         ? 1 + d
                                                                   : weights + d;
}

// out(i, c) += Σ_j g_ij P(acc_row + c, j) over the particles of one chunk (slab: its rows, each
// sample_sum_chunk long) for the samples i0 … i0 + Rows − 1 below `end`. Each vector of panel
// values loaded serves all Rows samples.
// With a `cache` (forward and backward only), the chunk's blocks of particles are its rows block0,
// block0 + 1, …: the forward pass stores π there, the backward pass reads π and stores q·u.
template <SampleSum Kind, int Rows, class Act>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void sample_sum_rows(
    const Act& act, const real* slab, const ConstMatrix& z, const ConstMatrix& q, const Matrix& out,
    index_t i0, index_t end, const LayerCache& cache, index_t block0) {
  constexpr int chunk = sample_sum_chunk, blocks = chunk / lanes;
  constexpr index_t stride = chunk;  // between rows of the slab
  const int d = int(z.extent(1));
  // The coordinates of q_i·u (backward) or q_i·a (weighted_head_adjoint): q's columns.
  const int weights = int(q.extent(1));
  constexpr bool weighted = Kind == SampleSum::weighted_head_adjoint;
  const int w_row = Kind == SampleSum::head_adjoint ? 1 : weighted ? weights : d;
  const int acc_row = Kind == SampleSum::forward    ? 0
                      : Kind == SampleSum::backward ? d
                      : weighted                    ? weights
                                                    : 1;
  const bool bias = Kind == SampleSum::forward || Kind == SampleSum::backward;
  const int live = int(min_of<index_t>(Rows, end - i0));
  // Rows past `end` repeat the last sample; their sums are not written.
  const real* zs[Rows];
  const real* qs[Rows];
  index_t cache_cols[Rows];  // sample i's entries in a cache row
  for (int s = 0; s < Rows; ++s) {
    const index_t i = i0 + (s < live ? s : live - 1);
    zs[s] = &z(i, 0);
    qs[s] = &q(i, 0);
    cache_cols[s] = i * lanes;
  }
  const index_t cache_rows = index_t(cache.pre.extent(0));
  const bool reads_pre = Kind == SampleSum::backward && cache.pre.data();
  real g[Rows][chunk];
  for (int b = 0; b < blocks; ++b) {
    const real* col = slab + b * lanes;  // particle b·lanes of the chunk
    const index_t row = block0 + b;      // its row of the cache, if it has one
    real pre[Rows][lanes], qu[Rows][lanes];
    for (int s = 0; s < Rows; ++s) {
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) {
        pre[s][l] = bias ? col[2 * d * stride + l] : real(0);
        qu[s][l] = Kind == SampleSum::head_adjoint ? col[l] : real(0);
      }
    }
    if (reads_pre) {
      // Blocks without a row are padding (zero particles: π = 0, as computed).
      for (int s = 0; s < Rows; ++s) {
        const real* kept = row < cache_rows ? &cache.pre(row, cache_cols[s]) : nullptr;
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) pre[s][l] = kept ? kept[l] : real(0);
      }
    } else {
      for (int c = 0; c < d; ++c) {
        const real* w = col + (w_row + c) * stride;
        for (int s = 0; s < Rows; ++s) {
          const real zc = zs[s][c];
          MFSIM_LANES
          for (int l = 0; l < lanes; ++l) pre[s][l] += w[l] * zc;
        }
      }
    }
    if (Kind == SampleSum::forward && cache.pre.data() && row < cache_rows)
      for (int s = 0; s < live; ++s) {
        real* kept = &cache.pre(row, cache_cols[s]);
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) kept[l] = pre[s][l];
      }
    if constexpr (Kind == SampleSum::backward || weighted) {
      for (int c = 0; c < weights; ++c) {
        const real* u = col + c * stride;
        for (int s = 0; s < Rows; ++s) {
          const real qc = qs[s][c];
          MFSIM_LANES
          for (int l = 0; l < lanes; ++l) qu[s][l] += u[l] * qc;
        }
      }
      if (cache.input_products.data() && row < cache_rows)
        for (int s = 0; s < live; ++s) {
          real* kept = &cache.input_products(row, cache_cols[s]);
          MFSIM_LANES
          for (int l = 0; l < lanes; ++l) kept[l] = qu[s][l];
        }
    }
    for (int s = 0; s < Rows; ++s) {
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
    const real* a = slab + (acc_row + c) * stride;
    real acc[Rows][lanes] = {};
    for (int b = 0; b < blocks; ++b)
      for (int s = 0; s < Rows; ++s) {
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) acc[s][l] += a[b * lanes + l] * g[s][b * lanes + l];
      }
    for (int s = 0; s < live; ++s) {
      real sum = 0;
      for (int l = 0; l < lanes; ++l) sum += acc[s][l];
      out(i0 + s, c) += sum;
    }
  }
}

// One thread's share of a per-sample pass: the samples [first, end), chunk after chunk of
// particles, Rows samples at a time within a chunk, so that a chunk's slab is read from memory
// once per thread and from cache by each group of Rows samples (at d = 256 a slab is 0.4 MB: one
// layer's panel would not stay in L2 across the samples). Each out(i, c) is summed chunk by
// chunk in the order of the particles.
template <SampleSum Kind, int Rows, class Act>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void sample_sums(const Act& act, const ParticlePanel& panel,
                                                         const ConstMatrix& z, const ConstMatrix& q,
                                                         const ConstMatrix& base, const Matrix& out,
                                                         real scale, index_t first, index_t end,
                                                         const LayerCache& cache) {
  const int d = int(z.extent(1));
  const index_t cols = panel_cols<Kind>(d, int(q.extent(1)));
  const index_t chunks = index_t(panel.extent(0)) / cols;
  const index_t slab_size = cols * sample_sum_chunk;
  for (index_t i = first; i < end; ++i)
    for (int c = 0; c < d; ++c) out(i, c) = 0;
  for (index_t k = 0; k < chunks; ++k)
    for (index_t i0 = first; i0 < end; i0 += Rows)
      sample_sum_rows<Kind, Rows>(act, panel.data() + k * slab_size, z, q, out, i0, end, cache,
                                  k * (sample_sum_chunk / lanes));
  const bool with_base = base.extent(0) > 0;
  for (index_t i = first; i < end; ++i)
    for (int c = 0; c < d; ++c) out(i, c) = out(i, c) * scale + (with_base ? base(i, c) : real(0));
}

template <SampleSum Kind, class Space, class Act>
void per_sample_sum(const Space& space, const std::string& label, ParticlePanel panel,
                    ConstMatrix z, ConstMatrix q, ConstMatrix base, Matrix out, real scale, Act act,
                    LayerCache cache = LayerCache()) {
  static_assert(tiles::fits_tiles<Space>);
  // A thread sums `rows` samples at a time over a chunk of particles (sample_sum_rows) and owns
  // `per_thread` samples; on a GPU one sample, the threads of a team reading the same panel
  // entries (broadcast).
  constexpr int rows = tiles::gpu ? 1 : 4;
  constexpr int per_thread = tiles::gpu ? 1 : 8 * rows;
  const index_t n = index_t(z.extent(0));
  using Policy = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
  constexpr int per_team = tiles::gpu ? 64 : per_thread;  // samples of a team
  Kokkos::parallel_for(
      label, Policy(space, int((n + per_team - 1) / per_team), Kokkos::AUTO),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t first = index_t(team.league_rank()) * per_team;
        const int threads =
            int((min_of<index_t>(per_team, n - first) + per_thread - 1) / per_thread);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, threads), [&](int t) {
          const index_t begin = first + t * per_thread;
          sample_sums<Kind, rows>(act, panel, z, q, base, out, scale, begin,
                                  min_of<index_t>(begin + per_thread, n), cache);
        });
      });
}

// Sums of thread block b (`lanes` particles of one layer) over sample chunk `chunk`, in 6 × lanes
// register blocks as the two-layer velocity_block: π = w̃·z̃ and q·u by accumulate_outer on the
// packed samples, σ once per pair, then vw̃ += Σ_s z̃_s g_s, vu += Σ_s q_s (r σ)_s over the chunk
// (z̃ = (z, 1): its last coordinate gives the bias velocity Σ_s g_s), lap += r (q·u) σ'' |z̃|².
// With the activation cache (`cached`: its rows `pre` and `input_products` of the block, row `row`;
// `live` of its lanes particles), π and q·u are read rather than computed.
template <bool WithLaplacian, class Act, class Panels, class Vec>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void block_velocity_chunk(
    const Act& act, const tiles::SamplePanels& zs, const tiles::SamplePanels& qs,
    index_t layer_chunk0, index_t chunk, const ConstVector& r, const ConstVector& norm2,
    index_t layer_sample0, const Panels& w_panels, const Panels& u_panels, const Panels& vw_panels,
    const Panels& vu_panels, const Vec& lap, int b, const LayerCache& cached, index_t row,
    int live_lanes) {
  using tiles::block_rows;
  constexpr int chunk_size = tiles::sample_chunk;
  const index_t i0 = chunk * chunk_size;
  const int ns = int(min_of<index_t>(chunk_size, zs.n - i0));
  const int sample_panels = (ns + block_rows - 1) / block_rows;
  real sum_lap[lanes];
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) sum_lap[l] = lap(b * lanes + l);
  real g[chunk_size][lanes], rs[chunk_size][lanes];  // r (q·u) σ'(π) and r σ(π) per pair
  for (int sb = 0; sb < sample_panels; ++sb) {
    const index_t panel = (layer_chunk0 + chunk) * (chunk_size / block_rows) + sb;
    real pre[block_rows][lanes] = {}, qu[block_rows][lanes] = {};
    if (cached.pre.data()) {
      // Padding samples and particles keep 0, as the zero padding of the packs gives.
      for (int j = 0; j < block_rows && sb * block_rows + j < ns; ++j) {
        const index_t col = (i0 + sb * block_rows + j) * lanes;
        const real* kept_pre = &cached.pre(row, col);
        const real* kept_qu = &cached.input_products(row, col);
        MFSIM_LANES
        for (int l = 0; l < lanes; ++l) {
          pre[j][l] = l < live_lanes ? kept_pre[l] : real(0);
          qu[j][l] = l < live_lanes ? kept_qu[l] : real(0);
        }
      }
    } else {
      tiles::accumulate_outer(pre, &zs.rows(panel, 0, 0), &w_panels(b, 0, 0), zs.dz);
      tiles::accumulate_outer(qu, &qs.rows(panel, 0, 0), &u_panels(b, 0, 0), qs.dz);
    }
    for (int j = 0; j < block_rows; ++j) {
      const int s = sb * block_rows + j;
      const bool live = s < ns;  // padding samples: r = 0
      const real ri = live ? r(i0 + s) : real(0);
      const real rn2 =
          WithLaplacian && live ? ri * (norm2(layer_sample0 + i0 + s) + real(1)) : real(0);
      MFSIM_LANES
      for (int l = 0; l < lanes; ++l) {
        real sv, ds, dds;
        if constexpr (WithLaplacian) {
          act.eval(pre[j][l], sv, ds, dds);
          sum_lap[l] += rn2 * qu[j][l] * dds;
        } else {
          act.eval(pre[j][l], sv, ds);
        }
        rs[s][l] = ri * sv;
        g[s][l] = ri * qu[j][l] * ds;
      }
    }
  }
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) lap(b * lanes + l) = sum_lap[l];
  const int depth = sample_panels * block_rows;
  for (int cb = 0; cb < int(zs.cols.extent(1)); ++cb) {
    real acc[block_rows][lanes];
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) acc[j][l] = vw_panels(b, cb * block_rows + j, l);
    tiles::accumulate_outer(acc, &zs.cols(layer_chunk0 + chunk, cb, 0, 0), &g[0][0], depth);
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) vw_panels(b, cb * block_rows + j, l) = acc[j][l];
  }
  for (int cb = 0; cb < int(qs.cols.extent(1)); ++cb) {
    real acc[block_rows][lanes];
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) acc[j][l] = vu_panels(b, cb * block_rows + j, l);
    tiles::accumulate_outer(acc, &qs.cols(layer_chunk0 + chunk, cb, 0, 0), &rs[0][0], depth);
    for (int j = 0; j < block_rows; ++j) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) vu_panels(b, cb * block_rows + j, l) = acc[j][l];
  }
}

// (B11)–(B12) for the local rows of the layers l = first … first + layers − 1,
// [l·per_layer, (l + 1)·per_layer), whose input states z_l and output sensitivities q_{l+1} are
// matrix l − first of the layered packs zs (with the appended 1) and qs:
// v = −coeff Σ_i r_i (σ(π) q_{l+1,i}, (q_{l+1,i}·u) σ'(π) (z_{l,i}, 1)) and, WithLaplacian,
// ΔΨ = coeff Σ_i r_i (q·u) σ''(π) (|z_{l,i}|² + 1) (norm2(l·n + i) = |z_{l,i}|²), π = w·z_{l,i} +
// b. A team owns a tile of one layer's particles ((u, w, b) packed by blocks of lanes in scratch,
// with the accumulators) and sweeps that layer's packed samples chunk by chunk, as the two-layer
// velocity; the teams of all layers make one kernel (one launch, and enough teams to balance the
// threads at a few hundred particles per layer). With the activation cache (`cache`: every
// layer's rows, ⌈per_layer/lanes⌉ a layer, layer 0 first), π and q·u are read from it.
template <bool WithLaplacian, class Space, class Act>
void block_velocity(const Space& space, ConstMatrix theta, index_t first, index_t layers,
                    index_t per_layer, const tiles::SamplePanels& zs, const tiles::SamplePanels& qs,
                    ConstVector r, ConstVector norm2, Matrix v, Vector laplacian, real coeff,
                    Act act, LayerCache cache = LayerCache()) {
  static_assert(tiles::fits_tiles<Space>);
  using tiles::block_rows;
  using Policy = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
  using Panels = tiles::ScratchViewOn<Space, real***>;
  using Vec = tiles::ScratchViewOn<Space, real*>;
  constexpr int blocks = tiles::blocks, tile = blocks * lanes;
  if (layers == 0 || per_layer == 0) return;
  const int d = qs.dz, dz = zs.dz;
  const int padded_dz = int(zs.cols.extent(1)) * block_rows;
  const int padded_d = int(qs.cols.extent(1)) * block_rows;
  const index_t chunks = zs.chunks, n = zs.n;
  const index_t tiles_per_layer = (per_layer + tile - 1) / tile;
  const index_t cache_rows_per_layer = (per_layer + lanes - 1) / lanes;
  const std::size_t bytes = tiles::scratch_bytes({{blocks, dz, lanes},
                                                  {blocks, d, lanes},
                                                  {blocks, padded_dz, lanes},
                                                  {blocks, padded_d, lanes}},
                                                 {tile});
  const int level = tiles::scratch_level(bytes);
  Kokkos::parallel_for(
      "mfsim::ResNet::block_velocity",
      Policy(space, int(layers * tiles_per_layer), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t g = index_t(team.league_rank()) / tiles_per_layer, l = first + g;
        const index_t k0 = l * per_layer + index_t(team.league_rank()) % tiles_per_layer * tile;
        const int np = int(min_of<index_t>(tile, (l + 1) * per_layer - k0));
        Panels w_panels(team.team_scratch(level), blocks, dz, lanes);
        Panels u_panels(team.team_scratch(level), blocks, d, lanes);
        Panels vw_panels(team.team_scratch(level), blocks, padded_dz, lanes);
        Panels vu_panels(team.team_scratch(level), blocks, padded_d, lanes);
        Vec lap(team.team_scratch(level), tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
          for (int e = 0; e < lanes; ++e) {
            const int p = b * lanes + e;
            const bool live = p < np;
            for (int c = 0; c < dz; ++c) w_panels(b, c, e) = live ? theta(k0 + p, d + c) : real(0);
            for (int c = 0; c < d; ++c) u_panels(b, c, e) = live ? theta(k0 + p, c) : real(0);
            for (int c = 0; c < padded_dz; ++c) vw_panels(b, c, e) = 0;
            for (int c = 0; c < padded_d; ++c) vu_panels(b, c, e) = 0;
            lap(p) = 0;
          }
        });
        team.team_barrier();
        const int active_blocks = (np + lanes - 1) / lanes;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
          const index_t row = l * cache_rows_per_layer + (k0 - l * per_layer) / lanes + b;
          for (index_t chunk = 0; chunk < chunks; ++chunk)
            block_velocity_chunk<WithLaplacian>(act, zs, qs, g * chunks, chunk, r, norm2, l * n,
                                                w_panels, u_panels, vw_panels, vu_panels, lap, b,
                                                cache, row, np - b * lanes);
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const int b = p / lanes, e = p % lanes;
          for (int c = 0; c < d; ++c) v(k, c) = -coeff * vu_panels(b, c, e);
          for (int c = 0; c < dz; ++c) v(k, d + c) = -coeff * vw_panels(b, c, e);
          // Captured outside the if constexpr: nvcc's extended lambdas cannot first capture a
          // variable inside one.
          (void)laplacian;
          if constexpr (WithLaplacian) laplacian(k) = coeff * lap(p);
        });
      });
}

// G₁ features of block particle k (local row; layer l = k / per_layer, the rows being layer-major
// with per_layer rows of each layer) for sample i:
// scale · (σ0(π) q_{l+1}, (q_{l+1}·u) σ0'(π) z_l, (q_{l+1}·u) σ0'(π)), π = w·z_l + b (B13); for
// the generic kernel (the reference of the factored form in the tests).
template <class Act>
struct BlockFeatures {
  ConstMatrix theta;
  Kokkos::View<real***, Kokkos::LayoutRight, MemSpace> z, q;  // [L+1][n][d]
  index_t per_layer;
  int d;
  real scale;
  Act act;

  int size() const { return 2 * d + 1; }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    const index_t l = k / per_layer;
    real pre = theta(k, 2 * d), qu = 0;
    for (int c = 0; c < d; ++c) {
      pre += theta(k, d + c) * z(l, i, c);
      qu += theta(k, c) * q(l + 1, i, c);
    }
    real s, ds;
    act.eval(pre, s, ds);
    const real g = scale * qu * ds;
    for (int c = 0; c < d; ++c) {
      phi[c] = scale * s * q(l + 1, i, c);
      phi[d + c] = g * z(l, i, c);
    }
    phi[2 * d] = g;
  }
};

// The two scalar factors of one layer's G₁ features, φ_{i,k} = (S_ik q_i, T_ik z̃_i) with
// S = scale·σ0(π), T = scale·(q_i·u) σ0'(π), z = z_l, q = q_{l+1}: Derivative selects T.
template <class Act, bool Derivative>
struct BlockFactor {
  ConstMatrix theta, z, q;  // theta: the layer's rows
  real scale;
  Act act;

  int size() const { return 1; }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    const int d = int(z.extent(1));
    real pre = theta(k, 2 * d), qu = 0;
    for (int c = 0; c < d; ++c) {
      pre += theta(k, d + c) * z(i, c);
      if (Derivative) qu += theta(k, c) * q(i, c);
    }
    real s, ds;
    act.eval(pre, s, ds);
    phi[0] = Derivative ? scale * qu * ds : scale * s;
  }
};

// gram += Σ over the local rows [first, first + count) of one layer of φ φᵀ, in the factored form
// S Sᵀ ∘ (Q Qᵀ) + T Tᵀ ∘ (Z̃ Z̃ᵀ): two rank-count updates instead of one of rank count·(2d + 1).
template <class Space, class Act>
void accumulate_block_gram(const Space& space, ConstMatrix theta, index_t first, index_t count,
                           ConstMatrix z, ConstMatrix q, real scale, Act act, Matrix gram,
                           Workspace& scratch) {
  const ConstMatrix rows =
      Kokkos::subview(theta, std::make_pair(first, first + count), Kokkos::ALL);
  accumulate_gram(space, BlockFactor<Act, false>{rows, z, q, scale, act}, count, gram, scratch,
                  input_product_weight(space, q, false, scratch));
  accumulate_gram(space, BlockFactor<Act, true>{rows, z, q, scale, act}, count, gram, scratch,
                  input_product_weight(space, z, true, scratch));
}

}  // namespace mfsim::detail

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
// and calls accumulate_gram(space, features, particles, G, scratch): every kernel on the
// execution-space instance `space`, of ExecSpace or of any other execution space that can access
// MemSpace (Serial beside OpenMP: the tests run the kernels on each, tests/execution_spaces.hpp).
// The functor is copied to the device: it holds views and scalars, and may call nothing virtual. An
// optional *entry weight* w(i, j) multiplies each entry's sum, G_ij += w(i, j) Σ_k φ_{i,k}·φ_{j,k}:
// features with a product structure (model A's φ = (s, t·x̃): G = S Sᵀ + (T Tᵀ) ∘ (X̃ X̃ᵀ)) then take
// two rank-m updates of scalar features instead of one rank-m·p update (accumulate_two_layer_gram).
//
// Scheme (the packed GEMM of BLAS libraries, GPU-suitable, deterministic): the particles are taken
// in chunks of ~gram_panel_length/p. For each chunk, one kernel evaluates every feature of the
// chunk once (n × C·p), a second packs them twice — in row panels of gram_rows samples and column
// panels of gram_width samples, each feature's values contiguous within a panel — and a third adds
// the rank-C·p update to the upper triangle of G: one team per gram_tile² block, each thread a
// gram_rows × gram_vector register block (6 × 8 doubles on AVX2: 12 vector FMAs per 6 broadcasts
// and 2 vector loads, the core's multiply-add peak; on a GPU 6 × 1, the threads of a warp reading
// consecutive columns of one panel: coalesced, the row values broadcast).
// Memory: O(n²) for G plus O(n·gram_panel_length) for the panels; work n·m feature evaluations
// and n²·m·p/2 multiply-adds. Every entry is summed by one thread in a fixed order: no atomics,
// bitwise reproducible, and G is exactly symmetric.
#include <algorithm>

#include "detail/pair_tiles.hpp"
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim {

// A register block is gram_rows × gram_vector: 6 rows of two vector registers on the host, i.e.
// 12 independent FMA chains, enough to cover the FMA latency (tiles::accumulate_outer); with
// AVX-512 (a vector register is a whole tiles::lanes) that takes two of them.
#if defined(__AVX512F__)
inline constexpr int gram_host_vector = 2 * tiles::lanes;
#else
inline constexpr int gram_host_vector = tiles::lanes;
#endif
inline constexpr int gram_rows = tiles::block_rows;                    // samples per row panel
inline constexpr int gram_vector = tiles::gpu ? 1 : gram_host_vector;  // columns per thread
inline constexpr int gram_width = tiles::gpu ? 32 : gram_host_vector;  // samples per column panel
// Rows and columns of a team's block of G: whole register blocks and column panels.
inline constexpr int gram_tile = gram_width <= 16 ? 48 : 96;
inline constexpr int gram_panel_length = 512;  // features per sample held at a time (C·p)
static_assert(gram_tile % gram_rows == 0 && gram_tile % gram_width == 0 &&
                  gram_width % gram_vector == 0,
              "a team's block of G is made of whole register blocks and column panels");

// An entry weight fills the register block w[r][c] = w(i0 + r, j0 + c) (i0 a multiple of
// gram_rows, j0 of gram_vector; entries past n are not used). This one: a plain Gram matrix.
struct UnitGramWeight {
  template <int R, int V>
  KOKKOS_INLINE_FUNCTION void block(index_t, index_t, real (&w)[R][V]) const {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < V; ++c) w[r][c] = real(1);
  }
};

// The weight w(i, j) = x̃_i·x̃_j, x̃ = (x, 1) or x, of model A's factored Gram matrix: the samples
// packed as accumulate_gram packs features (row and column panels), so that a register block of
// weights is a vectorised product of depth dz. Made by input_product_weight.
struct InputProductWeight {
  Kokkos::View<real***, Kokkos::LayoutRight, MemSpace> rows, cols;  // (panel, coordinate, sample)

  template <int R, int V>
  KOKKOS_INLINE_FUNCTION void block(index_t i0, index_t j0, real (&w)[R][V]) const {
    const int dz = int(rows.extent(1)), width = int(cols.extent(2));
    const real* a = &rows(i0 / R, 0, 0);
    const real* b = &cols(j0 / width, 0, j0 % width);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < V; ++c) w[r][c] = 0;
    for (int q = 0; q < dz; ++q)
      for (int r = 0; r < R; ++r) {
        const real u = a[std::size_t(q) * R + r];
        MFSIM_LANES
        for (int c = 0; c < V; ++c) w[r][c] += u * b[std::size_t(q) * width + c];
      }
  }
};

// φ_{i,k} for k = k0 … k0 + count − 1, written one after another from out (p values each): a
// run of particles per call, so that a CPU build dispatches to its instruction-set clone once per
// run, not per feature (a GPU thread takes one particle).
inline constexpr index_t gram_feature_run = tiles::gpu ? 1 : 64;
template <class Features>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void evaluate_features(const Features& features, index_t i,
                                                               index_t k0, index_t count, real* out,
                                                               int p) {
  for (index_t c = 0; c < count; ++c) features(i, k0 + c, out + c * p);
}

// s[r][c] = Σ_{l < length} x[l·R + r] y[l·W + c]: one register block of the rank update, from a
// row panel (R samples per feature) and a column panel (W samples per feature, of which this block
// reads V). Summed in a local block, which the compiler keeps in registers (s itself might alias x
// or y).
template <int W, int R, int V>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void gram_register_block(real (&s)[R][V], const real* x,
                                                                 const real* y, int length) {
  real acc[R][V] = {};
  for (int l = 0; l < length; ++l) {
    for (int r = 0; r < R; ++r) {
      const real a = x[std::size_t(l) * R + r];
      MFSIM_LANES
      for (int c = 0; c < V; ++c) acc[r][c] += a * y[std::size_t(l) * W + c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < V; ++c) s[r][c] = acc[r][c];
}

// gram(i, j) += weight(i, j) Σ_{k < particles} φ_{i,k}·φ_{j,k} for all i, j < gram.extent(0),
// on `space`; the weight must be symmetric.
template <class Space, class Features, class Weight = UnitGramWeight>
void accumulate_gram(const Space& space, const Features& features, index_t particles, Matrix gram,
                     Workspace& scratch, const Weight& weight = {}) {
  static_assert(Kokkos::SpaceAccessibility<Space, MemSpace>::accessible,
                "the Gram kernels run where mfsim's views live");
  constexpr int R = gram_rows, V = gram_vector, W = gram_width, T = gram_tile;
  constexpr int row_blocks = T / R, column_blocks = T / V;
  using Panels = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;
  const index_t n = index_t(gram.extent(0));
  const int p = features.size();
  if (n == 0 || particles == 0 || p == 0) return;
  const index_t chunk = std::max<index_t>(1, std::min<index_t>(particles, gram_panel_length / p));
  const index_t rows_panels = (n + R - 1) / R, column_panels = (n + W - 1) / W;
  const Matrix values = scratch.view<Matrix>("gram_features", n, chunk * p);
  const Panels rows = scratch.view<Panels>("gram_row_panels", rows_panels, chunk * p, R);
  const Panels cols = scratch.view<Panels>("gram_column_panels", column_panels, chunk * p, W);
  const index_t tiles = (n + T - 1) / T;
  using Team = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
  for (index_t k0 = 0; k0 < particles; k0 += chunk) {
    const index_t count = std::min(chunk, particles - k0);
    const int length = int(count * p);
    const index_t runs = (count + gram_feature_run - 1) / gram_feature_run;
    Kokkos::parallel_for(
        "mfsim::Gram::features", Kokkos::RangePolicy<Space>(space, 0, n * runs),
        KOKKOS_LAMBDA(index_t e) {
          const index_t i = e / runs, c0 = (e % runs) * gram_feature_run;
          const index_t length = count - c0 < gram_feature_run ? count - c0 : gram_feature_run;
          evaluate_features(features, i, k0 + c0, length, &values(i, c0 * p), p);
        });
    // Packing (zero beyond n, so that register blocks never test their edges); one index
    // division per panel row, not per value.
    Kokkos::parallel_for(
        "mfsim::Gram::pack_rows", Kokkos::RangePolicy<Space>(space, 0, rows_panels * length),
        KOKKOS_LAMBDA(index_t e) {
          const index_t b = e / length, l = e % length;
          for (int r = 0; r < R; ++r)
            rows(b, l, r) = b * R + r < n ? values(b * R + r, l) : real(0);
        });
    Kokkos::parallel_for(
        "mfsim::Gram::pack_columns", Kokkos::RangePolicy<Space>(space, 0, column_panels * length),
        KOKKOS_LAMBDA(index_t e) {
          const index_t b = e / length, l = e % length;
          for (int c = 0; c < W; ++c)
            cols(b, l, c) = b * W + c < n ? values(b * W + c, l) : real(0);
        });
    Kokkos::parallel_for(
        "mfsim::Gram::rank_update", Team(space, int(tiles * (tiles + 1) / 2), Kokkos::AUTO),
        KOKKOS_LAMBDA(const typename Team::member_type& team) {
          // Team t → block (bi, bj), bi ≤ bj, row-major over the upper triangle.
          index_t bi = 0, rest = team.league_rank();
          while (rest >= tiles - bi) rest -= tiles - bi++;
          const index_t bj = bi + rest;
          Kokkos::parallel_for(
              Kokkos::TeamThreadRange(team, row_blocks * column_blocks), [&](int u) {
                const index_t i0 = bi * T + (u / column_blocks) * R;
                const index_t j0 = bj * T + (u % column_blocks) * V;
                // Register blocks past n, or wholly below the diagonal, add
                // nothing.
                if (i0 >= n || j0 >= n || i0 > j0 + V - 1) return;
                real s[R][V];
                gram_register_block<W>(s, &rows(i0 / R, 0, 0), &cols(j0 / W, 0, j0 % W), length);
                real w[R][V];
                weight.block(i0, j0, w);
                // Entry (i, j), i ≤ j, belongs to this block only: written there
                // and mirrored.
                for (int r = 0; r < R; ++r)
                  for (int c = 0; c < V; ++c) {
                    const index_t i = i0 + r, j = j0 + c;
                    if (i < n && j < n && i <= j) {
                      const real add = w[r][c] * s[r][c];
                      gram(i, j) += add;
                      if (i != j) gram(j, i) += add;
                    }
                  }
              });
        });
  }
}

// The weight x̃_i·x̃_j of the rows of x, packed in `scratch` (zero-padded panels) on `space`.
template <class Space>
InputProductWeight input_product_weight(const Space& space, ConstMatrix x, bool append_one,
                                        Workspace& scratch) {
  constexpr int R = gram_rows, W = gram_width;
  const index_t n = index_t(x.extent(0));
  const int d = int(x.extent(1)), dz = d + (append_one ? 1 : 0);
  const index_t row_panels = (n + R - 1) / R, column_panels = (n + W - 1) / W;
  using Panels = decltype(InputProductWeight::rows);
  InputProductWeight weight{scratch.view<Panels>("gram_input_rows", row_panels, dz, R),
                            scratch.view<Panels>("gram_input_columns", column_panels, dz, W)};
  const auto r = weight.rows, c = weight.cols;
  // Over the padded sample range: the entries past n are zeros, as in a fresh allocation.
  Kokkos::parallel_for(
      "mfsim::Gram::pack_inputs",
      Kokkos::RangePolicy<Space>(space, 0, std::max(row_panels * R, column_panels * W)),
      KOKKOS_LAMBDA(index_t i) {
        for (int q = 0; q < dz; ++q) {
          const real v = i >= n ? real(0) : q < d ? x(i, q) : real(1);
          if (i < row_panels * R) r(i / R, q, i % R) = v;
          if (i < column_panels * W) c(i / W, q, i % W) = v;
        }
      });
  return weight;
}

}  // namespace mfsim

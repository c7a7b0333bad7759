#pragma once
// The tile sizes and the kernel of the kNN search (diagnostics/knn.hpp describes the scheme).
// Private to the library and its tests.
#include <cstddef>
#include <limits>

#include "detail/pair_tiles.hpp"
#include "mfsim/core/math.hpp"

namespace mfsim {

// The register block: knn_rows references × knn_lanes queries; with AVX-512 (32 vector registers)
// two registers per row, 12 accumulators, enough independent chains to keep both the add and the
// FMA pipes busy. On a GPU one query per thread (its k-th best in a register, its list in
// scratch), the threads of a team reading the same reference values (broadcast).
#if defined(__AVX512F__)
inline constexpr int knn_host_lanes = 2 * tiles::lanes;
#else
inline constexpr int knn_host_lanes = tiles::lanes;
#endif
inline constexpr int knn_rows = tiles::block_rows;
inline constexpr int knn_lanes = tiles::gpu ? 1 : knn_host_lanes;
inline constexpr int knn_query_panels = tiles::gpu ? 64 : 8;  // query panels (threads) per team
// Reference panels per tile: 252 references, 24 KB at D = 12 in double (in L1 with the queries).
inline constexpr int knn_tile_panels = 42;

namespace detail {

// One query panel (L queries, packed at xp) against reference panels [t0, t1) of y (R references
// per panel, panel-major): the squared distances in an R × L register block, merged into each
// query's sorted list of its k best (lists[l·k … l·k + k)).
template <int R, int L>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void knn_scan_references(const real* xp, const real* y,
                                                                 index_t t0, index_t t1, int dim,
                                                                 index_t i0, index_t nr,
                                                                 bool skip_same_index, int k,
                                                                 real unset, real* lists) {
  real kth[L];
  for (int l = 0; l < L; ++l) kth[l] = lists[l * k + k - 1];
  for (index_t rp = t0; rp < t1; ++rp) {
    const index_t j0 = rp * R;
    const real* yp = y + std::size_t(rp) * dim * R;
    real d2[R][L] = {};
    for (int c = 0; c < dim; ++c)
      for (int r = 0; r < R; ++r) {
        const real u = yp[c * R + r];
        MFSIM_LANES
        for (int l = 0; l < L; ++l) {
          const real diff = xp[c * L + l] - u;
          d2[r][l] += diff * diff;
        }
      }
    // Rows past the last reference, and each query's own index, are no candidates.
    const bool own = skip_same_index && i0 < j0 + R && j0 < i0 + L;
    if (own || j0 + R > nr)
      for (int r = 0; r < R; ++r) {
        MFSIM_LANES
        for (int l = 0; l < L; ++l)
          if (j0 + r >= nr || (own && j0 + r == i0 + l)) d2[r][l] = unset;
      }
    // Does any distance of the block beat its query's k-th best? The lane-wise minimum over the
    // rows against the lane's k-th best, one vectorised or-reduction (scalar compares would cost
    // as much as the distances); then the insertion, lane by lane.
    real lo[L];
    int closer = 0;
    MFSIM_LANES_OR(closer)
    for (int l = 0; l < L; ++l) {
      real m = d2[0][l];
      for (int r = 1; r < R; ++r) m = d2[r][l] < m ? d2[r][l] : m;
      lo[l] = m;
      closer |= m < kth[l] ? 1 : 0;
    }
    if (!closer) continue;
    for (int l = 0; l < L; ++l) {
      if (!(lo[l] < kth[l])) continue;
      real* list = lists + l * k;
      for (int r = 0; r < R; ++r) {
        const real v = d2[r][l];
        if (!(v < list[k - 1])) continue;
        int pos = k - 1;
        for (; pos > 0 && list[pos - 1] > v; --pos) list[pos] = list[pos - 1];
        list[pos] = v;
      }
      kth[l] = list[k - 1];
    }
  }
}

// The search of `queries` among `references`, on the instance `space` (the library's ExecSpace,
// or, in the tests, any space of its kind that reads MemSpace): each query's k best squared
// distances start from lists(i, ·) where `lists` is given (else from none) and end there;
// distance(i) = the k-th distance where `distance` is given. The caller has checked k (1 …
// knn_max_k) and that enough references remain (kth_neighbour_distance, merge_nearest_neighbours).
template <class Space>
void knn_search(const Space& space, ConstMatrix queries, ConstMatrix references, int k,
                bool skip_same_index, Matrix lists, Vector distance, Workspace& scratch) {
  static_assert(tiles::fits_tiles<Space>);
  constexpr int R = knn_rows, L = knn_lanes, B = knn_query_panels, T = knn_tile_panels;
  using Team = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
  using Panels = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;
  using Scratch = tiles::ScratchViewOn<Space, real*>;
  const index_t nq = index_t(queries.extent(0)), nr = index_t(references.extent(0));
  const int dim = int(queries.extent(1));
  // Packing, zero beyond the last point (those lanes are never stored, those rows are masked).
  const index_t query_panels = (nq + L - 1) / L, reference_panels = (nr + R - 1) / R;
  const Panels x = scratch.view<Panels>("knn_query_panels", query_panels, dim, L);
  const Panels y = scratch.view<Panels>("knn_reference_panels", reference_panels, dim, R);
  Kokkos::parallel_for(
      "mfsim::Knn::pack_queries", Kokkos::RangePolicy<Space>(space, 0, query_panels * dim),
      KOKKOS_LAMBDA(index_t e) {
        const index_t b = e / dim;
        const int c = int(e % dim);
        for (int l = 0; l < L; ++l) x(b, c, l) = b * L + l < nq ? queries(b * L + l, c) : real(0);
      });
  Kokkos::parallel_for(
      "mfsim::Knn::pack_references", Kokkos::RangePolicy<Space>(space, 0, reference_panels * dim),
      KOKKOS_LAMBDA(index_t e) {
        const index_t b = e / dim;
        const int c = int(e % dim);
        for (int r = 0; r < R; ++r)
          y(b, c, r) = b * R + r < nr ? references(b * R + r, c) : real(0);
      });

  const std::size_t bytes = tiles::scratch_bytes({}, {B * L * k});
  const int level = tiles::scratch_level(bytes);
  const real unset = std::numeric_limits<real>::max();
  const index_t teams = (query_panels + B - 1) / B;
  Kokkos::parallel_for(
      "mfsim::Knn::kth_distance",
      Team(space, int(teams), tiles::gpu ? B : 1).set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Team::member_type& team) {
        const index_t p0 = index_t(team.league_rank()) * B;  // the team's first query panel
        const int blocks = int(query_panels - p0 < B ? query_panels - p0 : B);
        // best[(b·L + l)·k + j]: the j-th best squared distance of query (p0 + b)·L + l.
        Scratch best(team.team_scratch(level), B * L * k);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, B * L * k), [&](int t) {
          const index_t i = p0 * L + t / k;
          best(t) = lists.data() && i < nq ? lists(i, t % k) : unset;
        });
        for (index_t t0 = 0; t0 < reference_panels; t0 += T) {
          const index_t t1 = reference_panels - t0 < T ? reference_panels : t0 + T;
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
            const index_t i0 = (p0 + b) * L;
            const real* xp = &x(p0 + b, 0, 0);
            real* lists = best.data() + std::size_t(b) * L * k;
            knn_scan_references<R, L>(xp, y.data(), t0, t1, dim, i0, nr, skip_same_index, k, unset,
                                      lists);
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks * L), [&](int t) {
          const index_t i = p0 * L + t;
          if (i >= nq) return;
          if (distance.data()) distance(i) = math::sqrt(best(t * k + k - 1));
          if (lists.data())
            for (int j = 0; j < k; ++j) lists(i, j) = best(t * k + j);
        });
      });
}

}  // namespace detail

}  // namespace mfsim

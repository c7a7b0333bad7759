#include "mfsim/diagnostics/knn.hpp"

#include <limits>
#include <stdexcept>
#include <string>

#include "mfsim/core/math.hpp"

namespace mfsim {

void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance) {
  constexpr int R = knn_rows, L = knn_lanes, B = knn_row_blocks, T = knn_tile_panels;
  using Team = Kokkos::TeamPolicy<ExecSpace>;
  using Panels = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;
  const index_t nq = index_t(queries.extent(0)), nr = index_t(references.extent(0));
  const int dim = int(queries.extent(1));
  if (k < 1 || k > knn_max_k)
    throw std::invalid_argument("kth_neighbour_distance: k = " + std::to_string(k) +
                                " outside [1, " + std::to_string(knn_max_k) + "]");
  if (nq == 0) return;
  if (nr - (skip_same_index ? 1 : 0) < k || int(references.extent(1)) != dim)
    throw std::invalid_argument("kth_neighbour_distance: " + std::to_string(nr) +
                                " references cannot give a " + std::to_string(k) + "-th neighbour");
  const index_t row_panels = (nq + R - 1) / R, column_panels = (nr + L - 1) / L;
  // Packing, zero beyond the last point (those rows are never stored, those lanes are masked).
  const Panels x = uninitialized<Panels>("mfsim::Knn::query_panels", row_panels, dim, R);
  const Panels y = uninitialized<Panels>("mfsim::Knn::reference_panels", column_panels, dim, L);
  Kokkos::parallel_for(
      "mfsim::Knn::pack_queries", Kokkos::RangePolicy<ExecSpace>(0, row_panels * dim),
      KOKKOS_LAMBDA(index_t e) {
        const index_t b = e / dim;
        const int c = int(e % dim);
        for (int r = 0; r < R; ++r) x(b, c, r) = b * R + r < nq ? queries(b * R + r, c) : real(0);
      });
  Kokkos::parallel_for(
      "mfsim::Knn::pack_references", Kokkos::RangePolicy<ExecSpace>(0, column_panels * dim),
      KOKKOS_LAMBDA(index_t e) {
        const index_t b = e / dim;
        const int c = int(e % dim);
        for (int l = 0; l < L; ++l)
          y(b, c, l) = b * L + l < nr ? references(b * L + l, c) : real(0);
      });

  const std::size_t bytes = tiles::scratch_bytes({}, {B * R * k});
  const int level = tiles::scratch_level(bytes);
  const real unset = std::numeric_limits<real>::max();
  const index_t teams = (row_panels + B - 1) / B;
  Kokkos::parallel_for(
      "mfsim::Knn::kth_distance",
      Team(int(teams), tiles::gpu ? B : 1).set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const Team::member_type& team) {
        const index_t p0 = index_t(team.league_rank()) * B;  // the team's first row panel
        const int blocks = int(row_panels - p0 < B ? row_panels - p0 : B);
        // best[(b·R + r)·k + j]: the j-th best squared distance of query (p0 + b)·R + r.
        tiles::ScratchVector best(team.team_scratch(level), B * R * k);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, B * R * k),
                             [&](int t) { best(t) = unset; });
        for (index_t t0 = 0; t0 < column_panels; t0 += T) {
          const index_t t1 = column_panels - t0 < T ? column_panels : t0 + T;
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks), [&](int b) {
            const index_t i0 = (p0 + b) * R;
            const real* xp = &x(p0 + b, 0, 0);
            real* lists = best.data() + std::size_t(b) * R * k;
            real kth[R];
            for (int r = 0; r < R; ++r) kth[r] = lists[r * k + k - 1];
            for (index_t cp = t0; cp < t1; ++cp) {
              const index_t j0 = cp * L;
              const real* yp = &y(cp, 0, 0);
              real d2[R][L] = {};
              for (int c = 0; c < dim; ++c)
                for (int r = 0; r < R; ++r) {
                  const real u = xp[c * R + r];
                  MFSIM_LANES
                  for (int l = 0; l < L; ++l) {
                    const real diff = yp[c * L + l] - u;
                    d2[r][l] += diff * diff;
                  }
                }
              // Lanes past the last reference, and each query's own index, are no candidates.
              if (j0 + L > nr)
                for (int r = 0; r < R; ++r)
                  for (int l = int(nr - j0); l < L; ++l) d2[r][l] = unset;
              if (skip_same_index && i0 < j0 + L && j0 < i0 + R)
                for (int r = 0; r < R; ++r)
                  if (i0 + r >= j0 && i0 + r < j0 + L) d2[r][i0 + r - j0] = unset;
              // Does any distance of the block beat its query's k-th best? One vectorised
              // or-reduction over the lanes (scalar compares with a store would cost as much as
              // the distances); then the same test per row, and the insertion per lane.
              int closer = 0;
              MFSIM_LANES_OR(closer)
              for (int l = 0; l < L; ++l)
                for (int r = 0; r < R; ++r) closer |= d2[r][l] < kth[r] ? 1 : 0;
              if (!closer) continue;
              for (int r = 0; r < R; ++r) {
                int row_closer = 0;
                MFSIM_LANES_OR(row_closer)
                for (int l = 0; l < L; ++l) row_closer |= d2[r][l] < kth[r] ? 1 : 0;
                if (!row_closer) continue;
                real* list = lists + r * k;
                for (int l = 0; l < L; ++l) {
                  const real v = d2[r][l];
                  if (!(v < list[k - 1])) continue;
                  int pos = k - 1;
                  for (; pos > 0 && list[pos - 1] > v; --pos) list[pos] = list[pos - 1];
                  list[pos] = v;
                }
                kth[r] = list[k - 1];
              }
            }
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, blocks * R), [&](int t) {
          const index_t i = p0 * R + t;
          if (i < nq) distance(i) = math::sqrt(best(t * k + k - 1));
        });
      });
}

}  // namespace mfsim

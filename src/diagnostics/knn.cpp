#include "mfsim/diagnostics/knn.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "mfsim/core/math.hpp"

namespace mfsim {

void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance) {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Scratch = Kokkos::View<real*, ExecSpace::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  const index_t nq = index_t(queries.extent(0)), nr = index_t(references.extent(0));
  const int dim = int(queries.extent(1));
  if (k < 1 || k > knn_max_k)
    throw std::invalid_argument("kth_neighbour_distance: k = " + std::to_string(k) +
                                " outside [1, " + std::to_string(knn_max_k) + "]");
  if (nq == 0) return;
  if (nr - (skip_same_index ? 1 : 0) < k || int(references.extent(1)) != dim)
    throw std::invalid_argument("kth_neighbour_distance: " + std::to_string(nr) +
                                " references cannot give a " + std::to_string(k) + "-th neighbour");
  constexpr int block = 32;                                              // queries per team
  const int tile = std::max(1, std::min(256, 4096 / std::max(dim, 1)));  // references per tile
  const std::size_t bytes = Scratch::shmem_size(block * dim) + Scratch::shmem_size(block * k) +
                            Scratch::shmem_size(tile * dim);
  const int level = bytes <= 40 * 1024 ? 0 : 1;
  const real unset = std::numeric_limits<real>::max();
  Policy policy(int((nq + block - 1) / block), Kokkos::AUTO);
  policy.set_scratch_size(level, Kokkos::PerTeam(bytes));
  Kokkos::parallel_for(
      "mfsim::Knn::kth_distance", policy, KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t q0 = index_t(team.league_rank()) * block;
        const int count = int(nq - q0 < block ? nq - q0 : block);
        Scratch query(team.team_scratch(level), block * dim);
        Scratch best(team.team_scratch(level), block * k);  // ascending squared distances
        Scratch ref(team.team_scratch(level), tile * dim);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, count * dim),
                             [&](int t) { query(t) = queries(q0 + t / dim, t % dim); });
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, block * k),
                             [&](int t) { best(t) = unset; });
        for (index_t r0 = 0; r0 < nr; r0 += tile) {
          const int rows = int(nr - r0 < tile ? nr - r0 : tile);
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * dim),
                               [&](int t) { ref(t) = references(r0 + t / dim, t % dim); });
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, count), [&](int q) {
            real* list = best.data() + q * k;
            const real* x = query.data() + q * dim;
            for (int r = 0; r < rows; ++r) {
              if (skip_same_index && r0 + r == q0 + q) continue;
              const real* y = ref.data() + r * dim;
              real d2 = 0;
              for (int c = 0; c < dim; ++c) d2 += (x[c] - y[c]) * (x[c] - y[c]);
              if (d2 < list[k - 1]) {
                int pos = k - 1;
                for (; pos > 0 && list[pos - 1] > d2; --pos) list[pos] = list[pos - 1];
                list[pos] = d2;
              }
            }
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, count),
                             [&](int q) { distance(q0 + q) = math::sqrt(best(q * k + k - 1)); });
      });
}

}  // namespace mfsim

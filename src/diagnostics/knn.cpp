#include "mfsim/diagnostics/knn.hpp"

#include <limits>
#include <stdexcept>
#include <string>

#include "detail/knn_tiling.hpp"

namespace mfsim {

namespace {

// detail::knn_search (detail/knn_tiling.hpp) after checking k and the number of references.
void search(const ExecSpace& space, ConstMatrix queries, ConstMatrix references, int k,
            bool skip_same_index, NeighbourLists lists, Vector distance, Workspace& scratch) {
  const index_t nq = index_t(queries.extent(0)), nr = index_t(references.extent(0));
  const int dim = int(queries.extent(1));
  if (k < 1 || k > knn_max_k)
    throw std::invalid_argument("kth_neighbour_distance: k = " + std::to_string(k) +
                                " outside [1, " + std::to_string(knn_max_k) + "]");
  if (nq == 0) return;
  if ((!lists.data() && nr - (skip_same_index ? 1 : 0) < k) || int(references.extent(1)) != dim)
    throw std::invalid_argument("kth_neighbour_distance: " + std::to_string(nr) +
                                " references cannot give a " + std::to_string(k) + "-th neighbour");
  detail::knn_search(space, queries, references, k, skip_same_index, lists, distance, scratch);
}

}  // namespace

void kth_neighbour_distance(const ExecSpace& space, ConstMatrix queries, ConstMatrix references,
                            int k, bool skip_same_index, Vector distance, Workspace& scratch) {
  search(space, queries, references, k, skip_same_index, NeighbourLists(), distance, scratch);
}
void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance) {
  Workspace scratch;
  kth_neighbour_distance(ExecSpace(), queries, references, k, skip_same_index, distance, scratch);
}

void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance, Workspace& scratch) {
  kth_neighbour_distance(ExecSpace(), queries, references, k, skip_same_index, distance, scratch);
}

void reset_neighbour_lists(const ExecSpace& space, NeighbourLists lists) {
  Kokkos::deep_copy(space, lists, std::numeric_limits<real>::max());
}

void merge_nearest_neighbours(const ExecSpace& space, ConstMatrix queries, ConstMatrix references,
                              NeighbourLists lists, Workspace& scratch) {
  if (lists.extent(0) != queries.extent(0))
    throw std::invalid_argument("merge_nearest_neighbours: one list per query");
  search(space, queries, references, int(lists.extent(1)), false, lists, Vector(), scratch);
}

}  // namespace mfsim

#pragma once
// k-nearest-neighbour distances by tiled brute force, for the kNN KL estimators (MATH.md §5.3).
//
// Scheme (the register blocking of accumulate_gram, with a selection instead of a store): the
// queries are packed once in panels of knn_lanes points and the references in panels of knn_rows
// points (detail/knn_tiling.hpp), each coordinate's values contiguous within a panel. One team per
// knn_query_panels query panels; each thread owns one query panel and computes knn_rows × knn_lanes
// register blocks of squared distances Σ_c (x_c − y_c)² (a row per reference, a lane per query) —
// one broadcast, one vector subtraction and one vector FMA per coordinate and row, computed
// directly (no ‖x‖² + ‖y‖² − 2x·y cancellation: the same value as a plain loop up to the FMA's
// rounding) — sweeping the reference panels knn_tile_panels at a time (a tile shared by the team's
// threads while it sits in cache). Each query keeps its k best squared distances, ascending, in
// team scratch and its k-th best in a lane of a register: the block's lane-wise minimum over the
// rows is compared with it, and the insertion runs only for a distance that beats it (rare once the
// list has warmed up). Memory O((N_q + N_r)·D) for the panels plus O(N_q) for the result: never an
// N_q × N_r array. Work N_q·N_r·D subtract-and-FMA pairs; fine up to ~10⁵ points per set (a k-d
// tree would be the next step beyond). Every query's list is filled by one thread in a fixed
// order: deterministic, and ties leave the k-th distance unchanged.
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim {

inline constexpr int knn_max_k = 32;

// distance(i) = Euclidean distance from row i of `queries` to its k-th nearest row of
// `references`. With `skip_same_index`, reference row i is never a neighbour of query i: the
// leave-one-out search when both are the same set, or a particle with its own initial position
// left out. Throws std::invalid_argument unless 1 ≤ k ≤ knn_max_k and enough references remain.
// The packed panels live in `scratch`; the overload without one allocates its own. The work is
// enqueued on `space` (a stream on a GPU: fence it before `distance` is read elsewhere); the
// overloads without one use the default instance.
void kth_neighbour_distance(const ExecSpace& space, ConstMatrix queries, ConstMatrix references,
                            int k, bool skip_same_index, Vector distance, Workspace& scratch);
void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance, Workspace& scratch);
void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance);

// A search over references that come in chunks (never all stored at once): lists(i, ·) holds the
// k smallest squared distances (ascending, k = lists.extent(1)) from query i to the references
// seen so far. reset_neighbour_lists empties the lists (every entry the largest real);
// merge_nearest_neighbours merges one chunk of references into them. After the last chunk,
// lists(i, k − 1) is the squared k-th neighbour distance over all chunks, the same as one search
// of their union. Both enqueue on `space`.
using NeighbourLists = Kokkos::View<real**, Kokkos::LayoutRight, MemSpace>;
void reset_neighbour_lists(const ExecSpace& space, NeighbourLists lists);
void merge_nearest_neighbours(const ExecSpace& space, ConstMatrix queries, ConstMatrix references,
                              NeighbourLists lists, Workspace& scratch);

}  // namespace mfsim

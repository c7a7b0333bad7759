#pragma once
// k-nearest-neighbour distances by tiled brute force, for the kNN KL estimators (MATH.md §5.3).
//
// One team per block of queries: the team keeps its queries and their k best squared distances in
// scratch and streams the references through scratch tile by tile. Memory O((N_q + N_r)·D) for
// the points plus O(N_q) for the result: never an N_q × N_r array. Work O(N_q·N_r·D); fine up to
// ~10⁵ points per set (a k-d tree would be the next step beyond).
#include "mfsim/core/types.hpp"

namespace mfsim {

inline constexpr int knn_max_k = 32;

// distance(i) = Euclidean distance from row i of `queries` to its k-th nearest row of
// `references`. With `skip_same_index`, reference row i is never a neighbour of query i: the
// leave-one-out search when both are the same set, or a particle with its own initial position
// left out. Throws std::invalid_argument unless 1 ≤ k ≤ knn_max_k and enough references remain.
void kth_neighbour_distance(ConstMatrix queries, ConstMatrix references, int k,
                            bool skip_same_index, Vector distance);

}  // namespace mfsim

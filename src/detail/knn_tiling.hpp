#pragma once
// The tile sizes of the kNN search (diagnostics/knn.hpp describes the scheme). Private to the
// library and its tests.
#include "detail/pair_tiles.hpp"

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

}  // namespace mfsim

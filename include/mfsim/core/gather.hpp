#pragma once
// Gathers of sharded arrays onto rank 0 (what the H5MD writer and the diagnostics that need every
// particle take).
#include <cstdint>
#include <vector>

#include "mfsim/core/communicator.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

// Rank 0 receives the whole [global_rows][row_size] array in global order from every rank's
// `local` rows (row-major, `row_size` values each), empty elsewhere. The rows form `slices` equal
// slices and each rank holds a contiguous part of every slice, stored slice by slice, the parts
// ordered by rank within a slice (GroupSpec's sharding; one slice: contiguous shards). Collective.
std::vector<double> gather_slices(const Communicator& comm, const std::vector<double>& local,
                                  std::int64_t row_size, std::int64_t global_rows, int slices = 1);

// gather_slices on device matrices: the whole [global_rows][cols] matrix on rank 0, an empty
// matrix elsewhere (a single process: `local` itself, no copy). Collective.
ConstMatrix gather_rows(const Communicator& comm, ConstMatrix local, index_t global_rows,
                        int slices = 1);

}  // namespace mfsim

#include "mfsim/core/shard.hpp"

namespace mfsim {

Shard shard_of(std::int64_t count, int rank, int size, std::int64_t granule) {
  const std::int64_t units = count / granule;
  const std::int64_t base = units / size, extra = units % size;
  const std::int64_t begin = rank * base + (rank < extra ? rank : extra);
  const std::int64_t end = begin + base + (rank < extra ? 1 : 0);
  // The last rank also takes the items left over when count is not a multiple of granule.
  return {begin * granule, rank == size - 1 ? count : end * granule};
}

}  // namespace mfsim

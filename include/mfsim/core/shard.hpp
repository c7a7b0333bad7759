#pragma once
// How items (particles) are split over the ranks of a Communicator.
#include <cstdint>

namespace mfsim {

// The shard [begin, end) of `count` items owned by `rank` of `size`: contiguous, sizes differ by
// at most one granule. `granule` > 1 keeps groups of that many items (antithetic pairs) on one
// rank; when `count` is not a multiple of it, the last rank also takes the leftover items.
struct Shard {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};
Shard shard_of(std::int64_t count, int rank, int size, std::int64_t granule = 1);

}  // namespace mfsim

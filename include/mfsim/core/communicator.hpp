#pragma once
// The process group that shares the particles. Particles are split into contiguous shards by
// global id; models reduce partial sums (network outputs, Gram matrices, scalar diagnostics) over
// the group. A single process is the trivial group.
#include <cstdint>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // In-place sum over the group of a device vector or matrix.
  virtual void allreduce_sum(Vector /*values*/) const {}
  virtual void allreduce_sum(Matrix /*values*/) const {}
  virtual void allreduce_sum(double* /*values*/, int /*count*/) const {}
  virtual double allreduce_max(double value) const { return value; }

  double sum(double value) const {
    allreduce_sum(&value, 1);
    return value;
  }
  bool is_root() const { return rank() == 0; }
};

// The shard [begin, end) of `count` items owned by `rank` of `size`: contiguous, sizes differ by
// at most one granule. `granule` > 1 keeps groups of that many items (antithetic pairs) on one
// rank; when `count` is not a multiple of it, the last rank also takes the leftover items.
struct Shard {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};
Shard shard_of(std::int64_t count, int rank, int size, std::int64_t granule = 1);

// The single-process group, usable everywhere a Communicator is expected.
const Communicator& self_communicator();

}  // namespace mfsim

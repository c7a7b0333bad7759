#pragma once
// The process group that shares the particles. Particles are split into shards (contiguous by
// global id, or contiguous within each slice of a group: GroupSpec); models reduce partial sums
// (network outputs, Gram matrices, scalar diagnostics) over the group. A single process is the
// trivial group (self_communicator). Every operation is pure virtual: a backend that forgets one
// does not compile. Sharding (core/shard.hpp), gathers of sharded arrays (core/gather.hpp) and the
// error agreement (core/collective_error.hpp) are built on this interface, beside it.
#include <cstdint>
#include <string>

#include "mfsim/core/types.hpp"

namespace mfsim {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sum over the group of a device vector or matrix that kernels on `space` wrote: a
  // backend that reads the values on the host waits for that instance only, not for the whole
  // device, and the sums are ready for the next kernels on `space`. Without `space`, the default
  // instance.
  virtual void allreduce_sum(const ExecSpace& space, Vector values) const = 0;
  virtual void allreduce_sum(const ExecSpace& space, Matrix values) const = 0;
  void allreduce_sum(Vector values) const { allreduce_sum(ExecSpace(), values); }
  void allreduce_sum(Matrix values) const { allreduce_sum(ExecSpace(), values); }
  virtual void allreduce_sum(double* values, int count) const = 0;
  virtual double allreduce_max(double value) const = 0;
  // In-place all-gather of row blocks of a device matrix that kernels on `space` wrote: each rank
  // holds its own block, rows [offset, offset + count) of `rows` (blocks of different ranks do not
  // overlap; counts may be 0); on return every rank holds every rank's block there, ready for the
  // next kernels on `space`. Rows outside every block keep this rank's values. Each rank receives
  // the others' rows once (MPI_Allgatherv), not the whole matrix as a sum would.
  virtual void allgather_rows(const ExecSpace& space, Matrix rows, index_t offset,
                              index_t count) const = 0;
  // Rank 0 receives every rank's `count` values, concatenated in rank order, into `gathered`
  // (room for the sum of all counts there; ignored on other ranks). Each count must fit an int.
  virtual void gather(const double* local, std::int64_t count, double* gathered) const = 0;
  // Every rank receives rank `root`'s `values` / `text`.
  virtual void broadcast(double* values, int count, int root = 0) const = 0;
  virtual void broadcast(std::string& text, int root = 0) const = 0;
  // Ends every rank of the job at once with `code` (MPI_Abort): the last resort for an error that
  // only some ranks saw outside an agreement point. A single process just returns.
  virtual void abort(int code) const = 0;
  void barrier() const { allreduce_max(0); }

  double sum(double value) const {
    allreduce_sum(&value, 1);
    return value;
  }
  bool is_root() const { return rank() == 0; }
};

// The single-process group, usable everywhere a Communicator is expected.
const Communicator& self_communicator();

}  // namespace mfsim

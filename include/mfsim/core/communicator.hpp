#pragma once
// The process group that shares the particles. Particles are split into shards (contiguous by
// global id, or contiguous within each slice of a group: GroupSpec); models reduce partial sums
// (network outputs, Gram matrices, scalar diagnostics) over the group. A single process is the
// trivial group.
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
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
  // Rank 0 receives every rank's `count` values, concatenated in rank order, into `gathered`
  // (room for the sum of all counts there; ignored on other ranks). Each count must fit an int.
  virtual void gather(const double* local, std::int64_t count, double* gathered) const {
    if (count > 0) std::memcpy(gathered, local, std::size_t(count) * sizeof(double));
  }
  // Every rank receives rank `root`'s `values` / `text`.
  virtual void broadcast(double* /*values*/, int /*count*/, int /*root*/ = 0) const {}
  virtual void broadcast(std::string& /*text*/, int /*root*/ = 0) const {}
  // Ends every rank of the job at once with `code` (MPI_Abort): the last resort for an error that
  // only some ranks saw outside an agreement point. A single process just returns.
  virtual void abort(int /*code*/) const {}
  void barrier() const { allreduce_max(0); }

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

// A host copy in double, row-major, of a device view: what gather_slices and the H5MD files take.
std::vector<double> to_host_doubles(ConstMatrix m);
std::vector<double> to_host_doubles(ConstVector v);

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

// The single-process group, usable everywhere a Communicator is expected.
const Communicator& self_communicator();

// Collective: every rank calls it at the same point with the error it caught since the last such
// point (or none). If any rank failed, every rank throws the error of the lowest failing rank,
// same type (InputError, NonFiniteError, else std::runtime_error) and same message, so that all
// ranks print the same line and exit with the same code; otherwise it returns.
void raise_if_any_failed(const Communicator& comm, std::exception_ptr error);

// Whether the error being handled came from raise_if_any_failed, i.e. every rank holds it (and
// can meet once more at a barrier before exiting).
bool error_is_collective();

// Runs `work`, then raise_if_any_failed with what it threw: a stage that may fail on some ranks
// only (a file one rank cannot read) but must end every rank the same way. `work` must not call
// collectives itself, or a rank that throws early would leave the others waiting in them.
template <class Work>
void on_every_rank(const Communicator& comm, Work&& work) {
  std::exception_ptr error;
  try {
    work();
  } catch (...) {
    error = std::current_exception();
  }
  raise_if_any_failed(comm, error);
}

}  // namespace mfsim

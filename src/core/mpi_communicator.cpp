#include "mfsim/core/mpi_communicator.hpp"

#include <mpi.h>

#include <climits>
#include <stdexcept>
#include <string>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {
namespace {

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("MPI ") + what + " failed: " + std::string(text, length));
}

int checked_count(std::int64_t count) {
  if (count < 0 || count > INT_MAX)
    throw std::runtime_error("MPI message of " + std::to_string(count) +
                             " values exceeds the int count of MPI");
  return int(count);
}

// MPI on real: the MPI datatype of the particle precision.
MPI_Datatype real_type() {
  return sizeof(real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
}

// MPI reads and writes the values on the host: the kernels of `space` that wrote them must have
// finished first, and the copy back must have finished before its host buffer is freed. Only
// `space` is waited for, not the whole device. (The host mirror of a host view is the view
// itself, and the copies are then no-ops.)
template <class View>
void allreduce_view(const ExecSpace& space, View v) {
  if (v.span() == 0) return;
  // Contiguous views only: every view the models reduce is a whole or a leading-index slice.
  if (!v.span_is_contiguous()) throw std::logic_error("allreduce of a non-contiguous view");
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace(), v);
  Kokkos::deep_copy(space, host, v);
  space.fence();
  check(MPI_Allreduce(MPI_IN_PLACE, host.data(), checked_count(std::int64_t(host.span())),
                      real_type(), MPI_SUM, MPI_COMM_WORLD),
        "allreduce");
  Kokkos::deep_copy(space, v, host);
  space.fence();
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  using Communicator::allreduce_sum;
  void allreduce_sum(const ExecSpace& space, Vector values) const override {
    allreduce_view(space, values);
  }
  void allreduce_sum(const ExecSpace& space, Matrix values) const override {
    allreduce_view(space, values);
  }
  void allreduce_sum(double* values, int count) const override {
    if (count > 0)
      check(MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
            "allreduce");
  }
  // Blocks of whole rows: a row is one MPI datatype, so that counts and displacements are in rows
  // (int caps the rows, not the values). Every rank's offset and count first (one small
  // all-gather), then the rows in place.
  void allgather_rows(const ExecSpace& space, Matrix rows, index_t offset,
                      index_t count) const override {
    const std::int64_t mine[2] = {std::int64_t(offset), std::int64_t(count)};
    std::vector<std::int64_t> all(2 * static_cast<std::size_t>(size_));
    check(MPI_Allgather(mine, 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, MPI_COMM_WORLD),
          "allgather");
    std::vector<int> displacements(static_cast<std::size_t>(size_)),
        counts(static_cast<std::size_t>(size_));
    for (std::size_t r = 0; r < std::size_t(size_); ++r) {
      displacements[r] = checked_count(all[2 * r]);
      counts[r] = checked_count(all[2 * r + 1]);
    }
    if (rows.span() == 0) return;
    if (!rows.span_is_contiguous()) throw std::logic_error("allgather of a non-contiguous view");
    auto host = Kokkos::create_mirror_view(Kokkos::HostSpace(), rows);
    Kokkos::deep_copy(space, host, rows);
    space.fence();
    MPI_Datatype row;
    check(MPI_Type_contiguous(checked_count(std::int64_t(rows.extent(1))), real_type(), &row),
          "type");
    MPI_Type_commit(&row);
    const int code = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, host.data(), counts.data(),
                                    displacements.data(), row, MPI_COMM_WORLD);
    MPI_Type_free(&row);
    check(code, "allgatherv");
    Kokkos::deep_copy(space, rows, host);
    space.fence();
  }
  double allreduce_max(double value) const override {
    check(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    return value;
  }

  // Point to point rather than MPI_Gatherv, whose int displacements would cap the gathered total
  // at 2^31 values; here only each rank's part is capped.
  void gather(const double* local, std::int64_t count, double* gathered) const override {
    std::vector<std::int64_t> counts(std::size_t(size_), 0);
    check(MPI_Gather(&count, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, 0, MPI_COMM_WORLD),
          "gather");
    if (rank_ != 0) {
      check(MPI_Send(local, checked_count(count), MPI_DOUBLE, 0, tag, MPI_COMM_WORLD), "send");
      return;
    }
    if (count > 0) std::copy(local, local + count, gathered);
    std::int64_t offset = count;
    for (int r = 1; r < size_; ++r) {
      check(MPI_Recv(gathered + offset, checked_count(counts[std::size_t(r)]), MPI_DOUBLE, r, tag,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "receive");
      offset += counts[std::size_t(r)];
    }
  }

  void broadcast(double* values, int count, int root) const override {
    check(MPI_Bcast(values, count, MPI_DOUBLE, root, MPI_COMM_WORLD), "broadcast");
  }
  void broadcast(std::string& text, int root) const override {
    long long length = (long long)text.size();
    check(MPI_Bcast(&length, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "broadcast");
    text.resize(std::size_t(length));
    check(MPI_Bcast(text.data(), checked_count(length), MPI_CHAR, root, MPI_COMM_WORLD),
          "broadcast");
  }
  void abort(int code) const override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  static constexpr int tag = 7001;
  int rank_ = 0, size_ = 1;
};

}  // namespace

MpiSession::MpiSession(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) check(MPI_Init(&argc, &argv), "init");
  // Errors come back as codes (turned into exceptions above) instead of aborting the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  world_ = std::make_unique<MpiCommunicator>();
}

MpiSession::~MpiSession() {
  world_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace mfsim

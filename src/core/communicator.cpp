#include "mfsim/core/communicator.hpp"

#include <cstring>

namespace mfsim {

namespace {

// The trivial group: reductions, gathers and broadcasts over one rank leave the values as they
// are (a gather copies them; an all-gather of rows has nothing to bring), and abort returns (the
// caller then exits on its own).
class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  using Communicator::allreduce_sum;
  void allreduce_sum(const ExecSpace&, Vector) const override {}
  void allreduce_sum(const ExecSpace&, Matrix) const override {}
  void allreduce_sum(double*, int) const override {}
  void allgather_rows(const ExecSpace&, Matrix, index_t, index_t) const override {}
  double allreduce_max(double value) const override { return value; }
  void gather(const double* local, std::int64_t count, double* gathered) const override {
    if (count > 0) std::memcpy(gathered, local, std::size_t(count) * sizeof(double));
  }
  void broadcast(double*, int, int) const override {}
  void broadcast(std::string&, int) const override {}
  void abort(int) const override {}
};

}  // namespace

const Communicator& self_communicator() {
  static const SelfCommunicator self;
  return self;
}

}  // namespace mfsim

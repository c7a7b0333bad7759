// The agreement on errors (raise_if_any_failed) on a group of threads standing in for MPI ranks:
// every rank must end with the same error type and message, that of the lowest failing rank,
// whatever the others saw.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>

#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/communicator.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/gather.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {
namespace {

// Shared state of a group of threads: a reusable barrier and one slot per rank.
struct ThreadGroup {
  explicit ThreadGroup(int n) : size(n), values(std::size_t(n)) {}
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex);
    const long gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != gen; });
    }
  }
  int size;
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  long generation = 0;
  std::vector<double> values, buffer;
  std::vector<std::vector<double>> parts;  // gather: each rank's values
  std::string text;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size; }
  // The error agreement needs only max, gather and broadcast; sums are for the models' tests,
  // which run on MPI (tests/mpi). The all-gather of rows: its contract, tested below.
  using Communicator::allreduce_sum;
  void allreduce_sum(const ExecSpace&, Vector) const override { refuse(); }
  void allreduce_sum(const ExecSpace&, Matrix) const override { refuse(); }
  void allreduce_sum(double*, int) const override { refuse(); }
  void abort(int) const override { refuse(); }
  double allreduce_max(double value) const override {
    g_.values[std::size_t(rank_)] = value;
    g_.barrier();
    const double out = *std::max_element(g_.values.begin(), g_.values.end());
    g_.barrier();
    return out;
  }
  // Each rank publishes {offset, count, its rows}, then copies every other rank's rows in.
  void allgather_rows(const ExecSpace&, Matrix rows, index_t offset, index_t count) const override {
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rows);
    const std::size_t cols = host.extent(1);
    if (rank_ == 0) g_.parts.assign(std::size_t(g_.size), {});
    g_.barrier();
    auto& mine = g_.parts[std::size_t(rank_)];
    mine = {double(offset), double(count)};
    mine.insert(mine.end(), host.data() + std::size_t(offset) * cols,
                host.data() + std::size_t(offset + count) * cols);
    g_.barrier();
    for (const auto& part : g_.parts)
      std::copy(part.begin() + 2, part.end(), host.data() + std::size_t(part[0]) * cols);
    g_.barrier();
    Kokkos::deep_copy(rows, host);
  }
  void gather(const double* local, std::int64_t count, double* gathered) const override {
    if (rank_ == 0) g_.parts.assign(std::size_t(g_.size), {});
    g_.barrier();
    g_.parts[std::size_t(rank_)].assign(local, local + count);
    g_.barrier();
    if (rank_ == 0)
      for (const auto& part : g_.parts) gathered = std::copy(part.begin(), part.end(), gathered);
    g_.barrier();
  }
  void broadcast(double* values, int count, int root) const override {
    if (rank_ == root) g_.buffer.assign(values, values + count);
    g_.barrier();
    std::copy(g_.buffer.begin(), g_.buffer.begin() + count, values);
    g_.barrier();
  }
  void broadcast(std::string& text, int root) const override {
    if (rank_ == root) g_.text = text;
    g_.barrier();
    text = g_.text;
    g_.barrier();
  }

 private:
  [[noreturn]] static void refuse() {
    throw std::logic_error("ThreadCommunicator implements the error agreement's operations only");
  }
  ThreadGroup& g_;
  int rank_;
};

struct Outcome {
  std::string type, message;
};

// Runs `work(comm)` on every rank of a group of `size` threads; returns what each rank ended with.
std::vector<Outcome> on_ranks(int size, const std::function<void(const Communicator&)>& work) {
  ThreadGroup group(size);
  std::vector<Outcome> out(static_cast<std::size_t>(size));
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      const ThreadCommunicator comm(group, r);
      Outcome& o = out[std::size_t(r)];
      try {
        work(comm);
        o.type = "none";
      } catch (const InputError& e) {
        o = {"input", e.what()};
      } catch (const NonFiniteError& e) {
        o = {"non_finite", e.what()};
      } catch (const std::exception& e) {
        o = {"other", e.what()};
      }
    });
  for (auto& t : threads) t.join();
  return out;
}

// A backend that forgets an operation must not compile into one that silently does nothing.
static_assert(std::is_abstract_v<Communicator>, "every Communicator operation is pure virtual");

TEST(Communicator, EveryRankRaisesTheLowestFailingRanksError) {
  const auto out = on_ranks(3, [](const Communicator& comm) {
    on_every_rank(comm, [&] {
      if (comm.rank() == 1) throw InputError("init.path: bad file");
      if (comm.rank() == 2) throw NonFiniteError("a coordinate is NaN");
    });
  });
  for (const Outcome& o : out) {
    EXPECT_EQ(o.type, "input");
    EXPECT_EQ(o.message, "init.path: bad file (on rank 1 of 3)");
  }
}

TEST(Communicator, RankZerosErrorKeepsItsMessageAndType) {
  const auto out = on_ranks(4, [](const Communicator& comm) {
    on_every_rank(comm, [&] {
      if (comm.rank() == 0) throw std::runtime_error("cannot write run.h5");
    });
  });
  for (const Outcome& o : out) {
    EXPECT_EQ(o.type, "other");
    EXPECT_EQ(o.message, "cannot write run.h5");
  }
}

TEST(Communicator, NoErrorNoThrowAndTheGroupGoesOn) {
  const auto out = on_ranks(3, [](const Communicator& comm) {
    on_every_rank(comm, [] {});
    on_every_rank(comm, [&] {
      if (comm.rank() == 2) throw NonFiniteError("the training loss became non-finite");
    });
  });
  for (const Outcome& o : out) {
    EXPECT_EQ(o.type, "non_finite");
    EXPECT_EQ(o.message, "the training loss became non-finite (on rank 2 of 3)");
  }
}

// gather_slices reassembles a group sharded per slice (GroupSpec, shard_group) in global order:
// each rank's value of coordinate c of global id k is 10k + c.
TEST(Communicator, GatherSlicesPutsEveryRowAtItsGlobalId) {
  for (int slices : {1, 4})
    for (int size : {1, 2, 3}) {
      const index_t per_slice = 7;  // shards of 4 and 3 rows on 2 ranks, 2, 2 and 3 on 3
      std::vector<double> result;
      on_ranks(size, [&](const Communicator& comm) {
        GroupSpec g;
        g.global_count = per_slice * slices;
        g.slices = slices;
        shard_group(g, comm.rank(), comm.size());
        std::vector<double> local;
        for (index_t k = 0; k < g.local_count; ++k)
          for (int c = 0; c < 2; ++c) local.push_back(10.0 * double(g.rows().global_row(k)) + c);
        auto all = gather_slices(comm, local, 2, g.global_count, slices);
        if (comm.is_root()) result = std::move(all);
      });
      ASSERT_EQ(result.size(), std::size_t(2 * per_slice * slices));
      for (std::size_t i = 0; i < result.size(); ++i)
        EXPECT_EQ(result[i], 10.0 * double(i / 2) + double(i % 2))
            << "slices " << slices << ", " << size << " ranks, value " << i;
    }
}

// allgather_rows: uneven blocks (one empty on 3 ranks) of a matrix with rows outside every block;
// each rank ends with every block and its own values elsewhere. The MPI backend's is run by the
// population flow's MPI cases (tests/mpi); the single process's (nothing to bring) by every
// one-rank run.
TEST(Communicator, AllgatherRowsGivesEveryRankEveryBlock) {
  const int cols = 3;
  for (int size : {1, 2, 3}) {
    // (offset, count) of each rank: rows 1 … 7 of 9, split unevenly (an empty block on 3 ranks).
    const std::vector<std::vector<std::pair<index_t, index_t>>> blocks = {
        {{1, 7}}, {{1, 4}, {5, 3}}, {{1, 4}, {5, 0}, {5, 3}}};
    const auto block = [&](std::size_t r) {
      return blocks[std::size_t(size - 1)][r];
    };
    // Allocated and filled here: the ranks' threads only exchange.
    std::vector<Matrix> rows;
    for (std::size_t r = 0; r < std::size_t(size); ++r) {
      rows.emplace_back("rows", 9, cols);
      auto h = Kokkos::create_mirror_view(rows.back());
      const auto [offset, count] = block(r);
      for (int i = 0; i < 9; ++i)
        for (int c = 0; c < cols; ++c)
          h(i, c) = real(i >= offset && i < offset + count ? 10.0 * i + c : -1.0 - double(r));
      Kokkos::deep_copy(rows.back(), h);
    }
    on_ranks(size, [&](const Communicator& comm) {
      const auto r = std::size_t(comm.rank());
      comm.allgather_rows(ExecSpace(), rows[r], block(r).first, block(r).second);
    });
    for (std::size_t r = 0; r < std::size_t(size); ++r) {
      const auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rows[r]);
      for (int i = 0; i < 9; ++i)
        for (int c = 0; c < cols; ++c)
          EXPECT_EQ(double(h(i, c)), i >= 1 && i < 8 ? 10.0 * i + c : -1.0 - double(r))
              << size << " ranks, rank " << r << ", row " << i;
    }
  }
}

TEST(Communicator, OneProcessRethrowsTheOriginal) {
  EXPECT_THROW(on_every_rank(self_communicator(), [] { throw InputError("x"); }), InputError);
  EXPECT_NO_THROW(raise_if_any_failed(self_communicator(), nullptr));
}

}  // namespace
}  // namespace mfsim

// The agreement on errors (raise_if_any_failed) on a group of threads standing in for MPI ranks:
// every rank must end with the same error type and message, that of the lowest failing rank,
// whatever the others saw.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "mfsim/core/communicator.hpp"
#include "mfsim/core/error.hpp"

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
  std::string text;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size; }
  double allreduce_max(double value) const override {
    g_.values[std::size_t(rank_)] = value;
    g_.barrier();
    const double out = *std::max_element(g_.values.begin(), g_.values.end());
    g_.barrier();
    return out;
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

TEST(Communicator, OneProcessRethrowsTheOriginal) {
  EXPECT_THROW(on_every_rank(self_communicator(), [] { throw InputError("x"); }), InputError);
  EXPECT_NO_THROW(raise_if_any_failed(self_communicator(), nullptr));
}

}  // namespace
}  // namespace mfsim

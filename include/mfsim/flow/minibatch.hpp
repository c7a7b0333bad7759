#pragma once
// Stochastic gradients: the velocity of a step computed on B samples instead of the n training
// samples (flow.batch_size), the loss and its derivative averaged over them, so that the expected
// velocity is the full-batch one (MATH.md (A5) with (1/B) Σ over the minibatch). Either B training
// samples drawn uniformly with replacement, or with `online` B fresh samples of the synthetic data
// law at every step (online SGD on the population). A step's minibatch is a pure function of
// (seed, step): the same on every rank, in any thread count, and on a restart.
#include <cstdint>
#include <optional>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/models/evaluation.hpp"

namespace mfsim {

struct MinibatchSettings {
  index_t size = 0;     // B; 0: the full batch
  bool online = false;  // fresh samples at every step (synthetic data only)
  std::uint64_t seed = 2;
  SyntheticDataSpec online_data;  // the law the online samples come from

  // Whether the steps use minibatches: B < n_train draws from the training set (B >= n_train is
  // the full batch, bitwise), online always.
  bool active(index_t n_train) const { return size > 0 && (online || size < n_train); }
};

class MinibatchSampler {
 public:
  // The online law's teacher is drawn on `space` (without it, the default instance).
  MinibatchSampler(const ExecSpace& space, const MinibatchSettings& settings, const Dataset& data);
  MinibatchSampler(const MinibatchSettings& settings, const Dataset& data)
      : MinibatchSampler(ExecSpace(), settings, data) {}
  // Draws step `step`'s minibatch into e.batch_x and e.batch_y (e from make_evaluation(B)), on
  // the instance `space` (without it, the default instance).
  void draw(const ExecSpace& space, index_t step, Evaluation& e) const;
  void draw(index_t step, Evaluation& e) const { draw(ExecSpace(), step, e); }

 private:
  MinibatchSettings settings_;
  Dataset data_;
  std::optional<SyntheticSampler> online_;
};

}  // namespace mfsim

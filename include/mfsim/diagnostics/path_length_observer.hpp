#pragma once
// w2_path_length: ℓ(t) = ∫_{t₀}^t S(u)^{1/2} du, S the mean squared particle speed (summed over
// groups; MATH.md §3.7 (T4)), an upper bound on W₂(ρ_t, ρ_{t₀}) (for the ResNet, on the
// depth-averaged W₂ of the blocks together with the head's). Accumulated at every step by the
// trapezoid rule on the speeds at the step points (exact for constant velocities); t₀ is the start
// of the original run: a restart continues from the length the init file holds at the restart
// step (continue_from), or starts again from 0 if it holds none.
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class PathLengthObserver final : public Observer {
 public:
  explicit PathLengthObserver(index_t every) : every_(every) {}
  void on_step(const FlowPoint& p) override;
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "path_length"; }
  index_t every() const override { return every_; }
  // On a restart: ℓ at the restart step, read from the init file; the run adds to it.
  void continue_from(double length) { length_ = length; }

 private:
  index_t every_;
  bool started_ = false;
  double length_ = 0, last_time_ = 0, last_speed_ = 0;
};

}  // namespace mfsim

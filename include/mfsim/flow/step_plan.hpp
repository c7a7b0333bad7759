#pragma once
// What the run loop does at one step, as a pure function of the run's rules (RunSchedule) and of
// where it stands (RunPosition): which evaluations, which observers, whether a snapshot, whether
// this is the last point and why. The loop (run.cpp) only carries the plan out, so that every
// cadence and stopping rule is tested here, without a model.
#include <cstdint>
#include <string>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

// Why a run ended: its step budget, its end time, the loss tolerance, or a stop signal (the
// caller then exits with 128 + the signal).
enum class StopReason { steps, t_end, loss_tol, signal };
std::string stop_reason_name(StopReason r);

// The rules of a run, fixed when it starts.
struct RunSchedule {
  index_t steps = 0;    // steps this run may take
  double dt = 0.01;     // the step; the last one is shortened to land on t_end
  double t_end = 0;     // 0: no time limit
  double loss_tol = 0;  // stop once the full-batch loss is at or below it
  index_t observe_every = 0, snapshot_every = 0;  // 0: at the first and last point only
  // Each observer's cadence: its own, or observe_every where it has none.
  std::vector<index_t> observer_every;
  bool minibatches = false;  // steps take minibatch velocities; the full batch only where needed
  // The time of step 0 (start_time − first_step·dt; 0 for a fresh run): a step's time is computed
  // from its number, never summed, so a restart reproduces the uninterrupted run's times bitwise.
  double time_origin = 0;

  bool time_limited() const { return t_end > 0; }
};

// Where the run stands at the start of an iteration.
struct RunPosition {
  index_t done = 0;             // steps taken by this run so far
  index_t step = 0;             // the step number of the current state
  double time = 0;              // its flow time
  bool stop_requested = false;  // a stop signal arrived: this point is the last one
};

struct StepPlan {
  bool full_evaluation = false;  // evaluate the full batch (observers, snapshot, loss test)
  bool minibatch_step = false;   // evaluate this step's minibatch (a step follows on it)
  bool last = false;             // no step follows this point
  StopReason reason = StopReason::steps;  // why, when last
  std::uint64_t observers = 0;            // bit k: observer k observes at this point
  bool counts_as_observation = false;     // on the run's own cadence (summary.observations)
  bool snapshot = false;                  // append the particles
  double dt = 0;                          // the step that follows (0 when last)

  bool observes(std::size_t k) const { return (observers >> k) & 1u; }
};

// The most observers a plan can address.
constexpr std::size_t max_observers = 64;

// The plan before anything is evaluated. A loss tolerance can still end the run at this point:
// see with_loss.
StepPlan plan_step(const RunSchedule& schedule, const RunPosition& at);

// The plan once the full-batch loss of this point is known: at or below loss_tol it becomes the
// last point (observed and snapshotted as such).
StepPlan with_loss(const RunSchedule& schedule, const RunPosition& at, const StepPlan& plan,
                   double loss);

// The plan once a stop was asked for while this point was observed (an observer asked for it, as a
// Python callback does): this point becomes the last, observed and snapshotted as such; a plan
// that was already the last stays as it is.
StepPlan with_stop(const RunSchedule& schedule, const RunPosition& at, const StepPlan& plan);

// The time of step `next_step`, reached by a step of `dt`: t_end exactly when the step was
// shortened to land on it, else time_origin + next_step·dt.
double time_after_step(const RunSchedule& schedule, index_t next_step, double dt);

}  // namespace mfsim

#include "mfsim/flow/step_plan.hpp"

#include <stdexcept>

namespace mfsim {

std::string stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::steps:
      return "steps";
    case StopReason::t_end:
      return "t_end";
    case StopReason::loss_tol:
      return "loss_tol";
    case StopReason::signal:
      break;
  }
  return "signal";
}

namespace {

bool on_cadence(index_t step, index_t every) {
  return every > 0 && step % every == 0;
}

// The observers, the observation count and the snapshot of a point whose evaluation and `last`
// are decided.
void choose_outputs(const RunSchedule& schedule, const RunPosition& at, StepPlan& plan) {
  const bool first = at.done == 0;
  plan.observers = 0;
  if (plan.full_evaluation)
    for (std::size_t k = 0; k < schedule.observer_every.size(); ++k)
      if (first || plan.last || on_cadence(at.step, schedule.observer_every[k]))
        plan.observers |= std::uint64_t(1) << k;
  plan.counts_as_observation = first || plan.last || on_cadence(at.step, schedule.observe_every);
  plan.snapshot = first || plan.last || on_cadence(at.step, schedule.snapshot_every);
  plan.dt = plan.last ? 0.0 : schedule.dt;
  if (!plan.last && schedule.time_limited() && at.time + schedule.dt > schedule.t_end)
    plan.dt = schedule.t_end - at.time;
}

// `plan` ended at this point for `reason`: the last point (no minibatch step follows), observed
// and snapshotted as such.
StepPlan ended(const RunSchedule& schedule, const RunPosition& at, StepPlan plan,
               StopReason reason) {
  plan.last = true;
  plan.reason = reason;
  plan.minibatch_step = false;
  choose_outputs(schedule, at, plan);
  return plan;
}

}  // namespace

StepPlan plan_step(const RunSchedule& schedule, const RunPosition& at) {
  if (schedule.observer_every.size() > max_observers)
    throw std::invalid_argument("plan_step: more than 64 observers");
  StepPlan plan;
  const bool budget_spent = at.done >= schedule.steps;
  const bool time_spent = schedule.time_limited() && at.time >= schedule.t_end * (1 - 1e-12);
  plan.last = budget_spent || time_spent || at.stop_requested;
  // The reason that wins when several hold: the budget, then the end time, then the signal.
  plan.reason = budget_spent ? StopReason::steps
                : time_spent ? StopReason::t_end
                             : StopReason::signal;
  bool observed =
      on_cadence(at.step, schedule.observe_every) || on_cadence(at.step, schedule.snapshot_every);
  for (index_t every : schedule.observer_every) observed = observed || on_cadence(at.step, every);
  plan.full_evaluation = !schedule.minibatches || at.done == 0 || plan.last || observed;
  plan.minibatch_step = schedule.minibatches && !plan.last;
  choose_outputs(schedule, at, plan);
  return plan;
}

StepPlan with_loss(const RunSchedule& schedule, const RunPosition& at, const StepPlan& plan,
                   double loss) {
  if (!plan.full_evaluation || (plan.last && plan.reason == StopReason::steps) ||
      !(loss <= schedule.loss_tol))
    return plan;
  return ended(schedule, at, plan, StopReason::loss_tol);
}

StepPlan with_stop(const RunSchedule& schedule, const RunPosition& at, const StepPlan& plan) {
  return plan.last ? plan : ended(schedule, at, plan, StopReason::signal);
}

double time_after_step(const RunSchedule& schedule, index_t next_step, double dt) {
  return (schedule.time_limited() && dt < schedule.dt)
             ? schedule.t_end
             : schedule.time_origin + double(next_step) * schedule.dt;
}

}  // namespace mfsim

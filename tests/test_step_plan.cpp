// The step plan: what the run loop does at each point, as a pure function of the run's rules and
// where it stands (cadences, the first and last point, minibatches, t_end, loss_tol, a stop
// signal, restarted times).
#include <gtest/gtest.h>

#include <vector>

#include "mfsim/flow/step_plan.hpp"

namespace mfsim {
namespace {

RunSchedule schedule(index_t steps, index_t observe_every, index_t snapshot_every,
                     std::vector<index_t> observer_every = {}) {
  RunSchedule s;
  s.steps = steps;
  s.dt = 0.1;
  s.observe_every = observe_every;
  s.snapshot_every = snapshot_every;
  s.observer_every = std::move(observer_every);
  return s;
}

// The plans of a whole fixed-step run from step 0 (no loss, no signal).
std::vector<StepPlan> plans_of(const RunSchedule& s) {
  std::vector<StepPlan> plans;
  RunPosition at;
  for (;; ++at.done) {
    plans.push_back(plan_step(s, at));
    if (plans.back().last) return plans;
    ++at.step;
    at.time = time_after_step(s, at.step, plans.back().dt);
  }
}

// The steps at which `pick` holds.
template <class Pick>
std::vector<index_t> steps_where(const std::vector<StepPlan>& plans, Pick pick) {
  std::vector<index_t> steps;
  for (std::size_t j = 0; j < plans.size(); ++j)
    if (pick(plans[j])) steps.push_back(index_t(j));
  return steps;
}

TEST(StepPlan, CadencesIncludeTheFirstAndLastPoint) {
  const auto plans = plans_of(schedule(25, 10, 20, {10, 4}));
  ASSERT_EQ(plans.size(), 26u);
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.observes(0); }),
            (std::vector<index_t>{0, 10, 20, 25}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.observes(1); }),
            (std::vector<index_t>{0, 4, 8, 12, 16, 20, 24, 25}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.counts_as_observation; }),
            (std::vector<index_t>{0, 10, 20, 25}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.snapshot; }),
            (std::vector<index_t>{0, 20, 25}));
  // Without minibatches every point evaluates the full batch, and only the last takes no step.
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.full_evaluation; }).size(), 26u);
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.last; }),
            (std::vector<index_t>{25}));
  EXPECT_EQ(plans.back().reason, StopReason::steps);
  EXPECT_EQ(plans.back().dt, 0.0);
  EXPECT_EQ(plans[3].dt, 0.1);
}

TEST(StepPlan, ZeroCadenceMeansFirstAndLastOnly) {
  const auto plans = plans_of(schedule(7, 0, 0, {0}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.observes(0); }),
            (std::vector<index_t>{0, 7}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.snapshot; }),
            (std::vector<index_t>{0, 7}));
}

TEST(StepPlan, MinibatchesEvaluateTheFullBatchOnlyWhereSomethingReadsIt) {
  RunSchedule s = schedule(12, 5, 6, {5, 4});
  s.minibatches = true;
  const auto plans = plans_of(s);
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.full_evaluation; }),
            (std::vector<index_t>{0, 4, 5, 6, 8, 10, 12}));
  EXPECT_EQ(steps_where(plans, [](const StepPlan& p) { return p.minibatch_step; }).size(), 12u);
  EXPECT_FALSE(plans.back().minibatch_step);
  // An observer observes only where the full batch is evaluated.
  for (const StepPlan& p : plans)
    if (p.observers != 0) EXPECT_TRUE(p.full_evaluation);
}

TEST(StepPlan, TheLastStepIsShortenedToLandOnTEndExactly) {
  RunSchedule s = schedule(1000, 1, 0);
  s.t_end = 0.25;
  const auto plans = plans_of(s);
  ASSERT_EQ(plans.size(), 4u);  // t = 0, 0.1, 0.2, then 0.25
  EXPECT_EQ(plans[2].dt, 0.25 - 0.2);
  EXPECT_EQ(time_after_step(s, 3, plans[2].dt), 0.25);
  EXPECT_EQ(plans.back().reason, StopReason::t_end);
  EXPECT_TRUE(plans.back().snapshot);
}

TEST(StepPlan, TheStepBudgetWinsOverTheEndTime) {
  RunSchedule s = schedule(2, 1, 0);
  s.t_end = 0.2;
  const auto plans = plans_of(s);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans.back().reason, StopReason::steps);
}

TEST(StepPlan, ALossAtTheToleranceEndsTheRunAtThatPoint) {
  RunSchedule s = schedule(100, 10, 50, {10});
  s.loss_tol = 1e-3;
  const RunPosition at{7, 7, 0.7, false};
  const StepPlan before = plan_step(s, at);
  EXPECT_FALSE(before.last);
  EXPECT_FALSE(before.observes(0));
  EXPECT_FALSE(with_loss(s, at, before, 2e-3).last);
  const StepPlan ended = with_loss(s, at, before, 1e-3);
  EXPECT_TRUE(ended.last);
  EXPECT_EQ(ended.reason, StopReason::loss_tol);
  EXPECT_TRUE(ended.observes(0));
  EXPECT_TRUE(ended.snapshot);
  EXPECT_EQ(ended.dt, 0.0);
  EXPECT_FALSE(with_loss(s, at, before, std::nan("")).last);  // NaN is never below a tolerance
  // The budget's own last point keeps its reason.
  const RunPosition end{100, 100, 10.0, false};
  EXPECT_EQ(with_loss(s, end, plan_step(s, end), 0.0).reason, StopReason::steps);
}

TEST(StepPlan, ALossOffTheFullBatchNeverEndsTheRun) {
  RunSchedule s = schedule(100, 10, 0, {10});
  s.minibatches = true;
  s.loss_tol = 1;
  const RunPosition at{3, 3, 0.3, false};
  const StepPlan plan = plan_step(s, at);
  ASSERT_FALSE(plan.full_evaluation);
  EXPECT_FALSE(with_loss(s, at, plan, 0.0).last);
}

TEST(StepPlan, AStopRequestMakesThisPointTheLastObservedAndSnapshotted) {
  RunSchedule s = schedule(100, 10, 50, {10});
  s.minibatches = true;
  const RunPosition at{13, 13, 1.3, true};
  const StepPlan plan = plan_step(s, at);
  EXPECT_TRUE(plan.last);
  EXPECT_EQ(plan.reason, StopReason::signal);
  EXPECT_TRUE(plan.full_evaluation);
  EXPECT_FALSE(plan.minibatch_step);
  EXPECT_TRUE(plan.observes(0));
  EXPECT_TRUE(plan.snapshot);
  // A run that ends by its own rules at the same point ends for them.
  EXPECT_EQ(plan_step(s, RunPosition{100, 113, 11.3, true}).reason, StopReason::steps);
}

TEST(StepPlan, AStopAskedForWhileAPointIsObservedMakesItTheLast) {
  RunSchedule s = schedule(100, 10, 50, {4, 10});
  s.minibatches = true;
  const RunPosition at{12, 12, 1.2, false};
  const StepPlan plan = plan_step(s, at);
  ASSERT_FALSE(plan.last);
  ASSERT_TRUE(plan.observes(0));  // the observer on a cadence of 4 asks to stop here
  ASSERT_FALSE(plan.observes(1));
  const StepPlan ended = with_stop(s, at, plan);
  EXPECT_TRUE(ended.last);
  EXPECT_EQ(ended.reason, StopReason::signal);
  EXPECT_TRUE(ended.observes(0));
  EXPECT_TRUE(ended.observes(1));  // every observer sees the last point
  EXPECT_TRUE(ended.snapshot);
  EXPECT_TRUE(ended.counts_as_observation);
  EXPECT_FALSE(ended.minibatch_step);
  EXPECT_EQ(ended.dt, 0.0);
  // A point that is already the last keeps its reason.
  const RunPosition end{100, 100, 10.0, false};
  EXPECT_EQ(with_stop(s, end, plan_step(s, end)).reason, StopReason::steps);
}

TEST(StepPlan, ARestartComputesTheTimesOfTheUninterruptedRun) {
  RunSchedule fresh = schedule(100, 1, 0);
  fresh.dt = 0.01;
  RunSchedule restarted = fresh;
  const index_t first_step = 37;
  const double start_time = time_after_step(fresh, first_step, fresh.dt);
  restarted.time_origin = start_time - double(first_step) * restarted.dt;
  for (index_t step = first_step; step < 100; ++step)
    EXPECT_EQ(time_after_step(restarted, step, restarted.dt),
              time_after_step(fresh, step, fresh.dt))
        << step;
}

TEST(StepPlan, RefusesMoreObserversThanItCanAddress) {
  const RunSchedule s = schedule(1, 1, 1, std::vector<index_t>(max_observers + 1, 1));
  EXPECT_THROW(plan_step(s, RunPosition{}), std::invalid_argument);
}

TEST(StepPlan, StopReasonsHaveNames) {
  EXPECT_EQ(stop_reason_name(StopReason::steps), "steps");
  EXPECT_EQ(stop_reason_name(StopReason::t_end), "t_end");
  EXPECT_EQ(stop_reason_name(StopReason::loss_tol), "loss_tol");
  EXPECT_EQ(stop_reason_name(StopReason::signal), "signal");
}

}  // namespace
}  // namespace mfsim

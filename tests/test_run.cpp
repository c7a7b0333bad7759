// The run loop: stopping rules, observation and snapshot cadence, non-finite detection.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <map>
#include <string>
#include <thread>

#include "helpers.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

class MemoryOutput : public RunOutput {
 public:
  std::map<std::string, std::vector<index_t>> observed;
  std::vector<index_t> snapshot_steps;
  std::vector<double> snapshot_times;
  std::vector<std::vector<double>> snapshots;
  using RunOutput::append_particles;
  void append_particles(const ExecSpace&, index_t step, double time,
                        const ParticleState& s) override {
    snapshot_steps.push_back(step);
    snapshot_times.push_back(time);
    snapshots.push_back(test::host(s.theta[0]));
  }
  void append_observable(const std::string& name, index_t step, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {
    observed[name].push_back(step);
  }
  void flush() override { ++flushes; }
  int flushes = 0;
};

struct SmallFlow {
  Dataset data = make_synthetic_dataset(test::small_data(3, 10, 5));
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
  explicit SmallFlow(double beta = 1) {
    spec.width = 16;
    spec.beta = beta;
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), false, "s");
    model->initialize(state, 1, true);
  }
};

// A fixed-step run of `steps` steps of 0.1 with these cadences.
RunSettings cadences(index_t steps, index_t observe_every, index_t snapshot_every) {
  RunSettings r;
  r.dt = 0.1;
  r.steps = steps;
  r.observe_every = observe_every;
  r.snapshot_every = snapshot_every;
  return r;
}

TEST(RunFlow, CadenceAlwaysIncludesFirstAndLastStep) {
  SmallFlow s;
  const RunSettings r = cadences(25, 10, 20);
  LossObserver loss;
  MemoryOutput out;
  const RunSummary summary = run_flow(*s.model, s.state, r, {&loss}, out);
  EXPECT_EQ(summary.step, 25);
  EXPECT_EQ(summary.reason, StopReason::steps);
  EXPECT_EQ(out.observed["loss"], (std::vector<index_t>{0, 10, 20, 25}));
  EXPECT_EQ(out.observed["test_loss"], (std::vector<index_t>{0, 10, 20, 25}));
  EXPECT_EQ(out.snapshot_steps, (std::vector<index_t>{0, 20, 25}));
  EXPECT_NEAR(out.snapshot_times.back(), 2.5, 1e-12);
  EXPECT_LT(summary.loss, summary.initial_loss);
}

// The summary splits the run's time: a slow observer's and a slow output's sleeps land in their
// own parts, never in the steps' time, and the parts add up to at most the whole. The sleeps are
// long (a leaked one would add 150 ms to the steps' time) so that 10 steps of 16 particles stay
// far below that even on an oversubscribed machine (threads-4 on two cores once took 73 ms).
TEST(RunFlow, ReportsTheTimeOfTheStepsApartFromObservingAndWriting) {
  using std::chrono::milliseconds;
  static constexpr int sleep_ms = 150;
  struct SlowObserver : Observer {
    void observe(const FlowPoint&, ObservableSink&) override {
      std::this_thread::sleep_for(milliseconds(sleep_ms));
    }
  } slow;
  struct SlowOutput : MemoryOutput {
    void append_particles(const ExecSpace& space, index_t step, double time,
                          const ParticleState& s) override {
      std::this_thread::sleep_for(milliseconds(sleep_ms));
      MemoryOutput::append_particles(space, step, time, s);
    }
  } out;
  SmallFlow s;
  RunSettings timed = cadences(10, 5, 10);
  timed.time_phases = true;
  const RunSummary summary = run_flow(*s.model, s.state, timed, {&slow}, out);
  const double sleep = sleep_ms * 1e-3;
  ASSERT_EQ(summary.steps_run, 10);
  EXPECT_GT(summary.step_seconds, 0.0);
  EXPECT_GE(summary.observe_seconds, 3 * sleep);  // steps 0, 5, 10
  EXPECT_GE(summary.write_seconds, 2 * sleep);    // steps 0, 10
  // The sleeps are counted once, in their own phases: a sleep that also leaked into the steps'
  // time would make the phases add up to more than the run took. No upper bound on any time, so a
  // loaded machine cannot fail this.
  EXPECT_LE(summary.step_seconds + summary.observe_seconds + summary.write_seconds,
            summary.seconds);
  EXPECT_DOUBLE_EQ(summary.seconds_per_step(), summary.step_seconds / 10);
}

TEST(RunFlow, StopsAtEndTimeExactly) {
  SmallFlow s;
  RunSettings r;
  r.dt = 0.3;
  r.t_end = 1.0;
  r.steps = std::numeric_limits<index_t>::max();
  MemoryOutput out;
  const RunSummary summary = run_flow(*s.model, s.state, r, {}, out);
  EXPECT_EQ(summary.reason, StopReason::t_end);
  EXPECT_EQ(summary.step, 4);  // 0.3, 0.6, 0.9, then a last step of 0.1
  EXPECT_DOUBLE_EQ(summary.time, 1.0);
}

TEST(RunFlow, StopsAtLossTolerance) {
  SmallFlow s(8);
  RunSettings r;
  r.dt = 0.05;
  r.steps = 100000;
  r.integrator = IntegratorKind::rk4;
  r.loss_tol = 1e-3;
  MemoryOutput out;
  const RunSummary summary = run_flow(*s.model, s.state, r, {}, out);
  EXPECT_EQ(summary.reason, StopReason::loss_tol);
  EXPECT_LE(summary.loss, 1e-3);
  EXPECT_LT(summary.step, 100000);
}

int fences = 0;
void count_fence(const char* name, std::uint32_t, std::uint64_t*) {
  if (std::string(name).find("result being value") == std::string::npos) ++fences;
}

// The fences a run of `steps` steps makes, counted by a Kokkos Tools hook, but for the waits of
// reductions for the value they return to the host (every step reads its loss and the finiteness
// check there).
int fences_in_run(index_t steps, bool time_phases) {
  SmallFlow s;
  RunSettings r = cadences(steps, 1000, 1000);
  r.time_phases = time_phases;
  MemoryOutput out;
  fences = 0;
  Kokkos::Tools::Experimental::set_begin_fence_callback(count_fence);
  run_flow(*s.model, s.state, r, {}, out);
  Kokkos::Tools::Experimental::set_begin_fence_callback(nullptr);
  return fences;
}

// A step fences only where a result is read on the host; the phase timing adds its five fences a
// step only when asked for.
TEST(RunFlow, FencesForPhaseTimingOnlyWhenAsked) {
  const int untimed = fences_in_run(20, false), timed = fences_in_run(20, true);
  if (timed == 0) GTEST_SKIP() << "this Kokkos reports no global fence to Kokkos Tools (3.x)";
  EXPECT_GE(timed - untimed, 5 * 20) << untimed << " fences untimed, " << timed << " timed";
  EXPECT_LT(untimed, 20) << "the loop fences at every step without phase timing";
}

// Polled at the start of every point and once more after an observed point's observers: the
// first point (observed) is polled twice, so the sixth poll is the start of step 4.
int polls = 0;
bool stop_at_the_sixth_poll() {
  return ++polls >= 6;
}

TEST(RunFlow, AStopRequestEndsTheRunOnAnObservedSnapshottedAndFlushedPoint) {
  SmallFlow s;
  RunSettings r = cadences(1000, 10, 100);
  polls = 0;
  r.stop_requested = stop_at_the_sixth_poll;
  LossObserver loss;
  MemoryOutput out;
  const RunSummary summary = run_flow(*s.model, s.state, r, {&loss}, out);
  EXPECT_EQ(summary.reason, StopReason::signal);
  EXPECT_EQ(summary.step, 4);
  EXPECT_EQ(out.observed["loss"], (std::vector<index_t>{0, 4}));
  EXPECT_EQ(out.snapshot_steps, (std::vector<index_t>{0, 4}));
  EXPECT_EQ(out.flushes, 5);  // one per point: the last point's rows are committed too
}

// An observer of every step that asks for a stop at step 7, as the Python module's callback does
// by returning False.
bool stop_asked = false;
bool stop_was_asked() {
  return stop_asked;
}
class StopAtSeven final : public Observer {
 public:
  void observe(const FlowPoint& p, ObservableSink&) override {
    steps.push_back(p.step);
    if (p.step == 7) stop_asked = true;
  }
  index_t every() const override { return 1; }
  std::string name() const override { return "stop_at_seven"; }
  std::vector<index_t> steps;
};

TEST(RunFlow, AStopAskedForByAnObserverEndsTheRunAtThatPoint) {
  SmallFlow s;
  RunSettings r = cadences(1000, 10, 100);
  stop_asked = false;
  r.stop_requested = stop_was_asked;
  LossObserver loss;
  StopAtSeven stopper;
  MemoryOutput out;
  const RunSummary summary = run_flow(*s.model, s.state, r, {&loss, &stopper}, out);
  EXPECT_EQ(summary.reason, StopReason::signal);
  EXPECT_EQ(summary.step, 7);
  EXPECT_EQ(summary.steps_run, 7);
  EXPECT_EQ(stopper.steps, (std::vector<index_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  // Step 7 is off the loss's cadence of 10: it observes the point as the last one.
  EXPECT_EQ(out.observed["loss"], (std::vector<index_t>{0, 7}));
  EXPECT_EQ(out.snapshot_steps, (std::vector<index_t>{0, 7}));
  EXPECT_EQ(summary.observations, 2);
}

TEST(RunFlow, NonFiniteStateStopsAfterSavingTheLastFiniteState) {
  SmallFlow s(50);
  RunSettings r;
  r.dt = 1e3;  // far beyond stability: the flow blows up within a few steps
  r.steps = 1000;
  r.snapshot_every = 1000;
  MemoryOutput out;
  EXPECT_THROW(run_flow(*s.model, s.state, r, {}, out), NonFiniteError);
  ASSERT_GE(out.snapshots.size(), 2u);
  for (double v : out.snapshots.back()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_GT(out.snapshot_steps.back(), 0);
}

}  // namespace
}  // namespace mfsim

// What a step of the run loop launches, counted by Kokkos Tools callbacks: its kernels
// (parallel_for, parallel_reduce, parallel_scan), among them its reductions, its deep copies and
// the global fences (Kokkos::fence(), Kokkos 4 only: 3.x reports no fence to the tools). These are
// the counts that docs/performance.md ("Launches and fences per step") gives, per integrator,
// without and with observers, so that a kernel, copy or fence added to the step fails here.
//
// A step's count is the difference between a run of 2K steps and a run of K steps that observe
// and snapshot at their two ends only (the ends cost the same in both), divided by K. The
// reference is independent of the loop: the launches of one evaluation (model.evaluate under the
// same counters) times the integrator's stages, plus the integrator's updates and the loop's
// finiteness check.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "detail/kokkos_tools_callbacks.hpp"
#include "helpers.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/diagnostics/path_length_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

struct Counts {
  std::int64_t kernels = 0, reductions = 0, deep_copies = 0, global_fences = 0;
  std::map<std::string, std::int64_t> labels;  // kernels by label, for the failure message
};

Counts tally;

void begin_kernel(const char* name, std::uint32_t, std::uint64_t*) {
  ++tally.kernels;
  ++tally.labels[name];
}
void begin_reduce(const char* name, std::uint32_t device, std::uint64_t* id) {
  ++tally.reductions;
  begin_kernel(name, device, id);
}
void begin_deep_copy(Kokkos::Tools::SpaceHandle, const char*, const void*,
                     Kokkos::Tools::SpaceHandle, const char*, const void*, std::uint64_t) {
  ++tally.deep_copies;
}
// A fence of the whole device, not Kokkos' own around a tool's callbacks.
void begin_fence(const char* name, std::uint32_t device, std::uint64_t*) {
  if (is_global_fence(device) && !is_tool_fence(name)) ++tally.global_fences;
}

// The callbacks that count into a fresh tally.
ToolsCallbacks counters() {
  tally = Counts();
  ToolsCallbacks c;
  c.begin_kernel = begin_kernel;
  c.begin_reduce = begin_reduce;
  c.begin_deep_copy = begin_deep_copy;
  c.begin_fence = begin_fence;
  return c;
}

// Counts everything from construction to destruction.
struct Counting {
  const InstalledToolsCallbacks callbacks{counters()};
};

// Whether this Kokkos reports global fences to the tools (Kokkos 4 does, 3.x does not).
bool fences_reported() {
  const Counting counting;
  Kokkos::fence();
  return tally.global_fences > 0;
}

std::string by_label(const Counts& c) {
  std::ostringstream out;
  for (const auto& [label, count] : c.labels) out << "\n  " << count << " × " << label;
  return out.str();
}

struct Flow {
  std::unique_ptr<Model> model;
  ParticleState state;
};

Flow two_layer(const Dataset& data) {
  TwoLayerSpec spec;
  spec.width = 16;
  Flow f{std::make_unique<TwoLayerModel>(spec, data), {}};
  f.state = allocate_state(f.model->groups(), false, "s");
  f.model->initialize(f.state, 1, false);
  return f;
}

Flow resnet(const Dataset& data) {
  ResNetSpec spec;
  spec.depth = 3;
  spec.width = 4;
  spec.head_width = 6;
  Flow f{std::make_unique<ResNetModel>(spec, data), {}};
  f.state = allocate_state(f.model->groups(), false, "s");
  f.model->initialize(f.state, 1, false);
  return f;
}

// The counts of a run of `steps` steps from a fresh state.
Counts run_counts(Flow (*make)(const Dataset&), const Dataset& data, IntegratorKind integrator,
                  index_t steps, const std::vector<Observer*>& observers) {
  Flow f = make(data);
  RunSettings r;
  r.integrator = integrator;
  r.dt = 0.01;
  r.steps = steps;
  r.observe_every = r.snapshot_every = 1000;  // the two ends only
  test::RecordingOutput out;
  FlowRun run(*f.model, f.state, r);  // its buffers are not the step's
  const Counting counting;
  run.run(observers, out);
  return tally;
}

// Per step: the difference of runs of 2K and K steps, over K.
Counts step_counts(Flow (*make)(const Dataset&), const Dataset& data, IntegratorKind integrator,
                   const std::vector<Observer*>& observers = {}) {
  constexpr index_t k = 5;
  const Counts once = run_counts(make, data, integrator, k, observers);
  const Counts twice = run_counts(make, data, integrator, 2 * k, observers);
  Counts step;
  step.kernels = (twice.kernels - once.kernels) / k;
  step.reductions = (twice.reductions - once.reductions) / k;
  step.deep_copies = (twice.deep_copies - once.deep_copies) / k;
  step.global_fences = (twice.global_fences - once.global_fences) / k;
  EXPECT_EQ(twice.kernels - once.kernels, k * step.kernels) << "not the same count every step";
  for (const auto& [label, count] : twice.labels) {
    const auto before = once.labels.find(label);
    step.labels[label] = (count - (before == once.labels.end() ? 0 : before->second)) / k;
  }
  return step;
}

// The launches of one evaluation of the velocity field, outside any run loop.
Counts evaluation_counts(Flow (*make)(const Dataset&), const Dataset& data) {
  Flow f = make(data);
  const auto evaluation = f.model->make_evaluation();
  ParticleState v = allocate_like(f.state, "v");
  f.model->evaluate(ExecSpace(), f.state, *evaluation, v);  // first use: workspace allocations
  const Counting counting;
  f.model->evaluate(ExecSpace(), f.state, *evaluation, v);
  return tally;
}

struct Scheme {
  IntegratorKind kind;
  int stages;   // evaluations per step
  int updates;  // axpy passes over the particles per step
};
constexpr Scheme schemes[] = {
    {IntegratorKind::euler, 1, 1}, {IntegratorKind::heun, 2, 3}, {IntegratorKind::rk4, 4, 7}};

// Per step: stages × the evaluation's launches, and per particle group one kernel per update, one
// finiteness check (a reduction) and one deep copy (the previous state, kept for a non-finite
// stop); no global fence.
void expect_documented_counts(Flow (*make)(const Dataset&), const Dataset& data) {
  const Counts e = evaluation_counts(make, data);
  const int groups = int(make(data).state.theta.size());
  const bool fences = fences_reported();
  for (const Scheme& s : schemes) {
    SCOPED_TRACE(integrator_name(s.kind));
    const Counts step = step_counts(make, data, s.kind);
    EXPECT_EQ(step.kernels, s.stages * e.kernels + (s.updates + 1) * groups) << by_label(step);
    EXPECT_EQ(step.reductions, s.stages * e.reductions + groups) << by_label(step);
    EXPECT_EQ(step.deep_copies, s.stages * e.deep_copies + groups);
    if (fences) EXPECT_EQ(step.global_fences, 0);
  }
}

TEST(StepLaunches, TwoLayerMatchesTheDocumentedCounts) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 10, 5));
  const Counts e = evaluation_counts(two_layer, data);
  // docs/performance.md: the forward pass, the loss (a reduction), its derivative, the
  // velocities; no copy.
  EXPECT_EQ(e.kernels, 4) << by_label(e);
  EXPECT_EQ(e.reductions, 1) << by_label(e);
  EXPECT_EQ(e.deep_copies, 0);
  expect_documented_counts(two_layer, data);
}

TEST(StepLaunches, ResNetMatchesTheDocumentedCounts) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 7, 4));
  const Counts e = evaluation_counts(resnet, data);
  // docs/performance.md: 2L + 11 kernels at depth L = 3 (a forward and a backward kernel per
  // layer), one reduction (the loss).
  EXPECT_EQ(e.kernels, 2 * 3 + 11) << by_label(e);
  EXPECT_EQ(e.reductions, 1) << by_label(e);
  expect_documented_counts(resnet, data);
}

// Observers that do not observe at a step add nothing to it: the loop's bookkeeping for them is
// host work without kernels, copies or fences. The path length, which integrates the speed at
// every step, adds its one reduction.
TEST(StepLaunches, ObserversOffTheirCadenceAddNothing) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 10, 5));
  const Counts bare = step_counts(two_layer, data, IntegratorKind::euler);
  LossObserver loss;
  PathNormObserver path_norm(1000);
  const Counts observed = step_counts(two_layer, data, IntegratorKind::euler, {&loss, &path_norm});
  EXPECT_EQ(observed.kernels, bare.kernels) << by_label(observed);
  EXPECT_EQ(observed.deep_copies, bare.deep_copies);
  EXPECT_EQ(observed.global_fences, bare.global_fences);
  PathLengthObserver path_length(1000);
  const Counts integrated = step_counts(two_layer, data, IntegratorKind::euler, {&path_length});
  EXPECT_EQ(integrated.kernels, bare.kernels + 1) << by_label(integrated);
  EXPECT_EQ(integrated.reductions, bare.reductions + 1);
}

}  // namespace
}  // namespace mfsim

// No device allocation inside a step or an observation after the first (the explicit
// evaluation's promise, include/mfsim/models/evaluation.hpp): the whole run loop of both models,
// with RK4, log-densities and every diagnostic on, counted through Kokkos' profiling hook for
// allocations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "helpers.hpp"
#include "mfsim/app/diagnostics.hpp"
#include "mfsim/app/simulation.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/config.hpp"
#include "mfsim/io/data_import.hpp"

namespace mfsim {
namespace {

std::int64_t allocations = 0;

// Counts mfsim's allocations in the memory space of the kernels (on a GPU: device memory; host
// mirrors are mallocs, not synchronising cudaMallocs). Not counted: Kokkos' Threads backend's own
// per-thread scratch ("Kokkos::thread_scratch"), which Kokkos 4.6 frees and reallocates whenever
// a reduction follows a team kernel or the reverse (ThreadsInternal::resize_scratch keeps only the
// latest kernel's sizes), whatever the program does; docs/gpu.md#threads.
void count_allocation(Kokkos::Profiling::SpaceHandle space, const char* label, const void*,
                      std::uint64_t) {
  if (std::strcmp(space.name, MemSpace::name()) == 0 &&
      std::strcmp(label, "Kokkos::thread_scratch") != 0)
    ++allocations;
}

// Installs the counting hook for its lifetime.
struct AllocationCounter {
  AllocationCounter() { Kokkos::Tools::Experimental::set_allocate_data_callback(count_allocation); }
  ~AllocationCounter() { Kokkos::Tools::Experimental::set_allocate_data_callback(nullptr); }
};

// Records the allocation count when each step starts (on_step runs before the step's
// observations, and after the previous step's integration).
class AllocationsAtStep final : public Observer {
 public:
  std::vector<std::int64_t> counts;
  void on_step(const FlowPoint&) override { counts.push_back(allocations); }
  void observe(const FlowPoint&, ObservableSink&) override {}
};

class DiscardingOutput final : public RunOutput {
 public:
  void append_particles(const ExecSpace&, index_t, double, const ParticleState&) override {}
  void append_observable(const std::string&, index_t, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {}
};

// Runs `steps` RK4 steps of the config with every observer at every step and returns the
// allocation counts at the start of each step.
std::vector<std::int64_t> allocations_per_step(const std::string& config_file,
                                               const std::vector<std::string>& overrides,
                                               index_t steps) {
  const Config config = load_config(std::string(MFSIM_SOURCE_DIR) + "/" + config_file, overrides);
  const bool log_density = config.diagnostics.kl_transport;
  Problem problem = build_problem(config, self_communicator(), log_density);
  std::ostringstream log;
  const Diagnostics diagnostics(config, problem, log);
  AllocationsAtStep counter;
  std::vector<Observer*> observers{&counter};
  for (Observer* o : diagnostics.observers()) observers.push_back(o);
  RunSettings settings;
  settings.integrator = IntegratorKind::rk4;
  settings.dt = 0.01;
  settings.steps = steps;
  settings.observe_every = 1;
  settings.snapshot_every = 1;
  DiscardingOutput output;
  const AllocationCounter hook;
  run_flow(*problem.model, problem.state, settings, observers, output);
  return counter.counts;
}

void expect_allocation_free_after_warm_up(const std::vector<std::int64_t>& counts) {
  ASSERT_GE(counts.size(), 4u);
  // Step 0 makes the evaluations and the observers' buffers; from step 1 on nothing is new.
  for (std::size_t k = 2; k < counts.size(); ++k)
    EXPECT_EQ(counts[k], counts[1]) << "device allocations between steps 1 and " << k;
}

TEST(Allocations, HookCountsAViewAllocation) {
  // The positive control: without it, a hook that never fires would pass every test below.
  const AllocationCounter hook;
  const std::int64_t before = allocations;
  Vector v("mfsim::test::counted", 10);
  EXPECT_EQ(allocations, before + 1);
}

TEST(Allocations, TwoLayerStepAndObservationsAllocateNothingAfterTheFirst) {
  const auto counts = allocations_per_step("simulations/configs/two_layer_meanfield.toml",
                                           {"model.width=64", "data.n_train=20", "data.n_test=30",
                                            "diagnostics.kl=[\"transport\", "
                                            "\"knn\"]",
                                            "diagnostics.gram_spectrum=true"},
                                           6);
  EXPECT_GT(counts[1], counts[0]) << "the first step allocates its buffers (hook alive)";
  expect_allocation_free_after_warm_up(counts);
}

TEST(Allocations, ResNetStepAndObservationsAllocateNothingAfterTheFirst) {
  const auto counts =
      allocations_per_step("simulations/configs/resnet_meanfield.toml",
                           {"model.depth=3", "model.width=16", "model.head_width=16",
                            "data.n_train=12", "data.n_test=7"},
                           6);
  expect_allocation_free_after_warm_up(counts);
}

// Model B with c = 3 outputs on a file of three classes: the head's vector kernels, the weighted
// adjoints and the Gram part G₁ over nc rows (the sensitivities of every output).
TEST(Allocations, ResNetWithSeveralOutputsAllocatesNothingAfterTheFirst) {
  const std::string dir = test::scratch_dir("allocations_multiclass");
  {
    std::ofstream table(dir + "/three.csv");
    table << "a,b,c,y\n";
    for (int i = 0; i < 20; ++i)
      table << std::sin(i) << "," << std::cos(3 * i) << "," << 0.1 * i << "," << i % 3 << "\n";
  }
  ImportOptions options;
  options.input = dir + "/three.csv";
  options.test_fraction = 0.3;
  write_data_file(dir + "/three.h5", true, import_data(options));
  const auto counts = allocations_per_step(
      "simulations/configs/resnet_meanfield.toml",
      {"model.depth=3", "model.width=16", "model.head_width=16", "data.kind=\"file\"",
       "data.path=\"" + dir + "/three.h5\"", "model.loss=\"cross_entropy\"", "model.outputs=3",
       "diagnostics.gram_layers=true"},
      6);
  expect_allocation_free_after_warm_up(counts);
}

}  // namespace
}  // namespace mfsim

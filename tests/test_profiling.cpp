// The run loop's Kokkos Tools regions (core/profiling.hpp): a profile names the phases of a step
// and every observer, and every region pushed is popped. Recorded through the push/pop hooks a
// Kokkos tool would install.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "mfsim/app/diagnostics.hpp"
#include "mfsim/app/simulation.hpp"
#include "mfsim/core/profiling.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/config.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

std::vector<std::string> open_regions;
std::map<std::string, int> region_counts;  // mfsim's regions only (Kokkos may push its own)

void push_region(const char* name) {
  open_regions.emplace_back(name);
  if (open_regions.back().rfind("mfsim::", 0) == 0) ++region_counts[open_regions.back()];
}
void pop_region() {
  ASSERT_FALSE(open_regions.empty()) << "a region popped that was never pushed";
  open_regions.pop_back();
}

// Installs the recording hooks for its lifetime.
struct RegionRecorder {
  RegionRecorder() {
    open_regions.clear();
    region_counts.clear();
    Kokkos::Tools::Experimental::set_push_region_callback(push_region);
    Kokkos::Tools::Experimental::set_pop_region_callback(pop_region);
  }
  ~RegionRecorder() {
    Kokkos::Tools::Experimental::set_push_region_callback(nullptr);
    Kokkos::Tools::Experimental::set_pop_region_callback(nullptr);
  }
};

TEST(Profiling, RegionIsPushedAndPoppedWithItsScope) {
  const RegionRecorder recorder;
  {
    const ProfilingRegion region("mfsim::test");
    ASSERT_EQ(open_regions.size(), 1u);
    EXPECT_EQ(open_regions.back(), "mfsim::test");
  }
  EXPECT_TRUE(open_regions.empty());
}

TEST(Profiling, RunLoopNamesEveryPhaseAndObserver) {
  const Config config =
      load_config(std::string(MFSIM_SOURCE_DIR) + "/simulations/configs/two_layer_meanfield.toml",
                  {"model.width=32", "data.n_train=16", "data.n_test=8"});
  Problem problem = build_problem(config, self_communicator(), config.diagnostics.kl_transport);
  std::ostringstream log;
  const Diagnostics diagnostics(config, problem, log);
  LossObserver loss;
  std::vector<Observer*> observers{&loss};
  for (Observer* o : diagnostics.observers()) observers.push_back(o);
  ASSERT_GE(observers.size(), 3u) << "the example config's diagnostics";
  RunSettings settings;
  settings.steps = 4;
  settings.observe_every = 2;
  settings.snapshot_every = 2;
  test::RecordingOutput output;
  {
    const RegionRecorder recorder;
    run_flow(*problem.model, problem.state, settings, observers, output);
    EXPECT_TRUE(open_regions.empty()) << "unbalanced: " << open_regions.back();
  }
  // Five points (steps 0..4): each evaluated and written, four integrated.
  EXPECT_EQ(region_counts["mfsim::run_flow"], 1);
  EXPECT_EQ(region_counts["mfsim::evaluate"], 5);
  EXPECT_EQ(region_counts["mfsim::integrate"], 4);
  EXPECT_EQ(region_counts["mfsim::output"], 5);
  // The loss follows the run's cadence: steps 0, 2 and 4. The others have the config's
  // diagnostics.every (10), so they observe the first and the last point at least.
  EXPECT_EQ(region_counts["mfsim::observe::loss"], 3);
  for (const Observer* o : observers) {
    EXPECT_NE(o->name(), "observer") << "a library observer without a region name";
    EXPECT_GE(region_counts["mfsim::observe::" + o->name()], 1) << o->name();
  }
}

}  // namespace
}  // namespace mfsim

#pragma once
// The run loop's step (FlowRun: the velocity evaluation, the finiteness check, the copy of the
// previous state, the update) beside the kernels it launches, timed in the same iterations: a
// Kokkos Tools library in the program sums the time from each kernel's begin callback to its end
// callback and counts launches and global fences. The kernels of a host backend have finished
// when their launch returns, so the sum is their run time; what the step takes beyond it is the
// loop's own overhead (host work, copies, allocation, waits).
//
// One iteration is one run of `steps` steps with no observer and an output that keeps nothing,
// observing and snapshotting at its two ends only; its time and counts are divided by `steps`.
// Both include the last point's evaluation and check (one evaluation in steps + 1), so the ratio
// is the whole loop's. Counters:
//   kernel_ms            the summed kernel time per step
//   step_over_kernels    the step's wall time over kernel_ms
//   pair_kernel_ms       the same for the model's kernels alone, without the element-wise passes
//                        over the particles (update, finiteness check: labels
//                        "mfsim::ParticleState::…"), and step_over_pair_kernels
//   launches/step        kernel launches (parallel_for, _reduce, _scan) per step
//   global_fences/step   Kokkos::fence() of the whole device per step (Kokkos 4; 3.x reports none)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>

#include <Kokkos_Core.hpp>

#include "detail/kokkos_tools_callbacks.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim::bench {

// Keeps nothing: the loop's own cost without the writer's.
class DiscardOutput : public RunOutput {
 public:
  void append_particles(const ExecSpace&, index_t, double, const ParticleState&) override {}
  void append_observable(const std::string&, index_t, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {}
};

// The Kokkos Tools callbacks' tallies, from their installation (callbacks() resets them).
struct KernelTally {
  static inline double seconds = 0, elementwise_seconds = 0;
  static inline bool elementwise = false;
  static inline std::int64_t launches = 0, global_fences = 0;
  static inline std::chrono::steady_clock::time_point begun;

  static void begin(const char* name, std::uint32_t, std::uint64_t*) {
    ++launches;
    elementwise = std::string(name).rfind("mfsim::ParticleState::", 0) == 0;
    begun = std::chrono::steady_clock::now();
  }
  static void end(std::uint64_t) {
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
    seconds += t;
    if (elementwise) elementwise_seconds += t;
  }
  static void fence(const char* name, std::uint32_t device, std::uint64_t*) {
    // Kokkos' own fences around a tool's callbacks are not the step's.
    if (is_global_fence(device) && !is_tool_fence(name)) ++global_fences;
  }
  static ToolsCallbacks callbacks() {
    seconds = elementwise_seconds = 0;
    launches = global_fences = 0;
    ToolsCallbacks c;
    c.begin_kernel = begin;
    c.end_kernel = end;
    c.begin_fence = fence;
    return c;
  }
};

// Times runs of `steps` Euler steps of `model` from `s` (each run continues from the last).
inline void time_run_steps(benchmark::State& state, const Model& model, ParticleState& s,
                           index_t steps) {
  RunSettings settings;
  settings.dt = 1e-3;
  settings.steps = steps;
  settings.observe_every = settings.snapshot_every = steps;
  DiscardOutput output;
  double wall_seconds = 0, kernel_seconds = 0, pair_seconds = 0;
  std::int64_t launches = 0, fences = 0;
  for (auto _ : state) {
    FlowRun run(model, s, settings);  // allocates its buffers: not timed
    Kokkos::fence();
    std::chrono::steady_clock::time_point start, stop;
    {
      const InstalledToolsCallbacks tally(KernelTally::callbacks());
      start = std::chrono::steady_clock::now();
      run.run({}, output);
      Kokkos::fence();
      stop = std::chrono::steady_clock::now();
    }
    const double wall = std::chrono::duration<double>(stop - start).count();
    state.SetIterationTime(wall / double(steps));
    wall_seconds += wall;
    kernel_seconds += KernelTally::seconds;
    pair_seconds += KernelTally::seconds - KernelTally::elementwise_seconds;
    launches += KernelTally::launches;
    fences += KernelTally::global_fences;
    settings.first_step += steps;
  }
  const double per_step = double(state.iterations()) * double(steps);
  state.counters["kernel_ms"] = 1e3 * kernel_seconds / per_step;
  state.counters["step_over_kernels"] = kernel_seconds > 0 ? wall_seconds / kernel_seconds : 0;
  state.counters["pair_kernel_ms"] = 1e3 * pair_seconds / per_step;
  state.counters["step_over_pair_kernels"] = pair_seconds > 0 ? wall_seconds / pair_seconds : 0;
  state.counters["launches/step"] = double(launches) / per_step;
  state.counters["global_fences/step"] = double(fences) / per_step;
}

}  // namespace mfsim::bench

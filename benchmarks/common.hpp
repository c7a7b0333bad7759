#pragma once
// Timing and counters shared by the benchmark programs.
//
// Each iteration is timed by hand (fenced wall clock: Google Benchmark's manual time, which is
// what a device backend needs) and also by the calling thread's CPU time. On a machine shared
// with other jobs the wall time includes the time the thread waited for a core; with a host
// backend (one thread) the CPU time is the kernels' own, so every rate comes in both forms:
// `<name>` per wall second and `<name>_cpu` per CPU second.
#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <string>

#include <Kokkos_Core.hpp>

namespace mfsim::bench {

inline double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Runs the benchmark loop: fence, time `body`, fence. Returns the CPU seconds of all iterations.
template <class Body>
double timed_loop(benchmark::State& state, Body&& body) {
  double cpu_total = 0;
  for (auto _ : state) {
    Kokkos::fence();
    const double cpu0 = thread_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    body();
    Kokkos::fence();
    const auto stop = std::chrono::steady_clock::now();
    cpu_total += thread_cpu_seconds() - cpu0;
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  return cpu_total;
}

// `per_iteration` units of work per iteration as a rate per wall second (Google Benchmark divides
// by the manual time) and per CPU second.
inline void set_rate(benchmark::State& state, const std::string& name, double per_iteration,
                     double cpu_seconds) {
  state.counters[name] =
      benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
  if (cpu_seconds > 0)
    state.counters[name + "_cpu"] = per_iteration * double(state.iterations()) / cpu_seconds;
}

}  // namespace mfsim::bench

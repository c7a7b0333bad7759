// Shared main of the benchmark programs: Kokkos once, and the context every result needs
// (backend, precision, concurrency, vector lanes, kernel instruction set, build flags) in Google
// Benchmark's JSON output.
#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>
#include <cstdlib>
#include <string>

#include "detail/pair_tiles.hpp"
#include "mfsim/core/kernel_isa.hpp"
#include "mfsim/core/types.hpp"

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("mfsim_version", MFSIM_VERSION);
  benchmark::AddCustomContext("kokkos_backend", mfsim::ExecSpace::name());
  benchmark::AddCustomContext("kokkos_version", std::to_string(KOKKOS_VERSION));
  benchmark::AddCustomContext("kokkos_concurrency",
                              std::to_string(mfsim::ExecSpace().concurrency()));
  benchmark::AddCustomContext("precision", mfsim::precision_name);
  benchmark::AddCustomContext("simd_lanes", std::to_string(mfsim::tiles::lanes));
  benchmark::AddCustomContext("kernel_isa", mfsim::kernel_instruction_set());
  benchmark::AddCustomContext("build", MFSIM_BENCH_BUILD);
  // The BLAS baselines force one OpenBLAS thread; the core type comes from the environment.
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("openblas_coretype", coretype ? coretype : "(auto)");
  benchmark::AddCustomContext("openblas_threads", "1");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

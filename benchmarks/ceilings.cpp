// What one core can do for the pair kernels: the ceilings that benchmarks/README.md turns into a
// limit per pair and compares with the measured step (part of bench_two_layer_step, so that they
// are measured in the same run, interleaved with the step).
//
//   BM_RegisterBlock  tiles::accumulate_outer (the kernels' inner product) on panels in L1:
//                     the multiply-add rate the kernels can reach, GFLOP/s
//   BM_Tanh/simd      simd_math::tanh in a vectorised loop, evaluations/s
//   BM_Tanh/libm      std::tanh (glibc, scalar), evaluations/s
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "common.hpp"
#include "detail/pair_tiles.hpp"
#include "mfsim/core/simd_math.hpp"

namespace {

using namespace mfsim;

constexpr int R = tiles::block_rows, L = tiles::lanes;

// One register block, as the kernels use it (not inlined into the loop below, whose own sums
// would otherwise compete with it for the 16 vector registers).
__attribute__((noinline)) void register_block(const real* rows, const real* cols, int depth,
                                              real* out) {
  real acc[R][L] = {};
  tiles::accumulate_outer(acc, rows, cols, depth);
  for (int i = 0; i < R; ++i)
    for (int l = 0; l < L; ++l) out[i * L + l] += acc[i][l];
}

void BM_RegisterBlock(benchmark::State& state) {
  const int depth = 256;  // panels of 12 + 16 KB in double: L1
  std::vector<real> rows(std::size_t(depth) * R, real(0.001)),
      cols(std::size_t(depth) * L, real(0.002)), out(std::size_t(R) * L, 0);
  const int calls = 1000;
  const double cpu = bench::timed_loop(state, [&] {
    for (int k = 0; k < calls; ++k) register_block(rows.data(), cols.data(), depth, out.data());
    benchmark::DoNotOptimize(out.data());
  });
  bench::set_rate(state, "GFLOP/s", 2.0 * calls * depth * R * L * 1e-9, cpu);
}

template <class F>
void tanh_loop(benchmark::State& state, F&& f) {
  const int n = 4096;
  std::vector<real> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = real(-6 + 12.0 * i / n);
  const int passes = 100;
  const double cpu = bench::timed_loop(state, [&] {
    for (int p = 0; p < passes; ++p) f(x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  });
  bench::set_rate(state, "evaluations/s", double(passes) * n, cpu);
}

__attribute__((noinline)) void simd_tanh(const real* __restrict x, real* __restrict y, int n) {
  for (int i = 0; i < n; ++i) y[i] = simd_math::tanh(x[i]);
}
__attribute__((noinline)) void libm_tanh(const real* __restrict x, real* __restrict y, int n) {
  for (int i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void BM_Tanh_simd(benchmark::State& state) {
  tanh_loop(state, simd_tanh);
}
void BM_Tanh_libm(benchmark::State& state) {
  tanh_loop(state, libm_tanh);
}

BENCHMARK(BM_RegisterBlock)->UseManualTime();
BENCHMARK(BM_Tanh_simd)->Name("BM_Tanh/simd")->UseManualTime();
BENCHMARK(BM_Tanh_libm)->Name("BM_Tanh/libm")->UseManualTime();

}  // namespace

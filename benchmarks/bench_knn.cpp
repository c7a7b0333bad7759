// The cost of the kNN KL estimators on N particles in D dimensions (whitened N(0, I) draws), as the
// kNN observer computes them per slice at every observation:
//   BM_KnnOneSample   kl_knn with its halving check and the entropy (knn_kl_estimates without
//                     draws: the search of the particles among themselves and within each half,
//                     ~1.5 N²·D)
//   BM_KnnTwoSample   the same plus kl_knn_two_sample against 10 N fresh draws of ρ₀, generated
//                     in chunks and streamed through the search (+10 N²·D)
//   BM_KnnEllipsoid   kl_knn_ellipsoid (k = 2D + 1, with its halving check; its value at ρ₀, which
//                     the observer computes once per run, outside the timing)
// Counter `pairs`: particle-reference distance pairs per second (N² for the one-sample search).
#include <benchmark/benchmark.h>

#include "common.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/knn_ellipsoid.hpp"

namespace {

using namespace mfsim;

// N standard-normal points in D dimensions.
Matrix particles(const benchmark::State& bench) {
  const index_t n = bench.range(0);
  const int dim = int(bench.range(1));
  Matrix x("bench::x", n, dim);
  generate_reference_draws(ExecSpace(), {1, 0, n}, 0, n, x);
  return x;
}

void BM_KnnOneSample(benchmark::State& bench) {
  const Matrix x = particles(bench);
  Workspace scratch;
  const double cpu =
      bench::timed_loop(bench, [&] { knn_kl_estimates(ExecSpace(), x, 5, {}, scratch); });
  bench::set_rate(bench, "pairs", double(x.extent(0)) * double(x.extent(0)), cpu);
}

void BM_KnnTwoSample(benchmark::State& bench) {
  const Matrix x = particles(bench);
  const index_t n = index_t(x.extent(0));
  Workspace scratch;
  const double cpu = bench::timed_loop(bench, [&] {
    knn_kl_estimates(ExecSpace(), x, 5, {7, 1, 10 * n}, scratch);
  });
  bench::set_rate(bench, "pairs", double(n) * double(n), cpu);
}

void BM_KnnEllipsoid(benchmark::State& bench) {
  const Matrix x = particles(bench);
  const index_t n = index_t(x.extent(0));
  const int dim = int(x.extent(1));
  Workspace scratch;
  const EllipsoidReference reference = ellipsoid_reference(ExecSpace(), n, dim, {9, 2, n}, scratch);
  const double cpu =
      bench::timed_loop(bench, [&] { kl_knn_ellipsoid(ExecSpace(), x, reference, scratch); });
  bench::set_rate(bench, "pairs", double(n) * double(n), cpu);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "D"})
      ->Args({256, 4})  // smoke size (ctest)
      ->Args({1024, 4})
      ->Args({1024, 7})
      ->Args({4096, 4})
      ->Args({4096, 7})
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_KnnOneSample)->Apply(sizes);
BENCHMARK(BM_KnnTwoSample)->Apply(sizes);
BENCHMARK(BM_KnnEllipsoid)->Apply(sizes);

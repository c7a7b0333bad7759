// The cost of each diagnostic of model A at (n, m, d), next to one Euler flow step at the same
// sizes (BM_EulerStep), so that each can be read as a number of flow steps.
//   BM_EulerStep          forward pass, velocities, update (the reference)
//   BM_GramAccumulate     model A's Gram matrix as the observer computes it (the factored form
//                         of gram_kernel.hpp: two rank-m updates, n²·m multiply-adds)
//   BM_GramAccumulateGeneric  the same from the generic feature kernel (n²·m·p/2 multiply-adds)
//   BM_GramSyrkPhi        baseline: single-thread OpenBLAS SYRK on the explicitly formed Φ
//                         (n × m·p, formed outside the timing; n²·m·p multiply-adds)
//   BM_GramObserve/dense  the Gram observer: kernel + eigenvalues + (A11) + (A12)
//   BM_GramObserve/lanczos
//   BM_NtkReference       the infinite-width kernel and λ₀ (once per run): tanh by quadrature
//   BM_KlTransport        kl_transport (needs the Laplacian in every velocity evaluation:
//                         BM_EulerStepWithLaplacian is the step it then takes)
//   BM_KlKnn              kl_knn and kl_knn_two_sample (brute-force neighbours, O(m²·D))
//   BM_PathNorm           path norms and the Rademacher bound
//   BM_PathLength         the per-step speed reduction of w2_path_length
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "baselines.hpp"
#include "common.hpp"
#include "detail/two_layer_kernels.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/diagnostics/eigenvalues.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/kl_knn_observer.hpp"
#include "mfsim/diagnostics/kl_transport_observer.hpp"
#include "mfsim/diagnostics/path_length_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/two_layer.hpp"

namespace {

using namespace mfsim;

class NullSink : public ObservableSink {
 public:
  void append_observable(const std::string&, index_t, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {}
};

// Model A at the benchmark's (n, m, d), tanh, with the velocity (and Laplacian) evaluated.
struct Setup {
  Dataset data;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state, velocity;
  std::unique_ptr<Evaluation> evaluation;
  Workspace scratch;
  real loss = 0;

  Setup(const benchmark::State& bench, bool log_density) {
    SyntheticDataSpec d;
    d.n_train = bench.range(0);
    d.dim = int(bench.range(2));
    d.n_test = 0;
    data = make_synthetic_dataset(d);
    TwoLayerSpec spec;
    spec.width = bench.range(1);
    spec.activation = {ActivationKind::tanh, 1};
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), log_density, "bench");
    model->initialize(state, 1, false);
    if (log_density) set_initial_log_density(state, model->groups());
    velocity = allocate_like(state, "bench_velocity");
    evaluation = model->make_evaluation();
    loss = model->evaluate(state, *evaluation, velocity);
  }
  FlowPoint point() { return {0, 0.0, 1e-3, state, velocity, double(loss), *evaluation, *model}; }
};

template <class F>
void timed(benchmark::State& bench, F&& f) {
  for (auto _ : bench) {
    Kokkos::fence();
    const auto start = std::chrono::steady_clock::now();
    f();
    Kokkos::fence();
    bench.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  bench.counters["n"] = double(bench.range(0));
  bench.counters["m"] = double(bench.range(1));
  bench.counters["d"] = double(bench.range(2));
}

void euler_step(benchmark::State& bench, bool log_density) {
  Setup s(bench, log_density);
  Integrator euler(IntegratorKind::euler, s.state);
  const VelocityField field = [&](const ExecSpace& space, const ParticleState& x,
                                  ParticleState& dx) {
    return s.model->evaluate(space, x, *s.evaluation, dx);
  };
  timed(bench, [&] {
    field(ExecSpace(), s.state, s.velocity);
    euler.finish_step(s.state, s.velocity, real(1e-3), field);
  });
}
void BM_EulerStep(benchmark::State& bench) {
  euler_step(bench, false);
}
void BM_EulerStepWithLaplacian(benchmark::State& bench) {
  euler_step(bench, true);
}

// Gram counters: GFLOP/s counts the 2·n²·m·p flop of Φ Φᵀ whatever the kernel does (the rate
// of the same work: comparable across the three benchmarks); `syrk_flop` is that count.
void gram_counters(benchmark::State& bench, double p, double cpu) {
  const double n = double(bench.range(0)), m = double(bench.range(1));
  bench::set_rate(bench, "GFLOP/s", n * n * m * p * 1e-9, cpu);
  bench.counters["n"] = n;
  bench.counters["m"] = m;
  bench.counters["d"] = double(bench.range(2));
}

void BM_GramAccumulate(benchmark::State& bench) {
  Setup s(bench, false);
  const index_t n = bench.range(0);
  Matrix gram("gram", n, n);
  const double cpu = bench::timed_loop(
      bench, [&] { s.model->accumulate_gram(s.state, *s.evaluation, 0, gram, s.scratch); });
  gram_counters(bench, double(s.model->groups()[0].dim()), cpu);
}

void BM_GramAccumulateGeneric(benchmark::State& bench) {
  Setup s(bench, false);
  const index_t n = bench.range(0);
  Matrix gram("gram", n, n);
  const real scale = real(1 / std::sqrt(double(bench.range(1))));  // β = 1
  const detail::TwoLayerFeatures<activations::Tanh> features{
      s.state.theta[0], s.data.x_train, scale, true, {}};
  const double cpu = bench::timed_loop(bench, [&] {
    accumulate_gram(ExecSpace(), features, index_t(s.state.theta[0].extent(0)), gram, s.scratch);
  });
  gram_counters(bench, double(features.size()), cpu);
}

// Φ (n × m·p, row-major) of model A with bias, written out on the host, then timed: one SYRK.
void BM_GramSyrkPhi(benchmark::State& bench) {
  Setup s(bench, false);
  const int n = int(bench.range(0)), m = int(bench.range(1)), d = int(bench.range(2));
  const int p = d + 2;
  const HostMatrix theta = to_host(s.state.theta[0]), x = to_host(s.data.x_train);
  const double scale = 1 / std::sqrt(double(m));
  std::vector<real> phi(std::size_t(n) * m * p), c(std::size_t(n) * n);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < m; ++k) {
      double z = theta(k, d + 1);
      for (int q = 0; q < d; ++q) z += theta(k, 1 + q) * x(i, q);
      const double t = std::tanh(z), g = scale * theta(k, 0) * (1 - t * t);
      real* row = &phi[(std::size_t(i) * m + k) * p];
      row[0] = real(scale * t);
      for (int q = 0; q < d; ++q) row[1 + q] = real(g * x(i, q));
      row[d + 1] = real(g);
    }
  const double cpu =
      bench::timed_loop(bench, [&] { bench::blas_syrk(n, m * p, phi.data(), c.data()); });
  gram_counters(bench, double(p), cpu);
  bench.SetLabel(bench::blas_syrk_name());
}

void gram_observe(benchmark::State& bench, EigenSolverKind solver) {
  Setup s(bench, false);
  DiagnosticsSettings settings;
  settings.gram_solver = solver;
  GramObserver gram(*s.model, *s.model, settings);
  NullSink sink;
  timed(bench, [&] { gram.observe(s.point(), sink); });
}
void BM_GramObserveDense(benchmark::State& bench) {
  gram_observe(bench, EigenSolverKind::dense);
}
void BM_GramObserveLanczos(benchmark::State& bench) {
  gram_observe(bench, EigenSolverKind::lanczos);
}

void BM_NtkReference(benchmark::State& bench) {
  Setup s(bench, false);
  const index_t n = bench.range(0);
  Matrix kernel("kernel", n, n);
  timed(bench, [&] {
    s.model->infinite_width_gram(kernel);
    benchmark::DoNotOptimize(extreme_eigenvalues(to_host(kernel), EigenSolverKind::dense));
  });
}

void BM_KlTransport(benchmark::State& bench) {
  Setup s(bench, true);
  KlTransportObserver kl(*s.model, 0, false);
  NullSink sink;
  timed(bench, [&] { kl.observe(s.point(), sink); });
}

void BM_KlKnn(benchmark::State& bench) {
  Setup s(bench, false);
  KlKnnObserver kl(*s.model, s.state, KnnSettings{5, false, 1, 10}, 0);
  NullSink sink;
  timed(bench, [&] { kl.observe(s.point(), sink); });
}

void BM_PathNorm(benchmark::State& bench) {
  Setup s(bench, false);
  PathNormObserver norms(0);
  NullSink sink;
  timed(bench, [&] { norms.observe(s.point(), sink); });
}

void BM_PathLength(benchmark::State& bench) {
  Setup s(bench, false);
  PathLengthObserver length(0);
  timed(bench, [&] { length.on_step(s.point()); });
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "m", "d"})
      ->Args({32, 256, 4})  // smoke size (ctest)
      ->Args({500, 10000, 10})
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_EulerStep)->Apply(sizes);
BENCHMARK(BM_EulerStepWithLaplacian)->Apply(sizes);
// The Gram kernels also at n = 1000, m = 10⁴, d = 16 (the dense-Gram target size), next to the SYRK
// baseline (Φ: 1.4 GB in double).
void gram_sizes(benchmark::internal::Benchmark* b) {
  sizes(b);
  b->Args({1000, 10000, 16});
}
BENCHMARK(BM_GramAccumulate)->Apply(gram_sizes);
BENCHMARK(BM_GramAccumulateGeneric)->Apply(gram_sizes);
BENCHMARK(BM_GramSyrkPhi)->Apply(gram_sizes);
BENCHMARK(BM_GramObserveDense)->Apply(sizes);
BENCHMARK(BM_GramObserveLanczos)->Apply(sizes);
BENCHMARK(BM_NtkReference)->Apply(sizes);
BENCHMARK(BM_KlTransport)->Apply(sizes);
BENCHMARK(BM_KlKnn)->Apply(sizes);
BENCHMARK(BM_PathNorm)->Apply(sizes);
BENCHMARK(BM_PathLength)->Apply(sizes);

}  // namespace

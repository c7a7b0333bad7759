// The cost of each diagnostic of model A at (n, m, d), next to one Euler flow step at the same
// sizes (BM_EulerStep), so that each can be read as a number of flow steps.
//   BM_EulerStep          forward pass, velocities, update (the reference)
//   BM_GramAccumulate     the tiled Gram kernel alone (n²·m·p/2 multiply-adds)
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
#include <memory>

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
    loss = model->velocity(state, velocity);
  }
  FlowPoint point() { return {0, 0.0, 1e-3, state, velocity, double(loss), *model}; }
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
  const VelocityField field = [&](const ParticleState& x, ParticleState& dx) {
    return s.model->velocity(x, dx);
  };
  timed(bench, [&] {
    field(s.state, s.velocity);
    euler.finish_step(s.state, s.velocity, real(1e-3), field);
  });
}
void BM_EulerStep(benchmark::State& bench) {
  euler_step(bench, false);
}
void BM_EulerStepWithLaplacian(benchmark::State& bench) {
  euler_step(bench, true);
}

void BM_GramAccumulate(benchmark::State& bench) {
  Setup s(bench, false);
  const index_t n = bench.range(0);
  Matrix gram("gram", n, n);
  timed(bench, [&] { s.model->accumulate_gram(s.state, 0, gram); });
  const double p = double(s.model->groups()[0].dim());
  bench.counters["GFLOPS"] =
      benchmark::Counter(double(n) * double(n) * double(bench.range(1)) * p * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

void gram_observe(benchmark::State& bench, EigenSolverKind solver) {
  Setup s(bench, false);
  DiagnosticsSettings settings;
  settings.gram_solver = solver;
  GramObserver gram(*s.model, settings);
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
  KlTransportObserver kl(*s.model, 0);
  NullSink sink;
  timed(bench, [&] { kl.observe(s.point(), sink); });
}

void BM_KlKnn(benchmark::State& bench) {
  Setup s(bench, false);
  KlKnnObserver kl(*s.model, s.state, 5, 0);
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
BENCHMARK(BM_GramAccumulate)->Apply(sizes);
BENCHMARK(BM_GramObserveDense)->Apply(sizes);
BENCHMARK(BM_GramObserveLanczos)->Apply(sizes);
BENCHMARK(BM_NtkReference)->Apply(sizes);
BENCHMARK(BM_KlTransport)->Apply(sizes);
BENCHMARK(BM_KlKnn)->Apply(sizes);
BENCHMARK(BM_PathNorm)->Apply(sizes);
BENCHMARK(BM_PathLength)->Apply(sizes);

}  // namespace

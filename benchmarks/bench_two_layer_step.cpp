// One two-layer flow step (forward pass, velocities, Euler update) at (n, m, d).
// Counter pair_updates/s = n·m per step / step time: each sample–particle pair is visited by the
// forward and the velocity pass once.
#include <benchmark/benchmark.h>

#include <chrono>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/two_layer.hpp"

namespace {

using namespace mfsim;

void BM_TwoLayerEulerStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2));
  SyntheticDataSpec data_spec;
  data_spec.dim = d;
  data_spec.n_train = n;
  data_spec.n_test = 0;
  const Dataset data = make_synthetic_dataset(data_spec);
  TwoLayerSpec spec;
  spec.width = m;
  spec.activation = {ActivationKind::tanh, 1};
  TwoLayerModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "bench");
  model.initialize(s, 1, true);
  ParticleState v = allocate_like(s, "bench_velocity");
  Integrator euler(IntegratorKind::euler, s);
  const VelocityField field = [&](const ParticleState& x, ParticleState& dx) {
    return model.velocity(x, dx);
  };
  for (auto _ : state) {
    Kokkos::fence();
    const auto start = std::chrono::steady_clock::now();
    field(s, v);
    euler.finish_step(s, v, real(1e-3), field);
    Kokkos::fence();
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double pairs = double(n) * double(m);
  state.counters["pair_updates/s"] =
      benchmark::Counter(pairs, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS"] = benchmark::Counter(pairs * (4.0 * d + 30) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["n"] = double(n);
  state.counters["m"] = double(m);
  state.counters["d"] = double(d);
}

BENCHMARK(BM_TwoLayerEulerStep)
    ->ArgNames({"n", "m", "d"})
    ->Args({64, 256, 4})  // smoke size (ctest)
    ->Args({1000, 10000, 16})
    ->Args({1000, 10000, 256})
    ->Args({100, 100000, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

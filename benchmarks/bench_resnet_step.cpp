// One ResNet flow step (forward pass through L layers and the head, backward pass, velocities of
// every block and head particle, Euler update) at (n, L, M, K, d).
// Counter pair_updates/s = (n·L·M + n·K) per step / step time: each sample–particle pair is
// visited by the forward, the backward and the velocity pass once.
#include <benchmark/benchmark.h>

#include <chrono>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/resnet.hpp"

namespace {

using namespace mfsim;

void BM_ResNetEulerStep(benchmark::State& state) {
  const index_t n = state.range(0), L = state.range(1), M = state.range(2), K = state.range(3);
  const int d = int(state.range(4));
  SyntheticDataSpec data_spec;
  data_spec.dim = d;
  data_spec.n_train = n;
  data_spec.n_test = 0;
  const Dataset data = make_synthetic_dataset(data_spec);
  ResNetSpec spec;
  spec.depth = L;
  spec.width = M;
  spec.head_width = K;
  spec.activation = {ActivationKind::tanh, 1};
  spec.head_activation = {ActivationKind::tanh, 1};
  ResNetModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "bench");
  // Not antithetic: the blocks' adjoints are then non-zero, as during training.
  model.initialize(s, 1, false);
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
  const double pairs = double(n) * double(L * M + K);
  state.counters["pair_updates/s"] =
      benchmark::Counter(pairs, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["n"] = double(n);
  state.counters["L"] = double(L);
  state.counters["M"] = double(M);
  state.counters["K"] = double(K);
  state.counters["d"] = double(d);
}

BENCHMARK(BM_ResNetEulerStep)
    ->ArgNames({"n", "L", "M", "K", "d"})
    ->Args({16, 2, 16, 32, 4})       // smoke size (ctest)
    ->Args({200, 16, 256, 1024, 8})  // the reference size of the issue
    ->Args({1000, 64, 1024, 4096, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

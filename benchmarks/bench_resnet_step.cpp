// One ResNet flow step (forward pass through L layers and the head, backward pass, velocities of
// every block and head particle, Euler update) at (n, L, M, K, d), and the two-layer step it is
// compared with, in the same program so that both are timed in the same (interleaved) run.
//   BM_ResNetEulerStep     the ResNet step
//   BM_ResNetCacheStep     the step with the activation cache on (cache:1, the default budget;
//                          used from d = 64) and off (cache:0, flow.activation_cache_bytes = 0)
//   BM_ResNetRunStep       the step as the run loop takes it (FlowRun, no observer, 50 steps a
//                          run) beside the summed time of the kernels it launches (run_steps.hpp)
//   BM_TwoLayerReference   model A's Euler step (tanh, bias) at n = 1000, m = 10⁴, d = 16: the
//                          same as bench_two_layer_step's BM_TwoLayerEulerStep
//   BM_RegisterBlock, BM_Tanh/{simd,libm}   the core's ceilings (ceilings.cpp)
//
// Counters (each also as `<name>_cpu`, per CPU second, common.hpp):
//   pair_updates/s  (n·L·M + n·K) per ResNet step (each sample–particle pair is visited by the
//                   forward, the backward and the velocity pass once), n·m per two-layer step;
//   GFLOP/s         the arithmetic of the kernels, σ evaluations counted apart (benchmarks/README):
//                   ResNet (18d + 9) per block pair (3 σ), 12d + 9 with the activation cache,
//                   + (10d + 10) per head pair (3 σ);
//                   two-layer (6 dz + 7) per pair, dz = d + 1 (2 σ).
#include <benchmark/benchmark.h>

#include "common.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"
#include "run_steps.hpp"

namespace {

using namespace mfsim;

Dataset synthetic(index_t n, int d) {
  SyntheticDataSpec data_spec;
  data_spec.dim = d;
  data_spec.n_train = n;
  data_spec.n_test = 0;
  return make_synthetic_dataset(data_spec);
}

// Times Euler steps of `model` from state s.
double time_steps(benchmark::State& state, const Model& model, ParticleState& s) {
  ParticleState v = allocate_like(s, "bench_velocity");
  Integrator euler(IntegratorKind::euler, s);
  const auto evaluation = model.make_evaluation();
  const VelocityField field = [&](const ExecSpace& space, const ParticleState& x,
                                  ParticleState& dx) {
    return model.evaluate(space, x, *evaluation, dx);
  };
  return bench::timed_loop(state, [&] {
    field(ExecSpace(), s, v);
    euler.finish_step(s, v, real(1e-3), field);
  });
}

ResNetSpec resnet_spec(const benchmark::State& state) {
  ResNetSpec spec;
  spec.depth = state.range(1);
  spec.width = state.range(2);
  spec.head_width = state.range(3);
  spec.activation = {ActivationKind::tanh, 1};
  spec.head_activation = {ActivationKind::tanh, 1};
  return spec;
}

// Times Euler steps of the ResNet of `spec` at the state's (n, ·, ·, ·, d).
void time_resnet_steps(benchmark::State& state, const ResNetSpec& spec) {
  const index_t n = state.range(0), L = state.range(1), M = state.range(2), K = state.range(3);
  const int d = int(state.range(4));
  const Dataset data = synthetic(n, d);
  ResNetModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "bench");
  // Not antithetic: the blocks' adjoints are then non-zero, as during training.
  model.initialize(s, 1, false);
  const double cpu = time_steps(state, model, s);
  const double block_pairs = double(n) * double(L * M), head_pairs = double(n) * double(K);
  const double block_flop = spec.caches_activations(n, M, d) ? 12.0 * d + 9 : 18.0 * d + 9;
  bench::set_rate(state, "pair_updates/s", block_pairs + head_pairs, cpu);
  bench::set_rate(state, "GFLOP/s",
                  (block_pairs * block_flop + head_pairs * (10.0 * d + 10)) * 1e-9, cpu);
  state.counters["n"] = double(n);
  state.counters["L"] = double(L);
  state.counters["M"] = double(M);
  state.counters["K"] = double(K);
  state.counters["d"] = double(d);
}

void BM_ResNetEulerStep(benchmark::State& state) {
  time_resnet_steps(state, resnet_spec(state));
}

void BM_ResNetCacheStep(benchmark::State& state) {
  ResNetSpec spec = resnet_spec(state);
  const bool cache = state.range(5) != 0;
  if (!cache) spec.activation_cache_bytes = 0;
  const index_t per_layer = spec.width;
  if (cache && !spec.caches_activations(state.range(0), per_layer, int(state.range(4))))
    state.SetLabel("cache unused: d below min_cached_inputs or over the budget");
  time_resnet_steps(state, spec);
  state.counters["cache"] = double(cache);
}

void BM_ResNetRunStep(benchmark::State& state) {
  const Dataset data = synthetic(state.range(0), int(state.range(4)));
  ResNetModel model(resnet_spec(state), data);
  ParticleState s = allocate_state(model.groups(), false, "bench");
  model.initialize(s, 1, false);
  bench::time_run_steps(state, model, s, 50);
}

void BM_TwoLayerReference(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), dz = d + 1;
  const Dataset data = synthetic(n, d);
  TwoLayerSpec spec;
  spec.width = m;
  spec.activation = {ActivationKind::tanh, 1};
  TwoLayerModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "bench");
  model.initialize(s, 1, false);
  const double cpu = time_steps(state, model, s);
  const double pairs = double(n) * double(m);
  bench::set_rate(state, "pair_updates/s", pairs, cpu);
  bench::set_rate(state, "GFLOP/s", pairs * (6.0 * dz + 7) * 1e-9, cpu);
  state.counters["n"] = double(n);
  state.counters["m"] = double(m);
  state.counters["d"] = double(d);
}

BENCHMARK(BM_ResNetEulerStep)
    ->ArgNames({"n", "L", "M", "K", "d"})
    ->Args({16, 2, 16, 32, 4})       // smoke size (ctest)
    ->Args({200, 16, 256, 1024, 8})  // the ResNet reference size (benchmarks/README.md)
    ->Args({1000, 64, 1024, 4096, 16})
    ->Args({100, 4, 256, 256, 16})      // the peers' quick ResNet size
    ->Args({1000, 8, 1000, 1000, 256})  // the peers' wide ResNet point (d = 256)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The activation cache on and off at the peers' wide point (n = 1000, L = 8, M = K = 1000), d from
// 16 to 256 (below min_cached_inputs, 64, both recompute).
BENCHMARK(BM_ResNetCacheStep)
    ->ArgNames({"n", "L", "M", "K", "d", "cache"})
    ->ArgsProduct({{1000}, {8}, {1000}, {1000}, {16, 32, 64, 128, 256}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The peers' quick ResNet size (n = 100, L = 4, M = K = 256) and the reference size.
BENCHMARK(BM_ResNetRunStep)
    ->ArgNames({"n", "L", "M", "K", "d"})
    ->Args({100, 4, 256, 256, 16})
    ->Args({200, 16, 256, 1024, 8})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_TwoLayerReference)
    ->ArgNames({"n", "m", "d"})
    ->Args({1000, 10000, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

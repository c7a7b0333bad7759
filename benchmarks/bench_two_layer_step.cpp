// Model A's flow step and its kernels at (n, m, d), with the in-run baselines of the same shapes.
//
//   BM_TwoLayerEulerStep   forward pass, residual, velocities, Euler update (one flow step)
//   BM_TwoLayerLangevinStep the same step with weight decay and Langevin noise (Euler–Maruyama):
//   what
//                          mean-field Langevin dynamics adds to a step (docs/langevin.md)
//   BM_TwoLayerMinibatchStep the Euler step on a minibatch of B = n/10 samples (drawing it, the
//                          forward pass, velocities and update on B): SGD's step against the
//                          full-batch BM_TwoLayerEulerStep at the same n
//   BM_TwoLayerOutputsStep the Euler step with c = model.outputs outputs (square loss on c
//                          targets a sample): c = 10 against c = 1 at the same (n, m, d)
//   BM_TwoLayerRunStep     the step as the run loop takes it (FlowRun, no observer, 100 steps a
//                          run) beside the summed time of the kernels it launches (run_steps.hpp):
//                          the loop's overhead as step_over_kernels
//   BM_TwoLayerCacheStep   the Euler step with the activation cache on (cache:1, the default
//                          budget; used from d = 192) and off (cache:0,
//                          flow.activation_cache_bytes = 0)
//   BM_TwoLayerForward     the forward pass alone (f on the training samples)
//   BM_TwoLayerUpdate      the Euler update alone (θ += dt v): what fusing it could save
//   BM_DenseStep           the same step with dense Eigen matrices (H = X Wᵀ materialised)
//   BM_BlasGemm            one X Wᵀ (n × m × d) by single-thread OpenBLAS: a step needs 3 of them
//   BM_BlasSyrk            Φ Φᵀ (n × n from n × m) by single-thread OpenBLAS (Gram baseline)
//   BM_RegisterBlock, BM_Tanh/{simd,libm}   the core's ceilings (ceilings.cpp)
//
// Counters (each also as `<name>_cpu`, per CPU second, see common.hpp): pair_updates/s (n·m per
// step), GFLOP/s (arithmetic of the fused kernels, (6 dz + 7) per pair with dz = d + 1, σ counted
// apart), gemm_equivalent_GFLOP/s (6 n m d: the three n × m × d products a step contains, the
// figure to put beside BM_BlasGemm's GFLOP/s), and bytes (compulsory memory traffic per step).
#include <benchmark/benchmark.h>

#include <vector>

#include "baselines.hpp"
#include "common.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/flow/minibatch.hpp"
#include "mfsim/flow/regularisation.hpp"
#include "mfsim/models/two_layer.hpp"
#include "run_steps.hpp"

namespace {

using namespace mfsim;

struct Problem {
  Dataset data;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state, velocity;

  Problem(index_t n, index_t m, int d, int outputs = 1,
          std::uint64_t cache_bytes = TwoLayerSpec().activation_cache_bytes) {
    SyntheticDataSpec data_spec;
    data_spec.dim = d;
    data_spec.n_train = n;
    data_spec.n_test = 0;
    data = make_synthetic_dataset(data_spec);
    if (outputs > 1) {  // c targets a sample (their values do not change the cost)
      data.y_train = Vector("bench::y", n * outputs);
      data.targets = outputs;
    }
    TwoLayerSpec spec;
    spec.outputs = outputs;
    spec.width = m;
    spec.activation = {ActivationKind::tanh, 1};
    spec.activation_cache_bytes = cache_bytes;
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), false, "bench");
    model->initialize(state, 1, false);
    velocity = allocate_like(state, "bench_velocity");
  }
};

void set_pair_counters(benchmark::State& state, double cpu, index_t n, index_t m, int d,
                       double flops_per_pair) {
  const double pairs = double(n) * double(m);
  bench::set_rate(state, "pair_updates/s", pairs, cpu);
  bench::set_rate(state, "GFLOP/s", pairs * flops_per_pair * 1e-9, cpu);
  state.counters["n"] = double(n);
  state.counters["m"] = double(m);
  state.counters["d"] = double(d);
}

// Times full-batch Euler steps of the problem's model (evaluation, then the update); returns the
// CPU seconds the loop took (bench::timed_loop).
double time_euler_steps(benchmark::State& state, Problem& p) {
  Integrator euler(IntegratorKind::euler, p.state);
  const auto evaluation = p.model->make_evaluation();
  const VelocityField field = [&](const ExecSpace& space, const ParticleState& s,
                                  ParticleState& v) {
    return p.model->evaluate(space, s, *evaluation, v);
  };
  return bench::timed_loop(state, [&] {
    field(ExecSpace(), p.state, p.velocity);
    euler.finish_step(p.state, p.velocity, real(1e-3), field);
  });
}

void BM_TwoLayerEulerStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), dz = d + 1;
  Problem p(n, m, d);
  const double cpu = time_euler_steps(state, p);
  set_pair_counters(state, cpu, n, m, d, 6.0 * dz + 7);
  bench::set_rate(state, "gemm_equivalent_GFLOP/s", 6.0 * double(n) * double(m) * d * 1e-9, cpu);
  // θ read by both kernels and the update, v written and read, θ written; x̃ twice, r, y, f.
  state.counters["bytes"] = double(6 * m * (dz + 1) + 4 * n * dz + 4 * n) * double(sizeof(real));
}

void BM_TwoLayerRunStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2));
  Problem p(n, m, d);
  bench::time_run_steps(state, *p.model, p.state, 100);
  set_pair_counters(state, 0, n, m, d, 6.0 * (d + 1) + 7);
}

void BM_TwoLayerCacheStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2));
  const bool cache = state.range(3) != 0;
  Problem p(n, m, d, 1, cache ? TwoLayerSpec().activation_cache_bytes : 0);
  if (cache && !p.model->spec().caches_activations(n, m, d))
    state.SetLabel("cache unused: d below min_cached_inputs or over the budget");
  const double cpu = time_euler_steps(state, p);
  set_pair_counters(state, cpu, n, m, d, 6.0 * (d + 1) + 7);
  bench::set_rate(state, "gemm_equivalent_GFLOP/s", 6.0 * double(n) * double(m) * d * 1e-9, cpu);
  state.counters["cache"] = double(cache);
}

void BM_TwoLayerOutputsStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), c = int(state.range(3));
  Problem p(n, m, d, c);
  const double cpu = time_euler_steps(state, p);
  // (6 dz + 7) per pair for c = 1, plus about 4c for r·a and v_a (multiply-adds, forward and
  // velocity).
  set_pair_counters(state, cpu, n, m, d, 6.0 * (d + 1) + 7 + (c > 1 ? 4.0 * c : 0.0));
  state.counters["c"] = double(c);
}

void BM_TwoLayerLangevinStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2));
  Problem p(n, m, d);
  Integrator euler(IntegratorKind::euler, p.state);
  const auto evaluation = p.model->make_evaluation();
  const auto& groups = p.model->groups();
  Regularisation r;
  r.temperature = 0.01;
  r.weight_decay = 0.1;
  ParticleState drift = allocate_like(p.state, "bench::drift");
  const VelocityField field = [&](const ExecSpace& space, const ParticleState& s,
                                  ParticleState& v) {
    return p.model->evaluate(space, s, *evaluation, v);
  };
  index_t step = 0;
  const double cpu = bench::timed_loop(state, [&] {
    field(ExecSpace(), p.state, p.velocity);
    add_regulariser_drift(r, groups, p.state, p.velocity, drift);
    euler.finish_step(p.state, drift, real(1e-3), field);
    add_langevin_noise(r, groups, p.state, step++, 0.0, 1e-3);
  });
  set_pair_counters(state, cpu, n, m, d, 6.0 * (d + 1) + 7);
}

void BM_TwoLayerMinibatchStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2));
  Problem p(n, m, d);
  Integrator euler(IntegratorKind::euler, p.state);
  MinibatchSettings settings;
  settings.size = n / 10;
  const MinibatchSampler sampler(settings, p.data);
  const auto evaluation = p.model->make_evaluation(settings.size);
  const VelocityField field = [&](const ExecSpace& space, const ParticleState& s,
                                  ParticleState& v) {
    return p.model->evaluate(space, s, *evaluation, v);
  };
  index_t step = 0;
  const double cpu = bench::timed_loop(state, [&] {
    sampler.draw(step++, *evaluation);
    field(ExecSpace(), p.state, p.velocity);
    euler.finish_step(p.state, p.velocity, real(1e-3), field);
  });
  set_pair_counters(state, cpu, settings.size, m, d, 6.0 * (d + 1) + 7);
}

void BM_TwoLayerForward(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), dz = d + 1;
  Problem p(n, m, d);
  Vector f("bench::f", n);
  const double cpu =
      bench::timed_loop(state, [&] { p.model->predict(p.state, p.data.x_train, f); });
  set_pair_counters(state, cpu, n, m, d, 2.0 * dz + 2);
  state.counters["bytes"] = double(m * (dz + 1) + n * (d + 1)) * double(sizeof(real));
}

void BM_TwoLayerUpdate(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), dz = d + 1;
  Problem p(n, m, d);
  const double cpu =
      bench::timed_loop(state, [&] { axpy(p.state, p.state, real(1e-3), p.velocity); });
  bench::set_rate(state, "particle_updates/s", double(m), cpu);
  state.counters["bytes"] = double(3 * m * (dz + 1)) * double(sizeof(real));
  state.counters["n"] = double(n);
  state.counters["m"] = double(m);
  state.counters["d"] = double(d);
}

void BM_DenseStep(benchmark::State& state) {
  const index_t n = state.range(0), m = state.range(1);
  const int d = int(state.range(2)), dz = d + 1;
  bench::DenseTwoLayerStep dense(int(n), int(m), d, real(1));
  const double cpu = bench::timed_loop(state, [&] { dense.step(real(1e-3)); });
  set_pair_counters(state, cpu, n, m, d, 6.0 * dz + 7);
  bench::set_rate(state, "gemm_equivalent_GFLOP/s", 6.0 * double(n) * double(m) * d * 1e-9, cpu);
  state.counters["bytes"] = dense.bytes();
}

void BM_BlasGemm(benchmark::State& state) {
  const int n = int(state.range(0)), m = int(state.range(1)), d = int(state.range(2));
  std::vector<real> x(std::size_t(n) * d, real(0.5)), w(std::size_t(m) * d, real(0.25)),
      c(std::size_t(n) * m);
  const double cpu = bench::timed_loop(
      state, [&] { bench::blas_gemm_xwt(n, m, d, x.data(), w.data(), c.data()); });
  bench::set_rate(state, "GFLOP/s", 2.0 * n * double(m) * d * 1e-9, cpu);
  state.counters["n"] = n;
  state.counters["m"] = m;
  state.counters["d"] = d;
  state.SetLabel(bench::blas_gemm_name());
}

void BM_BlasSyrk(benchmark::State& state) {
  const int n = int(state.range(0)), k = int(state.range(1));
  std::vector<real> phi(std::size_t(n) * k, real(0.5)), c(std::size_t(n) * n);
  const double cpu =
      bench::timed_loop(state, [&] { bench::blas_syrk(n, k, phi.data(), c.data()); });
  bench::set_rate(state, "GFLOP/s", double(n) * (n + 1) * double(k) * 1e-9, cpu);
  state.counters["n"] = n;
  state.counters["m"] = k;
  state.SetLabel(bench::blas_syrk_name());
}

// Sizes: the smoke size (ctest), then sweeps of d, m and n around n = 1000, m = 10⁴, d = 16.
// The dense and BLAS baselines stop at n·m = 10⁷ (an 80 MB matrix in double).
void step_sizes(benchmark::internal::Benchmark* b, bool baseline) {
  b->ArgNames({"n", "m", "d"});
  b->Args({64, 256, 4});
  for (int d : {2, 4, 8, 16, 32, 64, 128, 256}) b->Args({1000, 10000, d});
  for (int m : {1000, 3000, 30000, 100000})
    if (!baseline || 1000 * m <= 10000000) b->Args({1000, m, 16});
  for (int n : {100, 300, 3000, 10000})
    if (!baseline || n * 10000 <= 10000000) b->Args({n, 10000, 16});
}

void kernel_sizes(benchmark::internal::Benchmark* b) {
  step_sizes(b, false);
}
void baseline_sizes(benchmark::internal::Benchmark* b) {
  step_sizes(b, true);
}

BENCHMARK(BM_TwoLayerEulerStep)
    ->Apply(kernel_sizes)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
// The peers' quick size (the sizes of short runs and sweeps, where the loop's overhead shows) and
// the reference size.
BENCHMARK(BM_TwoLayerRunStep)
    ->ArgNames({"n", "m", "d"})
    ->Args({100, 1000, 16})
    ->Args({1000, 10000, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerCacheStep)
    ->ArgNames({"n", "m", "d", "cache"})
    ->Args({64, 256, 4, 1})
    ->ArgsProduct({{1000}, {10000}, {16, 64, 128, 256}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerOutputsStep)
    ->ArgNames({"n", "m", "d", "c"})
    ->Args({64, 256, 4, 3})
    ->Args({1000, 10000, 64, 1})
    ->Args({1000, 10000, 64, 10})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerLangevinStep)
    ->ArgNames({"n", "m", "d"})
    ->Args({64, 256, 4})
    ->Args({1000, 10000, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerMinibatchStep)
    ->ArgNames({"n", "m", "d"})
    ->Args({640, 256, 4})
    ->Args({10000, 10000, 16})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerForward)->Apply(kernel_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoLayerUpdate)->Apply(kernel_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DenseStep)->Apply(baseline_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlasGemm)->Apply(baseline_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlasSyrk)
    ->ArgNames({"n", "m"})
    ->Args({64, 256})
    ->Args({1000, 10000})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The memory target (n = 10⁴, m = 10⁶, d = 16: one n × m double array would be 80 GB). Slow (a
// minute or more per step on one core): run it explicitly, under /usr/bin/time -v.
BENCHMARK(BM_TwoLayerEulerStep)
    ->Name("BM_TwoLayerEulerStepLarge")
    ->ArgNames({"n", "m", "d"})
    ->Args({10000, 1000000, 16})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

}  // namespace

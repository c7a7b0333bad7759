// The population flow's pair kernel (models/population.hpp, detail/population_kernel.hpp): one
// velocity evaluation of m particles in d dimensions against a teacher of 4 neurons, i.e.
// m·(m + 4) particle-source pairs, each with its Gaussian kernel (erf: arcsine, relu: arc-cosine).
//   BM_PopulationVelocity/m/d/act   act 0 = erf, 1 = relu
// Counters: `pairs` per second, and `flop` per second counting every arithmetic operation of a
// pair (docs/performance.md): 4d for the two products (w_k·Σw_j and the accumulation of
// c_j K_2 Σw_j) and the kernel's own, 60 for erf and 61 for relu (a square root or a division
// counted as one, the arcsine as its 40 polynomial operations; compares and selects not counted),
// to compare with BM_RegisterBlock's multiply-add ceiling (ceilings.cpp, in the same run).
#include <benchmark/benchmark.h>

#include "common.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/models/population.hpp"

namespace {

using namespace mfsim;

void BM_PopulationVelocity(benchmark::State& bench) {
  const index_t m = bench.range(0);
  const int d = int(bench.range(1));
  const ActivationKind act = bench.range(2) == 0 ? ActivationKind::erf : ActivationKind::relu;
  SyntheticDataSpec g;
  g.dim = d;
  g.n_train = 0;
  g.n_test = 0;
  g.inputs = InputDistribution::gaussian;
  g.teacher_width = 4;
  g.teacher_activation = {act, 1};
  Dataset data = make_synthetic_dataset(g);
  data.teacher = synthetic_teacher(g);
  data.teacher_scale = teacher_output_scale(g.teacher_width);
  data.teacher_activation = g.teacher_activation;
  TwoLayerSpec spec;
  spec.width = m;
  spec.bias = false;
  spec.activation = {act, 1};
  spec.std_w = 1 / std::sqrt(double(d));
  const PopulationModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), false, "bench::state");
  model.initialize(s, 2, false);
  ParticleState v = allocate_like(s, "bench::velocity");
  const auto e = model.make_evaluation();
  const double cpu = bench::timed_loop(bench, [&] { model.evaluate(s, *e, v); });
  const double pairs = double(m) * double(m + 4);
  bench::set_rate(bench, "pairs", pairs, cpu);
  const double kernel_flop = act == ActivationKind::erf ? 60 : 61;
  bench::set_rate(bench, "flop", pairs * (4 * d + kernel_flop), cpu);
}

}  // namespace

BENCHMARK(BM_PopulationVelocity)
    ->ArgNames({"m", "d", "act"})
    ->Args({256, 16, 0})  // smoke size (ctest)
    ->Args({4096, 16, 0})
    ->Args({4096, 16, 1})
    ->Args({4096, 64, 0})
    ->Args({4096, 64, 1})
    ->Args({4096, 256, 0})
    ->Args({4096, 256, 1})
    ->Args({16384, 16, 0})
    ->Args({16384, 256, 0})  // with {4096, 16 | 256, 0}: the KeOps peer's points
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

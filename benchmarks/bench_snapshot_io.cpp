// Writing one snapshot of the particles to the H5MD file (what `output.every` costs), at m
// particles of dimension d + 2 (two-layer: a, w, b), with and without log-densities.
//
// Counter bytes/s: the frame's payload (m·(d+2) doubles, + m for log-densities) per second of
// the fenced wall time, which includes the device → host copy, the HDF5 write and the flush
// (every frame is flushed). Wall time is the figure that matters for I/O; `bytes/s_cpu` is given
// as for every benchmark (common.hpp).
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <filesystem>
#include <string>

#include "common.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/io/h5md_writer.hpp"
#include "mfsim/models/two_layer.hpp"

namespace {

using namespace mfsim;

void BM_SnapshotWrite(benchmark::State& state) {
  const index_t m = state.range(0);
  const int d = int(state.range(1));
  const bool log_density = state.range(2) != 0;
  SyntheticDataSpec data_spec;
  data_spec.dim = d;
  data_spec.n_train = 16;
  data_spec.n_test = 0;
  const Dataset data = make_synthetic_dataset(data_spec);
  TwoLayerSpec spec;
  spec.width = m;
  TwoLayerModel model(spec, data);
  ParticleState s = allocate_state(model.groups(), log_density, "bench");
  model.initialize(s, 1, false);
  if (log_density) set_initial_log_density(s, model.groups());

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mfsim_bench_io_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "snapshot.h5").string();
  {
    H5mdWriter writer(path, true, model.groups(), log_density);
    index_t step = 0;
    const double cpu = bench::timed_loop(state, [&] {
      writer.append_particles(step, double(step), s);
      ++step;
    });
    const double payload = double(m) * double(d + 2 + (log_density ? 1 : 0)) * sizeof(double);
    bench::set_rate(state, "bytes/s", payload, cpu);
    state.counters["bytes"] = payload;
    state.counters["m"] = double(m);
    state.counters["d"] = double(d);
  }
  fs::remove_all(dir);
}

BENCHMARK(BM_SnapshotWrite)
    ->ArgNames({"m", "d", "log_density"})
    ->Args({256, 4, 0})  // smoke size (ctest)
    ->Args({10000, 16, 0})
    ->Args({100000, 16, 0})
    ->Args({1000000, 16, 0})
    ->Args({100000, 16, 1})
    ->Args({100000, 256, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

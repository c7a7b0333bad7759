#include "mfsim/app/simulation.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "mfsim/app/diagnostics.hpp"
#include "mfsim/app/memory_check.hpp"
#include "mfsim/app/model_factory.hpp"
#include "mfsim/app/output_path.hpp"
#include "mfsim/app/resolved_config.hpp"
#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/kernel_isa.hpp"
#include "mfsim/core/stop_signal.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/flow/progress.hpp"
#include "mfsim/io/data_import.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/io/h5md_writer.hpp"

namespace mfsim {
namespace {

// The labels of a file used with a loss that needs ±1 (logistic): the first other value found.
void check_signed_labels(ConstVector y, const std::string& path, const char* part) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  for (std::size_t i = 0; i < host.extent(0); ++i)
    if (host(i) != real(1) && host(i) != real(-1))
      throw InputError(fmt::format(
          "data.path: {}: /data/{}/y[{}] = {} but model.loss = \"logistic\" needs labels -1 or "
          "+1 (mfsim data import --binary-labels maps two classes to them)",
          path, part, i, double(host(i))));
}

Dataset make_dataset(const DataConfig& c, LossKind loss) {
  if (c.kind == DataKind::file) {
    Dataset d;
    try {
      d = H5mdReader(c.path).read_data();
    } catch (const InputError& e) {
      throw InputError(std::string("data.path: ") + e.what());
    }
    if (needs_signed_labels(loss)) {
      check_signed_labels(d.y_train, c.path, "train");
      check_signed_labels(d.y_test, c.path, "test");
    }
    return d;
  }
  return make_synthetic_dataset(c.synthetic);
}

// Copies this rank's rows of a frame read from a file into the state.
void load_frame(const ParticleFrame& frame, const GroupSpec& g, Matrix theta, Vector log_density,
                const std::string& path) {
  if (frame.particles != g.global_count || frame.value.extent(1) != std::size_t(g.dim()))
    throw InputError(fmt::format(
        "init.path: {} holds {} particles of dimension {} in /particles/{}; the model needs {} of "
        "dimension {}",
        path, frame.particles, frame.value.extent(1), g.name, g.global_count, g.dim()));
  // The frame holds this rank's rows only (read_frame with the shard), in local order.
  auto host = Kokkos::create_mirror_view(theta);
  for (index_t i = 0; i < g.local_count; ++i)
    for (int j = 0; j < g.dim(); ++j) host(i, j) = real(frame.value(i, j));
  Kokkos::deep_copy(theta, host);
  if (log_density.extent(0) > 0 && frame.has_log_density) {
    if (frame.log_density.extent(0) != frame.value.extent(0))  // the reader checks the shapes
      throw InputError(
          fmt::format("init.path: {}: /particles/{}/log_density has {} rows, the "
                      "positions {}",
                      path, g.name, frame.log_density.extent(0), frame.value.extent(0)));
    auto logp = Kokkos::create_mirror_view(log_density);
    for (index_t i = 0; i < g.local_count; ++i) logp(i) = real(frame.log_density(i));
    Kokkos::deep_copy(log_density, logp);
  }
}

// Kokkos' concurrency of the execution space: the thread count of a host backend (all cores by
// default for OpenMP and Threads, or OMP_NUM_THREADS / --kokkos-num-threads), 1 for Serial, the
// most resident threads on a GPU.
int backend_threads() {
  return ExecSpace().concurrency();
}

std::map<std::string, std::string> parameters(const Config& c, const Problem& p,
                                              const Communicator& comm) {
  std::map<std::string, std::string> out = p.model->scalings(c.flow.dt);
  out.insert({
      {"config", c.verbatim},
      {"config_resolved", resolved_as_run(c, p.data)},
      {"config_source", c.source},
      {"mfsim_version", MFSIM_VERSION},
      {"kokkos_version", std::to_string(KOKKOS_VERSION)},
      {"backend", ExecSpace::name()},
      {"threads", std::to_string(backend_threads())},  // a number: a numeric attribute
      {"kernel_isa", kernel_instruction_set()},
      {"precision", precision_name},
      {"ranks", std::to_string(comm.size())},
      {"model", p.model->kind()},
  });
  // The data file a run read, beside the sizes in config_resolved: where, and which bytes.
  if (c.data.kind == DataKind::file) {
    out["data_file"] = std::filesystem::absolute(c.data.path).string();
    out["data_file_fnv1a64"] = file_checksum(c.data.path);
  }
  return out;
}

// The output file, created only now that every input is validated, with its parameters and
// data written.
std::unique_ptr<H5mdWriter> open_output(const Config& c, const RunOptions& options,
                                        const Problem& p, const Diagnostics& diagnostics,
                                        const Communicator& comm) {
  // Files are touched from here on: a stop signal is handled at the next committed point (before
  // the first frame, by removing what was created) instead of ending the process at once.
  defer_stop_signals();
  std::unique_ptr<H5mdWriter> writer;
  OutputDirectories directories;  // removed again if the writer cannot start
  on_every_rank(comm, [&] {
    if (comm.is_root()) directories.create(c.output.path);
    writer = std::make_unique<H5mdWriter>(c.output.path, options.overwrite, p.model->groups(),
                                          p.state.tracks_log_density(), comm);
    auto attributes = parameters(c, p, comm);
    attributes.insert(diagnostics.parameters().begin(), diagnostics.parameters().end());
    writer->write_parameters(attributes);
    writer->write_data(p.data);
  });
  directories.keep();
  return writer;
}

RunSettings run_settings(const Config& c, const RunOptions& options, const Problem& p,
                         const Communicator& comm) {
  RunSettings settings = c.flow;
  settings.time_phases = options.time_phases;
  settings.first_step = p.first_step;
  settings.start_time = p.start_time;
  // One process: a stop signal ends the run at the next point, observed, snapshotted and
  // committed. With several, mpirun's own handling stays (the ranks would not agree on the step).
  if (comm.size() == 1)
    settings.stop_requested = [] {
      return stop_signal() != 0;
    };
  return settings;
}

// The header of the progress lines: what the speed figures that follow were measured on.
std::string backend_line(const Communicator& comm) {
  return fmt::format("mfsim: Kokkos {} backend, {} threads, {} precision, {} rank{}; kernels: {}",
                     ExecSpace::name(), backend_threads(), precision_name, comm.size(),
                     comm.size() == 1 ? "" : "s", kernel_instruction_set());
}

// What ran and where it went: the summary and the "wrote" line.
std::string summary_lines(const Config& c, const RunOptions& options, const RunSummary& s) {
  const std::string split = options.time_phases
                                ? fmt::format(
                                      " ({:.4g} s/step in steps, {:.3g} s observing, {:.3g} s "
                                      "writing)",
                                      s.seconds_per_step(), s.observe_seconds, s.write_seconds)
                                : "";
  return fmt::format(
      "mfsim: {} steps to step {} (t = {:.6g}, stopped by {}) in {:.3g} s{}; loss {:.6g} -> "
      "{:.6g}\n"
      "mfsim: wrote {} ({} snapshots, {} observation rows)",
      s.steps_run, s.step, s.time, stop_reason_name(s.reason), s.seconds, split, s.initial_loss,
      s.loss, c.output.path, s.snapshots, s.observations);
}

}  // namespace

LoadedFrame load_state(const H5mdReader& file, const std::string& key,
                       const std::vector<GroupSpec>& groups, index_t frame, ParticleState& state) {
  // A negative frame counts from the end of the frames every group has: a run killed between
  // writing its groups leaves one group a frame ahead.
  index_t common_frames = std::numeric_limits<index_t>::max();
  try {
    for (const GroupSpec& g : groups) common_frames = std::min(common_frames, file.frames(g.name));
  } catch (const InputError& e) {
    throw InputError(key + ": " + e.what());
  }
  const index_t frame_index = frame < 0 ? common_frames + frame : frame;
  LoadedFrame loaded;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ParticleFrame read;
    try {
      // This rank's part of every slice: a hyperslab with stride per_slice.
      const GroupSpec& spec = groups[g];
      read = file.read_frame(spec.name, frame_index < 0 ? frame : frame_index, spec.slice_offset,
                             spec.local_per_slice, spec.slices, spec.per_slice());
    } catch (const InputError& e) {
      throw InputError(key + ": " + e.what());
    }
    if (g > 0 && read.step != loaded.step)
      throw InputError(fmt::format(
          "{}: {}: frame {} is step {} in /particles/{} but step {} in "
          "/particles/{}",
          key, file.path(), frame_index, loaded.step, groups[0].name, read.step, groups[g].name));
    load_frame(read, groups[g], state.theta[g],
               state.tracks_log_density() ? state.log_density[g] : Vector(), file.path());
    loaded.has_log_density = loaded.has_log_density && read.has_log_density;
    loaded.step = read.step;
    loaded.time = read.time;
  }
  return loaded;
}

Problem build_problem(const Config& c, const Communicator& comm, bool log_density) {
  Problem p;
  p.data = make_dataset(c.data, c.model.loss_kind());
  p.model = make_model(c.model, p.data, comm);
  const auto& groups = p.model->groups();
  p.state = allocate_state(groups, log_density, "state");
  if (c.init.kind == InitKind::file) {
    try {
      p.init_file = std::make_shared<const H5mdReader>(c.init.path);
    } catch (const InputError& e) {
      throw InputError(std::string("init.path: ") + e.what());
    }
    const LoadedFrame loaded = load_state(*p.init_file, "init.path", groups, c.init.frame, p.state);
    p.first_step = loaded.step;
    p.start_time = loaded.time;
    // A file without log-densities restarts the transport estimate from the Gaussian law.
    if (log_density && !loaded.has_log_density) {
      set_initial_log_density(p.state, groups);
      p.log_density_restarted = true;
    }
  } else {
    p.model->initialize(p.state, c.init.seed, c.init.antithetic);
    if (log_density) set_initial_log_density(p.state, groups);
  }
  return p;
}

RunSummary run_simulation(const Config& c, const RunOptions& options, const Console& console,
                          const Communicator& comm) {
  const Console root = console.on_root(comm);
  // Each stage that may fail on some ranks only (rank 0 alone writes; every rank reads its input
  // files) ends with an agreement, so that all ranks stop together with the same error.
  on_every_rank(comm, [&] {
    check_memory(c);
    if (comm.is_root()) check_output_path(c, options.overwrite);
  });
  Problem p;
  on_every_rank(comm, [&] { p = build_problem(c, comm, c.diagnostics.kl_transport); });
  if (p.log_density_restarted)
    root.note(fmt::format(
        "mfsim: note: init.path {} holds no log-densities; kl_transport restarts from 0 at step {} "
        "(the KL from the restart's state, not from the original initialisation)",
        c.init.path, p.first_step));
  // Its checks fail on every rank alike (same config); reading a restart's first frame, which may
  // not, is agreed on inside.
  std::unique_ptr<const Diagnostics> diagnostics;
  on_every_rank(comm, [&] { diagnostics = std::make_unique<const Diagnostics>(c, p, console); });
  const std::unique_ptr<H5mdWriter> writer = open_output(c, options, p, *diagnostics, comm);

  LossObserver loss;
  std::vector<Observer*> observers{&loss};
  for (Observer* o : diagnostics->observers()) observers.push_back(o);
  const RunSettings settings = run_settings(c, options, p, comm);
  const index_t total = settings.steps == std::numeric_limits<index_t>::max() ? -1 : settings.steps;
  StderrProgress progress(total, p.start_time, settings.t_end, root);
  if (options.progress) root.note(backend_line(comm));
  const RunSummary s = run_flow(*p.model, p.state, settings, observers, *writer,
                                options.progress && comm.is_root() ? &progress : nullptr);
  if (s.reason == StopReason::signal)
    throw StopRequested(stop_signal(), "stopped by " + signal_name(stop_signal()) + " at step " +
                                           std::to_string(s.step) + "; " + writer->holds());
  root.result(summary_lines(c, options, s));
  return s;
}

}  // namespace mfsim

#include "mfsim/app/simulation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <new>
#include <utility>

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

// The labels of a file used with a loss that needs ±1 (logistic): the first other value found,
// named `where`[i].
void check_signed_labels(ConstVector y, const std::string& where) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  for (std::size_t i = 0; i < host.extent(0); ++i)
    if (host(i) != real(1) && host(i) != real(-1))
      throw InputError(
          fmt::format("{}[{}] = {} but model.loss = \"logistic\" needs labels -1 or "
                      "+1 (mfsim data import --binary-labels maps two classes to them)",
                      where, i, double(host(i))));
}

// Synthetic labels that overflowed (a noise of 1e308): the key that made them, not flow.dt.
void check_finite_labels(ConstVector y, const SyntheticDataSpec& spec, const char* part) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  for (std::size_t i = 0; i < host.extent(0); ++i)
    if (!std::isfinite(double(host(i))))
      throw InputError(fmt::format(
          "{}: the synthetic labels are not finite (/data/{}/y[{}] = {}); the data must hold "
          "finite values",
          spec.noise > 0 ? fmt::format("data.noise = {:g}", spec.noise)
                         : fmt::format("data.teacher_width = {}", spec.teacher_width),
          part, i, double(host(i))));
}

// Where a check finds the labels, as its messages name them.
struct LabelSource {
  std::string name;         // the whole: "data.path: d.h5", "data.kind = \"teacher\"", "y_train"
  std::string train, test;  // one label, before its index: "data.path: d.h5: /data/train/y"
  bool may_hold_classes;    // false: synthetic labels, real-valued by construction
  std::string class_hint;   // how to get class labels right, in the message's parentheses
};

LabelSource file_labels(const std::string& path) {
  const std::string name = "data.path: " + path;
  return {name, name + ": /data/train/y", name + ": /data/test/y", true,
          "mfsim data import keeps classes as such; set model.outputs to the number of classes"};
}

LabelSource synthetic_labels(DataKind kind) {
  return {"data.kind = \"" + data_kind_name(kind) + "\"", "", "", false, ""};
}

// Labels given in memory (Session): named by the arrays y_train and y_test.
LabelSource given_labels() {
  return {"y_train", "y_train", "y_test", true, "set model.outputs to the number of classes"};
}

// Class labels 0 … c−1 for cross-entropy: the first other value found, named `where`[i].
void check_class_labels(ConstVector y, int classes, const std::string& where,
                        const std::string& hint) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  for (std::size_t i = 0; i < host.extent(0); ++i) {
    const double v = double(host(i));
    if (!(v >= 0 && v < classes && v == std::floor(v)))
      throw InputError(
          fmt::format("{}[{}] = {} but model.loss = \"cross_entropy\" with model.outputs = {} "
                      "needs class labels 0 ... {} ({})",
                      where, i, v, classes, classes - 1, hint));
  }
}

// Whether the labels fit the loss and model.outputs = c (MATH.md §1.5): cross-entropy takes class
// labels 0 … c−1, the square loss c targets a sample; one line naming the key to set.
void check_labels_fit(const Dataset& d, const ModelConfig& model, const LabelSource& labels) {
  const LossKind loss = model.loss_kind();
  const int outputs = model.outputs();
  const std::string& source = labels.name;
  if (needs_class_labels(loss)) {
    if (d.targets != 1)
      throw InputError(fmt::format(
          "{}: holds {} targets a sample (one-hot), but model.loss = \"cross_entropy\" needs class "
          "labels: import without --one-hot, or set model.loss = \"square\"",
          source, d.targets));
    if (d.classes > 0 && d.classes != outputs)
      throw InputError(
          fmt::format("model.outputs = {}: {} holds {} classes: set model.outputs = {}", outputs,
                      source, d.classes, d.classes));
    if (!labels.may_hold_classes)
      throw InputError(fmt::format(
          "model.loss = \"cross_entropy\": {} has real-valued labels; set data.kind = \"file\" "
          "(class labels from mfsim data import)",
          source));
    check_class_labels(d.y_train, outputs, labels.train, labels.class_hint);
    check_class_labels(d.y_test, outputs, labels.test, labels.class_hint);
    return;
  }
  if (loss != LossKind::square) return;
  if (d.targets != outputs)
    throw InputError(fmt::format(
        "model.outputs = {}: {} holds {} target{} a sample: set model.outputs = {}{}", outputs,
        source, d.targets, d.targets == 1 ? "" : "s", d.targets,
        d.classes > 1 && outputs > 1
            ? fmt::format(", or model.loss = \"cross_entropy\" for its {} classes", d.classes)
            : ""));
  if (outputs == 1 && d.classes > 2)
    throw InputError(fmt::format(
        "model.loss = \"square\" with model.outputs = 1 on {} classes of {} would regress the "
        "class "
        "indices: set model.loss = \"cross_entropy\" and model.outputs = {} (or import with "
        "--one-hot and set model.outputs = {})",
        d.classes, source, d.classes, d.classes));
}

// `probe_samples`: the population flow's probe set of the Gram diagnostics (0: none).
Dataset make_dataset(const DataConfig& c, const ModelConfig& model, index_t probe_samples) {
  const LossKind loss = model.loss_kind();
  if (c.kind == DataKind::file) {
    Dataset d;
    try {
      d = H5mdReader(c.path).read_data();
    } catch (const InputError& e) {
      throw InputError(std::string("data.path: ") + e.what());
    }
    if (needs_signed_labels(loss)) {
      check_signed_labels(d.y_train, "data.path: " + c.path + ": /data/train/y");
      check_signed_labels(d.y_test, "data.path: " + c.path + ": /data/test/y");
    }
    check_labels_fit(d, model, file_labels(c.path));
    return d;
  }
  Dataset d = make_synthetic_dataset(c.synthetic);
  if (c.kind == DataKind::population) {
    d.teacher = synthetic_teacher(c.synthetic);
    d.teacher_scale = teacher_output_scale(c.synthetic.teacher_width);
    d.teacher_activation = c.synthetic.teacher_activation;
    d.covariance_diagonal = c.synthetic.covariance_diagonal;
    if (probe_samples > 0) d.probe = synthetic_probe(c.synthetic, probe_samples);
  }
  check_finite_labels(d.y_train, c.synthetic, "train");
  check_finite_labels(d.y_test, c.synthetic, "test");
  check_labels_fit(d, model, synthetic_labels(c.kind));
  return d;
}

// Whether `e` says that an allocation failed: std::bad_alloc, or Kokkos' error for a View it could
// not allocate (a std::runtime_error in Kokkos 3 and 4 alike, without a type of its own).
bool allocation_failed(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
  const std::string what = e.what();
  return what.rfind("Kokkos", 0) == 0 && what.find("failed to allocate") != std::string::npos;
}

// Runs a stage of the set-up on every rank (on_every_rank): an allocation that fails there, a size
// that the memory check does not count, is bad input like the sizes it refuses, and it is found
// before the output is touched.
template <class Work>
void set_up(const Communicator& comm, Work&& work) {
  on_every_rank(comm, [&] {
    try {
      work();
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      if (!allocation_failed(e)) throw;
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));
      throw InputError("the run does not fit in this machine's memory (a size too large?): " +
                       what);
    }
  });
}

// The first line where two texts differ, for a message: "LINE" of each.
std::pair<std::string, std::string> first_difference(const std::string& a, const std::string& b) {
  std::size_t at = 0;
  while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
  auto line = [at](const std::string& text) {
    const std::size_t begin = text.rfind('\n', at == 0 ? 0 : at - 1);
    const std::size_t from = begin == std::string::npos || at == 0 ? 0 : begin + 1;
    return text.substr(from, text.find('\n', from) - from);
  };
  return {line(a), line(b)};
}

// Every rank must run the same config: ranks started with different ones (mpirun -np 1 ... :
// -np 1 ... --set init.seed=7) would write one file mixing two runs, or wait for each other in
// collectives of different sizes. Collective; before anything is allocated or written.
void check_same_config(const Config& c, const Communicator& comm) {
  if (comm.size() == 1) return;
  std::string root_config = c.resolved;
  comm.broadcast(root_config);
  on_every_rank(comm, [&] {
    if (root_config == c.resolved) return;
    const auto [here, root] = first_difference(c.resolved, root_config);
    throw InputError(fmt::format(
        "the ranks were started with different configs: rank {} has \"{}\" where rank 0 has "
        "\"{}\"; every rank must run the same config",
        comm.rank(), here, root));
  });
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
                                              const Communicator& comm, bool data_given) {
  std::map<std::string, std::string> out = p.model->scalings(c.flow.dt);
  out.insert({
      {"config", c.verbatim},
      {"config_resolved", resolved_as_run(c, p.data, data_given)},
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
  if (data_given) {
    out["data_source"] = "memory";  // given to the Python module; the data is in /data
  } else if (c.data.kind == DataKind::file) {
    out["data_file"] = std::filesystem::absolute(c.data.path).string();
    out["data_file_fnv1a64"] = file_checksum(c.data.path);
  }
  return out;
}

// The output file, created only now that every input is validated and the run's state and
// buffers are allocated, with its parameters and data written. It is a temporary beside the
// output path until the first frame is committed (H5mdWriter); `directories` are the missing
// parents of the path, created here.
std::unique_ptr<H5mdWriter> open_output(const Config& c, const RunOptions& options,
                                        const Problem& p, const Diagnostics& diagnostics,
                                        const Communicator& comm, OutputDirectories& directories,
                                        bool data_given = false) {
  // Files are touched from here on: a stop signal is handled at the next committed point (before
  // the first frame, by removing what was created) instead of ending the process at once.
  defer_stop_signals();
  std::unique_ptr<H5mdWriter> writer;
  on_every_rank(comm, [&] {
    if (comm.is_root()) directories.create(c.output.path);
    writer = std::make_unique<H5mdWriter>(c.output.path, options.overwrite, p.model->groups(),
                                          p.state.tracks_log_density(), comm);
    auto attributes = parameters(c, p, comm, data_given);
    attributes.insert(diagnostics.parameters().begin(), diagnostics.parameters().end());
    writer->write_parameters(attributes);
    writer->write_data(p.data);
  });
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

using WallClock = std::chrono::steady_clock;

double seconds_between(WallClock::time_point from, WallClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// The wall time from RunOptions::started to the summary, in consecutive parts: the set-up before
// the flow's loop (of which the problem, i.e. data, model and initial state, and the diagnostics'
// set-up, λ₀ and the kNN references among it), then the loop's steps, observing and writing
// (RunSummary), and the rest (progress lines, the loop's own work): what the other parts leave,
// so that the parts sum to `total`.
struct WallTime {
  double total = 0, setup = 0, problem = 0, diagnostics = 0;
};

// What ran and where it went: the summary, the wall time's parts and the "wrote" line.
std::string summary_lines(const Config& c, const RunOptions& options, const RunSummary& s,
                          const WallTime& w) {
  const double rest = w.total - w.setup - s.step_seconds - s.observe_seconds - s.write_seconds;
  return fmt::format(
      "mfsim: {} steps to step {} (t = {:.6g}, stopped by {}) in {:.3g} s; loss {:.6g} -> "
      "{:.6g}\n"
      "mfsim: wall time {:.4g} s = set-up {:.4g} s (data, model and initial state {:.3g} s, "
      "diagnostics incl. NTK lambda0 {:.3g} s, start and output {:.3g} s) + steps {:.4g} s "
      "({:.4g} s/step) + observing {:.4g} s + writing {:.4g} s + other {:.3g} s{}\n"
      "mfsim: wrote {} ({} snapshots, {} observation rows)",
      s.steps_run, s.step, s.time, stop_reason_name(s.reason), s.seconds, s.initial_loss, s.loss,
      w.total, w.setup, w.problem, w.diagnostics, w.setup - w.problem - w.diagnostics,
      s.step_seconds, s.seconds_per_step(), s.observe_seconds, s.write_seconds, rest,
      options.time_phases ? " (phases fenced)" : "", c.output.path, s.snapshots, s.observations);
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

// The run's steps and times must stay representable: a restart's stored step leaves room for the
// steps to come (int64), and every time the run reaches, start + dt·steps, is finite.
void check_run_range(const Config& c, index_t first_step, double start_time) {
  const RunSettings& f = c.flow;
  if (first_step < 0)
    throw InputError(
        fmt::format("init.path: {}: the frame's step is {} (negative)", c.init.path, first_step));
  constexpr index_t most = std::numeric_limits<index_t>::max();
  using ld = long double;
  // Without flow.steps, t_end decides: the steps it takes from the start time.
  const ld steps = f.steps != most
                       ? ld(f.steps)
                       : std::max<ld>(0, std::ceil((ld(f.t_end) - ld(start_time)) / ld(f.dt)));
  if (ld(first_step) + steps >= ld(most) && c.init.kind != InitKind::file)
    throw InputError(
        fmt::format("flow.t_end: {:g} takes {:.6g} steps of flow.dt = {:g}, more than "
                    "64-bit step numbers hold",
                    f.t_end, steps, f.dt));
  if (ld(first_step) + steps >= ld(most))
    throw InputError(fmt::format(
        "init.path: {}: the frame's step {} leaves no room for the run's {:.6g} steps (steps are "
        "64-bit integers)",
        c.init.path, first_step, steps));
  const ld last = ld(start_time) + ld(f.dt) * steps;
  if (!std::isfinite(double(last)) || !std::isfinite(double(ld(first_step) * ld(f.dt))))
    throw InputError(fmt::format(
        "flow.dt: {:g} times {:.6g} steps{} takes the flow time past the largest double; times "
        "must stay finite",
        f.dt, steps, first_step > 0 ? fmt::format(" from step {}", first_step) : ""));
}

// The initial state must give a finite loss: particles or a loss that overflow double precision
// at t = 0 are the initial law's or the model's doing (an init.std_ or softplus_kappa of 1e200),
// not the step's; the largest of those keys is named.
void check_start(const Config& c, const FlowRun::Start& start) {
  if (start.finite_particles && std::isfinite(start.loss)) return;
  const std::string what = start.finite_particles
                               ? std::string("the initial training loss is not finite")
                               : "the initial particles are not finite";
  if (c.init.kind == InitKind::file)
    throw InputError(fmt::format("init.path: {}: {}", c.init.path, what));
  std::vector<std::pair<std::string, double>> keys;
  if (c.model.kind() == ModelKind::resnet) {
    const ResNetSpec& r = c.model.resnet();
    keys = {{"init.std_u", r.std_u},
            {"init.std_w", r.std_w},
            {"init.std_b", r.std_b},
            {"init.std_a", r.std_a},
            {"init.std_v", r.std_v}};
    if (r.activation.kind == ActivationKind::softplus)
      keys.push_back({"model.softplus_kappa", double(r.activation.kappa)});
  } else {
    const TwoLayerSpec& m = c.model.two_layer();
    keys = {{"init.std_a", m.std_a}, {"init.std_w", m.std_w}, {"init.std_b", m.std_b}};
    if (m.activation.kind == ActivationKind::softplus)
      keys.push_back({"model.softplus_kappa", double(m.activation.kappa)});
  }
  const auto culprit = *std::max_element(
      keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  throw InputError(fmt::format("{} = {:g}: {} (t = 0); the initial state must give finite values",
                               culprit.first, culprit.second, what));
}

namespace {

// build_problem on the data `data` (the config's, or data given to a Session).
Problem build_problem_on(const Config& c, Dataset data, const Communicator& comm,
                         bool log_density) {
  Problem p;
  p.data = std::move(data);
  // The sizes of the data read (a data file's were not known before): the Gram matrix, the
  // ResNet's layer states and the rest that they size, counted before they are allocated.
  check_memory(c, &p.data);
  p.model = make_model(c.model, c.data.kind, p.data, comm);
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
    check_run_range(c, p.first_step, p.start_time);
    // A file without log-densities restarts the transport estimate from the Gaussian law.
    if (log_density && !loaded.has_log_density) {
      set_initial_log_density(p.state, groups);
      p.log_density_restarted = true;
    }
  } else {
    check_run_range(c, 0, 0.0);
    p.model->initialize(p.state, c.init.seed, c.init.antithetic);
    if (log_density) set_initial_log_density(p.state, groups);
  }
  return p;
}

}  // namespace

Problem build_problem(const Config& c, const Communicator& comm, bool log_density) {
  return build_problem_on(c, make_dataset(c.data, c.model, c.diagnostics.probe_samples), comm,
                          log_density);
}

RunSummary run_simulation(const Config& c, const RunOptions& options, const Console& console,
                          const Communicator& comm) {
  const Console root = console.on_root(comm);
  // Each stage that may fail on some ranks only (rank 0 alone writes; every rank reads its input
  // files) ends with an agreement, so that all ranks stop together with the same error.
  // Nothing on disk changes before the output is opened: every input validated, the ranks agreed,
  // the state and the run's buffers allocated. An allocation that fails up to there is bad input.
  check_same_config(c, comm);
  on_every_rank(comm, [&] {
    check_memory(c);
    if (comm.is_root()) check_output_path(c, options.overwrite);
  });
  WallTime wall;
  Problem p;
  auto mark = WallClock::now();
  set_up(comm, [&] { p = build_problem(c, comm, c.diagnostics.kl_transport); });
  wall.problem = seconds_between(mark, WallClock::now());
  // Its checks fail on every rank alike (same config); reading a restart's first frame, which may
  // not, is agreed on inside.
  std::unique_ptr<const Diagnostics> diagnostics;
  mark = WallClock::now();
  set_up(comm, [&] { diagnostics = std::make_unique<const Diagnostics>(c, p, console); });
  wall.diagnostics = seconds_between(mark, WallClock::now());
  const RunSettings settings = run_settings(c, options, p, comm);
  std::unique_ptr<FlowRun> flow;
  set_up(comm, [&] { flow = std::make_unique<FlowRun>(*p.model, p.state, settings); });
  const FlowRun::Start start = flow->start();  // collective
  on_every_rank(comm, [&] { check_start(c, start); });
  // Declared before the writer: removed (if still empty) after the writer removed its temporary.
  OutputDirectories directories;
  const std::unique_ptr<H5mdWriter> writer =
      open_output(c, options, p, *diagnostics, comm, directories);

  LossObserver loss;
  std::vector<Observer*> observers{&loss};
  for (Observer* o : diagnostics->observers()) observers.push_back(o);
  const index_t total = settings.steps == std::numeric_limits<index_t>::max() ? -1 : settings.steps;
  StderrProgress progress(total, p.start_time, settings.t_end, root);
  if (options.progress) root.note(backend_line(comm));
  wall.setup = seconds_between(options.started, WallClock::now());
  const RunSummary s =
      flow->run(observers, *writer, options.progress && comm.is_root() ? &progress : nullptr);
  directories.keep();
  if (s.reason == StopReason::signal)
    throw StopRequested(stop_signal(), "stopped by " + signal_name(stop_signal()) + " at step " +
                                           std::to_string(s.step) + "; " + writer->holds());
  wall.total = seconds_between(options.started, WallClock::now());
  root.result(summary_lines(c, options, s, wall));
  return s;
}

namespace {

// Writes nothing: the steps of Session::advance and the points of Session::evaluate.
class NoOutput final : public RunOutput {
 public:
  using RunOutput::append_particles;
  void append_particles(const ExecSpace&, index_t, double, const ParticleState&) override {}
  void append_observable(const std::string&, index_t, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {}
};

// Hands every row to the run's output and to a second sink.
class CopyingOutput final : public RunOutput {
 public:
  CopyingOutput(RunOutput& output, ObservableSink* rows) : output_(output), rows_(rows) {}
  using RunOutput::append_particles;
  void append_particles(const ExecSpace& space, index_t step, double time,
                        const ParticleState& s) override {
    output_.append_particles(space, step, time, s);
  }
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value,
                         const std::vector<std::size_t>& shape) override {
    output_.append_observable(name, step, time, value, shape);
    if (rows_) rows_->append_observable(name, step, time, value, shape);
  }
  void flush() override { output_.flush(); }

 private:
  RunOutput& output_;
  ObservableSink* rows_;
};

}  // namespace

Session::Session(const Config& config, std::optional<Dataset> data, const Console& console)
    : config_(config), data_given_(data.has_value()) {
  const Communicator& comm = self_communicator();
  // Data given in memory is counted with its own sizes (build_problem_on).
  if (!data_given_) check_memory(config_);
  const bool log_density = config_.diagnostics.kl_transport;
  set_up(comm, [&] {
    if (!data_given_) {
      problem_ = build_problem(config_, comm, log_density);
      return;
    }
    if (needs_signed_labels(config_.model.loss_kind())) {
      check_signed_labels(data->y_train, "y_train");
      check_signed_labels(data->y_test, "y_test");
    }
    // The labels must fit the loss and model.outputs as a data file's must (class labels
    // 0 … c−1 for cross-entropy, c targets a sample for the square loss).
    check_labels_fit(*data, config_.model, given_labels());
    problem_ = build_problem_on(config_, std::move(*data), comm, log_density);
  });
  set_up(comm,
         [&] { diagnostics_ = std::make_unique<const Diagnostics>(config_, problem_, console); });
  step_ = problem_.first_step;
  time_ = problem_.start_time;
  // The initial state must be finite, as run_simulation requires before it writes.
  std::unique_ptr<FlowRun> flow;
  set_up(comm, [&] {
    flow = std::make_unique<FlowRun>(*problem_.model, problem_.state,
                                     run_settings(config_, RunOptions(), problem_, comm));
  });
  check_start(config_, flow->start());
}

Session::~Session() = default;

RunSummary Session::run_part(const RunSettings& settings, const std::vector<Observer*>& observers,
                             RunOutput& output, ProgressReporter* progress) {
  std::unique_ptr<FlowRun> flow;
  set_up(self_communicator(),
         [&] { flow = std::make_unique<FlowRun>(*problem_.model, problem_.state, settings); });
  try {
    const RunSummary s = flow->run(observers, output, progress);
    step_ = s.step;
    time_ = s.time;
    return s;
  } catch (const NonFiniteError& e) {
    if (e.last_step >= 0) {  // the state is back at the last finite point
      step_ = e.last_step;
      time_ = e.last_time;
    }
    throw;
  }
}

RunSummary Session::run(const RunRequest& request) {
  const Config& c = request.config ? *request.config : config_;
  const Communicator& comm = self_communicator();
  RunOptions options;
  options.overwrite = request.overwrite;
  options.progress = false;
  if (request.write) check_output_path(c, request.overwrite);
  Problem& p = problem_;
  RunSettings settings = run_settings(c, options, p, comm);
  settings.first_step = step_;
  settings.start_time = time_;
  settings.stop_requested = request.stop_requested;
  check_run_range(c, step_, time_);
  LossObserver loss;
  std::vector<Observer*> observers{&loss};
  for (Observer* o : diagnostics_->observers()) observers.push_back(o);
  for (Observer* o : request.observers) observers.push_back(o);
  NoOutput none;
  OutputDirectories directories;
  std::unique_ptr<H5mdWriter> writer;
  if (request.write)
    writer = open_output(c, options, p, *diagnostics_, comm, directories, data_given_);
  CopyingOutput output(writer ? static_cast<RunOutput&>(*writer) : none, request.rows);
  const RunSummary s = run_part(settings, observers, output, request.progress);
  directories.keep();
  return s;
}

index_t Session::advance(index_t steps, bool (*stop_requested)()) {
  RunSettings settings = run_settings(config_, RunOptions(), problem_, self_communicator());
  settings.steps = steps;
  settings.t_end = 0;
  settings.loss_tol = 0;
  settings.observe_every = 0;
  settings.snapshot_every = 0;
  settings.first_step = step_;
  settings.start_time = time_;
  settings.stop_requested = stop_requested;
  check_run_range(config_, step_, time_);
  NoOutput none;
  return run_part(settings, {}, none, nullptr).steps_run;
}

void Session::evaluate(ObservableSink& sink) {
  RunSettings settings = run_settings(config_, RunOptions(), problem_, self_communicator());
  settings.steps = 0;
  settings.first_step = step_;
  settings.start_time = time_;
  settings.t_end = 0;
  LossObserver loss;
  NoOutput none;
  CopyingOutput rows(none, &sink);
  FlowRun flow(*problem_.model, problem_.state, settings);
  flow.run({&loss}, rows, nullptr);
}

}  // namespace mfsim

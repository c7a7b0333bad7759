// mfsim._core: the library's Session (app/simulation.hpp) bound for Python with nanobind. The
// Python package (python/mfsim/__init__.py) builds the user-facing API on these few classes;
// nothing of the simulator is reimplemented here: configs go through parse_config/load_config,
// runs through Session, the CLI's code paths.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <Kokkos_Core.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mfsim/app/simulation.hpp"
#include "mfsim/core/console.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/kernel_isa.hpp"
#include "mfsim/io/config.hpp"

namespace nb = nanobind;

namespace {

using mfsim::index_t;
using mfsim::real;

// ---- Kokkos' lifetime ---------------------------------------------------------------------------

// What holds Kokkos memory (a Session, a Dataset): released before Kokkos is finalised at exit, so
// that no View outlives it; the Python object is then an empty shell.
class KokkosHolder {
 public:
  KokkosHolder();
  virtual ~KokkosHolder();
  virtual void release() = 0;
};

std::set<KokkosHolder*>& holders() {
  static std::set<KokkosHolder*> all;
  return all;
}
bool finalized = false;

KokkosHolder::KokkosHolder() {
  holders().insert(this);
}
KokkosHolder::~KokkosHolder() {
  holders().erase(this);
}

void initialize(std::optional<int> threads) {
  if (finalized)
    throw std::runtime_error("mfsim: Kokkos was finalised (the interpreter is exiting)");
  if (Kokkos::is_initialized()) {
    if (threads && *threads != mfsim::ExecSpace().concurrency())
      throw std::runtime_error(
          "mfsim.initialize: Kokkos already runs with " +
          std::to_string(mfsim::ExecSpace().concurrency()) +
          " threads; call mfsim.initialize(num_threads=...) before creating any Data or "
          "Simulation");
    return;
  }
  if (threads && *threads < 1)
    throw nb::value_error("mfsim.initialize: num_threads must be at least 1");
#if KOKKOS_VERSION >= 40000
  Kokkos::InitializationSettings settings;
  if (threads) settings.set_num_threads(*threads);
  Kokkos::initialize(settings);
#else
  Kokkos::InitArguments settings;
  if (threads) settings.num_threads = *threads;
  Kokkos::initialize(settings);
#endif
}

void ensure_initialized() {
  initialize(std::nullopt);
}

void finalize() {
  // Copied: release() does not unregister, the holder's destructor does.
  const std::vector<KokkosHolder*> live(holders().begin(), holders().end());
  for (KokkosHolder* h : live) h->release();
  if (Kokkos::is_initialized() && !finalized) Kokkos::finalize();
  finalized = true;
}

// ---- arrays
// ---------------------------------------------------------------------------------------

using InputMatrix = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using InputVector = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

mfsim::Matrix to_device(const InputMatrix& a, const std::string& label) {
  mfsim::Matrix m(label, a.shape(0), a.shape(1));
  auto host = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < a.shape(0); ++i)
    for (std::size_t j = 0; j < a.shape(1); ++j) host(i, j) = real(a(i, j));
  Kokkos::deep_copy(m, host);
  return m;
}

mfsim::Vector to_device(const InputVector& a, const std::string& label) {
  mfsim::Vector v(label, a.shape(0));
  auto host = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < a.shape(0); ++i) host(i) = real(a(i));
  Kokkos::deep_copy(v, host);
  return v;
}

// A numpy array that owns `values` (moved in, not copied).
template <class T>
nb::ndarray<nb::numpy, T> owning_array(std::vector<T>&& values, std::vector<std::size_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(owned->data(), shape.size(), shape.data(), owner);
}

// ---- observation rows in memory ---------------------------------------------------------------

struct Series {
  std::vector<std::int64_t> steps;
  std::vector<double> times, values;
  std::vector<std::size_t> shape;
};

class MemoryRows final : public mfsim::ObservableSink {
 public:
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value,
                         const std::vector<std::size_t>& shape) override {
    Series& s = series_[name];
    s.steps.push_back(step);
    s.times.push_back(time);
    s.values.insert(s.values.end(), value.begin(), value.end());
    s.shape = shape;
    last_[name] = {step, value};
  }
  // The series as {name: (steps, times, values)}, handed over (the rows are emptied).
  nb::dict take() {
    nb::dict out;
    for (auto& [name, s] : series_) {
      std::vector<std::size_t> shape{s.steps.size()};
      shape.insert(shape.end(), s.shape.begin(), s.shape.end());
      const std::size_t rows = s.steps.size();
      out[name.c_str()] = nb::make_tuple(owning_array(std::move(s.steps), {rows}),
                                         owning_array(std::move(s.times), {rows}),
                                         owning_array(std::move(s.values), shape));
    }
    series_.clear();
    return out;
  }
  // The values appended at `step`, by name: what a callback sees of its point.
  nb::dict at(index_t step) const {
    nb::dict out;
    for (const auto& [name, row] : last_) {
      if (row.first != step) continue;
      if (row.second.size() == 1)
        out[name.c_str()] = row.second[0];
      else
        out[name.c_str()] = nb::cast(row.second);
    }
    return out;
  }

 private:
  std::map<std::string, Series> series_;
  std::map<std::string, std::pair<index_t, std::vector<double>>> last_;
};

// ---- a run's link to Python: stop requests, callbacks, progress ---------------------------------

// Polled by the run loop at every point (RunSettings::stop_requested is a plain function): the
// control of the run in progress on this thread.
class RunControl;
thread_local RunControl* current_control = nullptr;

class RunControl {
 public:
  RunControl() : previous_(current_control) { current_control = this; }
  ~RunControl() { current_control = previous_; }
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  static bool poll() { return current_control && current_control->requested(); }

  // A callback asked to stop (returned False) or raised: the run ends at this point.
  void stop() { stopped_ = true; }
  void fail(nb::python_error&& e) {
    error_.emplace(std::move(e));
    stopped_ = true;
  }
  bool stopped() const { return stopped_; }
  // The callback's exception or Ctrl-C's KeyboardInterrupt, raised once the run has ended.
  void rethrow() {
    if (error_) {
      nb::python_error e = std::move(*error_);
      error_.reset();
      throw e;
    }
  }

 private:
  // Python runs its signal handlers (Ctrl-C: KeyboardInterrupt) in the main thread when asked;
  // asked at most every 20 ms, so that a run of short steps does not take the GIL at each.
  bool requested() {
    if (stopped_) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check_ < std::chrono::milliseconds(20)) return false;
    last_check_ = now;
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) fail(nb::python_error());
    return stopped_;
  }

  RunControl* previous_;
  bool stopped_ = false;
  std::optional<nb::python_error> error_;
  std::chrono::steady_clock::time_point last_check_{};
};

// Calls a Python function every `every` steps (and at the first and last point) with the point:
// {"step", "time", "loss", "observables": {name: value}}; False ends the run there.
class CallbackObserver final : public mfsim::Observer {
 public:
  CallbackObserver(nb::callable f, index_t every, const MemoryRows& rows, RunControl& control)
      : f_(std::move(f)), every_(every), rows_(rows), control_(control) {}
  void observe(const mfsim::FlowPoint& p, mfsim::ObservableSink&) override {
    if (control_.stopped()) return;
    nb::gil_scoped_acquire gil;
    try {
      nb::dict point;
      point["step"] = p.step;
      point["time"] = p.time;
      point["loss"] = p.loss;
      point["observables"] = rows_.at(p.step);
      nb::object answer = f_(point);
      if (answer.is(nb::bool_(false))) control_.stop();
    } catch (nb::python_error& e) {
      control_.fail(std::move(e));
    }
  }
  index_t every() const override { return every_; }
  std::string name() const override { return "python_callback"; }

 private:
  nb::callable f_;
  index_t every_;
  const MemoryRows& rows_;
  RunControl& control_;
};

// Progress to a Python function (the package's tqdm bar): at most ten times a second, and at the
// end.
class CallbackProgress final : public mfsim::ProgressReporter {
 public:
  explicit CallbackProgress(nb::callable f) : f_(std::move(f)) {}
  void update(index_t done, index_t step, double time, double loss, bool final) override {
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    nb::gil_scoped_acquire gil;
    try {
      f_(done, step, time, loss, final);
    } catch (nb::python_error& e) {
      e.discard_as_unraisable("mfsim progress");
    }
  }

 private:
  nb::callable f_;
  std::chrono::steady_clock::time_point last_{};
};

// ---- the bound classes --------------------------------------------------------------------------

struct ConfigHandle {
  mfsim::Config config;
};

ConfigHandle parse(const std::string& text, const std::vector<std::string>& overrides,
                   const std::string& source) {
  ensure_initialized();  // the config holds an execution-space instance
  return {mfsim::parse_config(text, overrides, source)};
}

ConfigHandle load(const std::string& path, const std::vector<std::string>& overrides) {
  ensure_initialized();
  return {mfsim::load_config(path, overrides)};
}

class DataHandle final : public KokkosHolder {
 public:
  DataHandle(const InputMatrix& x_train, const InputVector& y_train, const InputMatrix& x_test,
             const InputVector& y_test) {
    ensure_initialized();
    mfsim::Dataset d;
    d.x_train = to_device(x_train, "mfsim::Dataset::x_train");
    d.y_train = to_device(y_train, "mfsim::Dataset::y_train");
    d.x_test = to_device(x_test, "mfsim::Dataset::x_test");
    d.y_test = to_device(y_test, "mfsim::Dataset::y_test");
    data_ = std::move(d);
  }
  void release() override { data_.reset(); }
  const mfsim::Dataset& data() const {
    if (!data_) throw std::runtime_error("mfsim: this Data was released (Kokkos finalised)");
    return *data_;
  }

 private:
  std::optional<mfsim::Dataset> data_;
};

// Where the notes of the diagnostics go (a note that a diagnostic does not apply): the Python
// side prints or warns with them.
struct Notes {
  std::ostringstream results, notes;
  mfsim::Console console{results, notes};
};

class SimulationHandle final : public KokkosHolder {
  static constexpr bool host_accessible =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, mfsim::MemSpace>::accessible;

 public:
  SimulationHandle(const ConfigHandle& config, const DataHandle* data) {
    ensure_initialized();
    std::optional<mfsim::Dataset> given;
    if (data) given = data->data();
    nb::gil_scoped_release nogil;  // the set-up runs kernels (initial particles, the start)
    session_ = std::make_unique<mfsim::Session>(config.config, std::move(given), notes_.console);
  }
  void release() override { session_.reset(); }

  mfsim::Session& session() const {
    if (!session_)
      throw std::runtime_error("mfsim: this Simulation was released (Kokkos finalised)");
    return *session_;
  }

  // The run; returns (observables, summary). Ctrl-C and a callback's exception are raised after
  // the run has ended at its point (written and committed).
  nb::tuple run(const ConfigHandle& config, bool write, bool overwrite, nb::object callback,
                index_t every, nb::object progress) {
    mfsim::Session& s = session();
    MemoryRows rows;
    RunControl control;
    std::unique_ptr<CallbackObserver> observer;
    if (!callback.is_none())
      observer = std::make_unique<CallbackObserver>(nb::cast<nb::callable>(callback), every, rows,
                                                    control);
    std::unique_ptr<CallbackProgress> reporter;
    if (!progress.is_none())
      reporter = std::make_unique<CallbackProgress>(nb::cast<nb::callable>(progress));
    mfsim::Session::RunRequest request;
    request.config = &config.config;
    request.write = write;
    request.overwrite = overwrite;
    request.rows = &rows;
    if (observer) request.observers.push_back(observer.get());
    request.progress = reporter.get();
    request.stop_requested = &RunControl::poll;
    mfsim::RunSummary summary;
    {
      nb::gil_scoped_release nogil;
      summary = s.run(request);
    }
    control.rethrow();
    nb::dict info;
    info["steps_run"] = summary.steps_run;
    info["step"] = summary.step;
    info["time"] = summary.time;
    info["loss"] = summary.loss;
    info["initial_loss"] = summary.initial_loss;
    info["seconds"] = summary.seconds;
    info["step_seconds"] = summary.step_seconds;
    info["stopped_by"] = summary.reason == mfsim::StopReason::signal
                             ? std::string(control.stopped() ? "callback" : "signal")
                             : mfsim::stop_reason_name(summary.reason);
    return nb::make_tuple(rows.take(), info);
  }

  index_t step(index_t n) {
    if (n < 0) throw nb::value_error("step: the number of steps must be at least 0");
    mfsim::Session& s = session();
    RunControl control;
    index_t taken = 0;
    {
      nb::gil_scoped_release nogil;
      taken = s.advance(n, &RunControl::poll);
    }
    control.rethrow();
    return taken;
  }

  nb::dict evaluate() {
    mfsim::Session& s = session();
    MemoryRows rows;
    {
      nb::gil_scoped_release nogil;
      s.evaluate(rows);
    }
    nb::dict out;
    for (auto [name, series] : rows.take())
      out[name] = nb::cast<nb::tuple>(series)[2].attr("item")(0);
    return out;
  }

  nb::ndarray<nb::numpy, double> predict(const InputMatrix& x) {
    mfsim::Session& s = session();
    if (int(x.shape(1)) != s.model().data().dim())
      throw nb::value_error(("predict: x has " + std::to_string(x.shape(1)) +
                             " columns, the data's dimension is " +
                             std::to_string(s.model().data().dim()))
                                .c_str());
    const mfsim::Matrix xs = to_device(x, "mfsim::predict::x");
    // c outputs a sample (model.outputs), sample i's at i·c …: an (n, c) array for c > 1.
    const std::size_t outputs = std::size_t(s.model().outputs());
    mfsim::Vector f("mfsim::predict::f", x.shape(0) * outputs);
    {
      nb::gil_scoped_release nogil;
      s.model().predict(s.state(), xs, f);
    }
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f);
    std::vector<double> out(host.data(), host.data() + host.extent(0));
    if (outputs == 1) return owning_array(std::move(out), {x.shape(0)});
    return owning_array(std::move(out), {x.shape(0), outputs});
  }

  std::vector<std::string> groups() const {
    std::vector<std::string> out;
    for (const auto& g : session().model().groups()) out.push_back(g.name);
    return out;
  }

  std::vector<std::string> columns(const std::string& name) const {
    return session().model().groups()[group_index(name)].columns;
  }

  // The group's particles for numpy: a read-only view of the state where it is host memory
  // (valid while `self`, the simulation, lives; the run moves them in place), else a host copy.
  nb::ndarray<nb::numpy, const real, nb::ndim<2>> particles(nb::handle self,
                                                            const std::string& name) const {
    const mfsim::Matrix theta = session().state().theta[group_index(name)];
    const std::size_t shape[2] = {theta.extent(0), theta.extent(1)};
    if constexpr (host_accessible) {
      return nb::ndarray<nb::numpy, const real, nb::ndim<2>>(theta.data(), 2, shape, self);
    } else {
      // Device memory (a CUDA build): a host copy, owned by the array (docs/python.md).
      auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), theta);
      std::vector<real> copy(host.data(), host.data() + host.size());
      auto* owned = new std::vector<real>(std::move(copy));
      nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<real>*>(p); });
      return nb::ndarray<nb::numpy, const real, nb::ndim<2>>(owned->data(), 2, shape, owner);
    }
  }

  // The same particles for a DLPack consumer (torch, jax, cupy, numpy.from_dlpack): always a view
  // of the state, in host memory or, in a CUDA build, in the GPU's (DLPack's device kDLCUDA), for
  // as long as `self` lives. Marked read-only where the consumer asks for a versioned capsule;
  // the unversioned capsules of older consumers cannot say so (docs/python.md).
  nb::ndarray<nb::array_api, const real, nb::ndim<2>> particles_dlpack(
      nb::handle self, const std::string& name) const {
    const mfsim::Matrix theta = session().state().theta[group_index(name)];
    const std::size_t shape[2] = {theta.extent(0), theta.extent(1)};
    int device_type = nb::device::cpu::value, device_id = 0;
    if constexpr (!host_accessible) {
#if defined(KOKKOS_ENABLE_CUDA)
      device_type = nb::device::cuda::value;
      device_id = Kokkos::Cuda().cuda_device();
#else
      throw std::runtime_error("particles_dlpack: no DLPack device for the backend " +
                               std::string(mfsim::ExecSpace::name()));
#endif
      // The consumer's stream knows nothing of Kokkos': the state's kernels end first.
      Kokkos::fence();
    }
    return nb::ndarray<nb::array_api, const real, nb::ndim<2>>(
        theta.data(), 2, shape, self, nullptr, nb::dtype<real>(), device_type, device_id);
  }

  std::string notes() {
    std::string out = notes_.notes.str();
    notes_.notes.str("");
    return out;
  }

 private:
  std::size_t group_index(const std::string& name) const {
    const auto& groups = session().model().groups();
    std::string names;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (groups[g].name == name) return g;
      names += (g ? ", " : "") + groups[g].name;
    }
    throw nb::key_error(
        ("no particle group \"" + name + "\" (the model has: " + names + ")").c_str());
  }

  Notes notes_;
  std::unique_ptr<mfsim::Session> session_;
};

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "mfsim's compiled core (use the package mfsim)";
  static nb::exception<mfsim::NonFiniteError> non_finite(m, "NonFiniteError", PyExc_RuntimeError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const mfsim::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("initialize", &initialize, nb::arg("num_threads") = nb::none());
  m.def("finalize", &finalize);
  m.def("is_initialized", [] { return Kokkos::is_initialized() && !finalized; });
  m.def("backend", [] {
    ensure_initialized();
    nb::dict out;
    out["backend"] = std::string(mfsim::ExecSpace::name());
    out["threads"] = mfsim::ExecSpace().concurrency();
    out["precision"] = std::string(mfsim::precision_name);
    out["kernel_isa"] = mfsim::kernel_instruction_set();
    out["version"] = std::string(MFSIM_VERSION);
    out["kokkos_version"] = KOKKOS_VERSION;
    return out;
  });

  nb::class_<ConfigHandle>(m, "Config")
      .def_prop_ro("resolved", [](const ConfigHandle& c) { return c.config.resolved; })
      .def_prop_ro("verbatim", [](const ConfigHandle& c) { return c.config.verbatim; })
      .def_prop_ro("source", [](const ConfigHandle& c) { return c.config.source; });
  m.def("parse_config", &parse, nb::arg("text"), nb::arg("overrides"), nb::arg("source"));
  m.def("load_config", &load, nb::arg("path"), nb::arg("overrides"));

  nb::class_<DataHandle>(m, "Data").def(
      nb::init<const InputMatrix&, const InputVector&, const InputMatrix&, const InputVector&>(),
      nb::arg("x_train"), nb::arg("y_train"), nb::arg("x_test"), nb::arg("y_test"));

  nb::class_<SimulationHandle>(m, "Simulation")
      .def(nb::init<const ConfigHandle&, const DataHandle*>(), nb::arg("config"),
           nb::arg("data").none())
      .def("run", &SimulationHandle::run, nb::arg("config"), nb::arg("write"), nb::arg("overwrite"),
           nb::arg("callback").none(), nb::arg("every"), nb::arg("progress").none())
      .def("step", &SimulationHandle::step)
      .def("evaluate", &SimulationHandle::evaluate)
      .def("predict", &SimulationHandle::predict)
      .def("groups", &SimulationHandle::groups)
      .def("columns", &SimulationHandle::columns)
      .def("particles",
           [](nb::handle self, const std::string& name) {
             return nb::cast<const SimulationHandle&>(self).particles(self, name);
           })
      .def("particles_dlpack",
           [](nb::handle self, const std::string& name) {
             return nb::cast<const SimulationHandle&>(self).particles_dlpack(self, name);
           })
      .def("notes", &SimulationHandle::notes)
      .def_prop_ro("time", [](const SimulationHandle& s) { return s.session().time(); })
      .def_prop_ro("step_index", [](const SimulationHandle& s) { return s.session().step(); });
}

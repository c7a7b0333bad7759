#include "mfsim/io/h5md_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>

#include "hdf5.hpp"
#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/gather.hpp"
#include "mfsim/core/stop_signal.hpp"
#include "mfsim/io/output_guard.hpp"

namespace mfsim {
namespace {

std::string author_name() {
  const char* user = std::getenv("USER");
  return user && *user ? user : "mfsim user";
}

// Room for HDF5's metadata (chunk indexes, object headers) beyond what a write's rows take.
constexpr std::uint64_t metadata_margin = std::uint64_t(256) << 10;

}  // namespace

// The writer itself: its file, series and commit state. H5mdWriter's members forward here.
struct H5mdWriter::Impl {
  Impl(const std::string& path, bool overwrite, const std::vector<GroupSpec>& groups,
       bool log_density, const Communicator& comm);
  ~Impl();

  struct TimeSeries {  // an H5MD time-dependent element: step, time, value
    h5::Series step, time, value;
  };
  TimeSeries make_element(hid_t parent, const std::string& name, const std::vector<hsize_t>& inner);
  void append_row(TimeSeries& e, index_t step, double time, const double* row);
  void write_data_now(const Dataset& data);
  // Runs `write` (before any frame): on failure the file is removed and the error says why.
  template <class Write>
  void before_first_frame(Write&& write);
  // Reserves `bytes` beyond HDF5's end of the file, plus room for metadata (OutputGuard).
  void reserve(std::uint64_t bytes, const std::string& context);
  void write_data(const Dataset& data);
  void write_parameters(const std::map<std::string, std::string>& attributes);
  void append_particles(const ExecSpace& space, index_t step, double time, const ParticleState& s);
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value, const std::vector<std::size_t>& shape);
  void append_observable_row(const std::string& name, index_t step, double time,
                             const std::vector<double>& value,
                             const std::vector<std::size_t>& shape);
  void flush();
  void publish();
  void raise_pending_error();  // on every rank, what failed on rank 0 since the last call
  std::string holds() const;
  template <class Write>
  void on_root(Write&& write);
  void commit();

  std::string path_;
  std::vector<GroupSpec> groups_;
  bool log_density_ = false;  // on every rank (only rank 0 has the series)
  const Communicator& comm_;
  std::unique_ptr<OutputGuard> guard_;  // rank 0: the lock and the reserved space; outlives file_
  h5::Handle file_;
  std::vector<TimeSeries> positions_, log_densities_;
  std::map<std::string, TimeSeries> observables_;
  std::exception_ptr pending_error_;  // rank 0: a failed write, raised at the next flush()
  bool failed_ = false;               // rank 0: stop writing after a failure
  index_t last_step_ = -1;            // the step of the last row given
  index_t pending_frame_step_ = -1;   // a particle frame appended since the last flush
  index_t last_frame_step_ = -1;      // the last particle frame flushed
  index_t committed_step_ = -1;       // rank 0: the step the file's marker holds
  int uncaught_at_construction_ = std::uncaught_exceptions();  // closing by an error: no commit
  std::uint64_t pending_allocation_ = 0;  // file space the rows since the last flush may take
};

H5mdWriter::H5mdWriter(const std::string& path, bool overwrite,
                       const std::vector<GroupSpec>& groups, bool log_density,
                       const Communicator& comm)
    : impl_(std::make_unique<Impl>(path, overwrite, groups, log_density, comm)) {}

// The Impl's destructor commits (or, closing by an error, does not): it runs inside this one, so
// std::uncaught_exceptions() sees the same unwinding.
H5mdWriter::~H5mdWriter() = default;

void H5mdWriter::write_data(const Dataset& data) {
  impl_->write_data(data);
}

void H5mdWriter::write_parameters(const std::map<std::string, std::string>& attributes) {
  impl_->write_parameters(attributes);
}

void H5mdWriter::append_particles(const ExecSpace& space, index_t step, double time,
                                  const ParticleState& s) {
  impl_->append_particles(space, step, time, s);
}

void H5mdWriter::append_observable(const std::string& name, index_t step, double time,
                                   const std::vector<double>& value,
                                   const std::vector<std::size_t>& shape) {
  impl_->append_observable(name, step, time, value, shape);
}

void H5mdWriter::flush() {
  impl_->flush();
}

void H5mdWriter::publish() {
  impl_->publish();
}

const std::string& H5mdWriter::path() const {
  return impl_->path_;
}

std::string H5mdWriter::holds() const {
  return impl_->holds();
}

H5mdWriter::Impl::Impl(const std::string& path, bool overwrite,
                       const std::vector<GroupSpec>& groups, bool log_density,
                       const Communicator& comm)
    : path_(path), groups_(groups), log_density_(log_density), comm_(comm) {
  if (!comm.is_root()) return;  // only rank 0 touches the file
  // A stop requested while the run was being set up: leave nothing behind.
  if (stop_signal() != 0)
    throw StopRequested(stop_signal(), "stopped by " + signal_name(stop_signal()) +
                                           " before writing " + path + " (nothing written)");
  // A temporary beside `path`, created and locked here, then handed to HDF5 (which truncates
  // it): the lock refuses a second writer, and the space of the file's skeleton is reserved
  // before HDF5 writes it. It replaces `path` at the first commit of a frame (flush()).
  guard_ = std::make_unique<OutputGuard>(path, overwrite);
  before_first_frame([&] {
    guard_->reserve(metadata_margin, "nothing written");
    file_ = h5::create_file(guard_->writing_path(), true);
    const hid_t f = file_.get();

    h5::Handle h5md = h5::create_group(f, "h5md");
    h5::write_attribute(h5md.get(), "version", std::vector<int>{1, 1});
    h5::write_attribute(h5::create_group(h5md.get(), "author").get(), "name", author_name());
    h5::Handle creator = h5::create_group(h5md.get(), "creator");
    h5::write_attribute(creator.get(), "name", std::string("mfsim"));
    h5::write_attribute(creator.get(), "version", std::string(MFSIM_VERSION));

    for (const GroupSpec& g : groups) {
      h5::Handle group = h5::create_group(f, "particles/" + g.name);
      h5::Handle box = h5::create_group(group.get(), "box");
      h5::write_attribute(box.get(), "dimension", std::vector<int>{g.dim()});
      h5::write_attribute(box.get(), "boundary",
                          std::vector<std::string>(std::size_t(g.dim()), "none"));
      h5::write_attribute(group.get(), "slices", std::vector<int>{g.slices});
      const hsize_t n = hsize_t(g.global_count), d = hsize_t(g.dim());
      positions_.push_back(make_element(group.get(), "position", {n, d}));
      h5::Handle value = h5::open_dataset(group.get(), "position/value");
      h5::write_attribute(value.get(), "columns", g.columns);
      h5::write_attribute(value.get(), "init_std", g.init_std);
      if (log_density) log_densities_.push_back(make_element(group.get(), "log_density", {n}));
    }
    h5::write_attribute(f, committed_step_attribute, (long long)-1);
    h5::flush(f);
  });
}

H5mdWriter::Impl::~Impl() {
  if (!guard_) return;
  // Closed in the normal course, the writer commits what was appended (and replaces the target
  // with it, if no flush did); closed by an error, it leaves the marker at the last flush: the
  // rows since may be a partial step. A file never published is removed with its guard.
  if (file_ && !failed_ && std::uncaught_exceptions() == uncaught_at_construction_) {
    try {
      commit();
      guard_->publish();
    } catch (const std::exception&) {
      // The rows since the last flush stay uncommitted; the file holds every earlier one.
    }
  }
  // HDF5 closes the file first; then the space reserved beyond its end is given back, and the
  // lock goes with the descriptor.
  positions_.clear();
  log_densities_.clear();
  observables_.clear();
  file_ = h5::Handle();
  guard_->release_reserve();
}

template <class Write>
void H5mdWriter::Impl::before_first_frame(Write&& write) {
  try {
    write();
  } catch (const std::exception& e) {
    const int error = errno;  // why HDF5 failed, before closing and removing change it
    // A run that fails before its first frame (a full disk) leaves the target as it was: the
    // temporary goes.
    positions_.clear();
    log_densities_.clear();
    observables_.clear();
    file_ = h5::Handle();
    // Messages name the target, not the temporary that HDF5 was writing.
    std::string what = e.what();
    const std::string temporary = guard_->writing_path() + ": ";
    if (what.rfind(temporary, 0) == 0) what = path_ + ": " + what.substr(temporary.size());
    guard_->remove();
    if (dynamic_cast<const InputError*>(&e)) throw InputError(what);
    // The guard's own messages name the file already; HDF5's say why only through errno.
    if (what.rfind(path_ + ": ", 0) == 0) throw std::runtime_error(what);
    errno = error;
    throw std::runtime_error(OutputGuard::describe_failure(path_, what) + "; nothing written");
  }
}

void H5mdWriter::Impl::reserve(std::uint64_t bytes, const std::string& context) {
  haddr_t eoa = 0;
  if (H5Fget_eoa(file_.get(), &eoa) < 0) return;
  guard_->reserve(std::uint64_t(eoa) + bytes + metadata_margin, context);
}

H5mdWriter::Impl::TimeSeries H5mdWriter::Impl::make_element(hid_t parent, const std::string& name,
                                                            const std::vector<hsize_t>& inner) {
  h5::Handle element = h5::create_group(parent, name);
  TimeSeries e;
  e.value = h5::Series(element.get(), "value", H5T_NATIVE_DOUBLE, inner);
  e.time = h5::Series(element.get(), "time", H5T_NATIVE_DOUBLE, {});
  e.step = h5::Series(element.get(), "step", H5T_NATIVE_INT64, {});
  return e;
}

// Value first and step last: a reader counts a frame only when its step is there.
// The space the row may take is reserved first: a full disk stops the run before the row, never
// in the middle of it.
void H5mdWriter::Impl::append_row(TimeSeries& e, index_t step, double time, const double* row) {
  const std::string context = last_frame_step_ < 0 ? "no frame was written"
                                                   : "the file holds every frame up to step " +
                                                         std::to_string(last_frame_step_);
  // HDF5 allocates a row's chunk when it writes the chunk out (at the flush, or when the chunk
  // cache evicts it), not when the row is appended: the reservation covers every row appended
  // since the last flush, each the chunks it starts (none where its chunk is already on disk).
  pending_allocation_ +=
      e.value.next_row_allocation() + e.time.next_row_allocation() + e.step.next_row_allocation();
  reserve(pending_allocation_, context);
  const long long s = step;
  try {
    e.value.append(row);
    e.time.append(&time);
    e.step.append(&s);
  } catch (const std::exception& error) {
    throw std::runtime_error(OutputGuard::describe_failure(path_, error.what()) + "; " + context);
  }
}

void H5mdWriter::Impl::write_data(const Dataset& data) {
  if (!comm_.is_root()) return;
  before_first_frame([&] { write_data_now(data); });
}

void H5mdWriter::Impl::write_data_now(const Dataset& data) {
  const hid_t f = file_.get();
  reserve(std::uint64_t(data.x_train.size() + data.y_train.size() + data.x_test.size() +
                        data.y_test.size() + data.teacher.size() + data.probe.size()) *
              sizeof(double),
          "nothing written");
  auto write_split = [&](const std::string& name, ConstMatrix x, ConstVector y) {
    h5::Handle group = h5::create_group(f, "data/" + name);
    h5::write_dataset(group.get(), "x", to_host_doubles(x).data(),
                      {hsize_t(x.extent(0)), hsize_t(x.extent(1))});
    // Vector targets (one-hot rows) as an n × targets matrix.
    const hsize_t n = hsize_t(x.extent(0)), targets = hsize_t(data.targets);
    if (data.targets == 1)
      h5::write_dataset(group.get(), "y", to_host_doubles(y).data(), {hsize_t(y.extent(0))});
    else
      h5::write_dataset(group.get(), "y", to_host_doubles(y).data(), {n, targets});
  };
  write_split("train", data.x_train, data.y_train);
  write_split("test", data.x_test, data.y_test);
  if (data.teacher.extent(0) > 0) {
    // The population flow's teacher, so that its risk can be recomputed from the file.
    const std::vector<double> rows = to_host_doubles(ConstMatrix(data.teacher));
    const std::size_t k = data.teacher.extent(0), cols = data.teacher.extent(1), d = cols - 1;
    std::vector<double> w(k * d), a(k);
    for (std::size_t j = 0; j < k; ++j) {
      for (std::size_t c = 0; c < d; ++c) w[j * d + c] = rows[j * cols + c];
      a[j] = rows[j * cols + d];
    }
    h5::Handle group = h5::create_group(f, "data/teacher");
    h5::write_dataset(group.get(), "w", w.data(), {hsize_t(k), hsize_t(d)});
    h5::write_dataset(group.get(), "a", a.data(), {hsize_t(k)});
    h5::write_attribute(group.get(), "output_scale", data.teacher_scale);
    // σ*, its Hermite coefficients when it is a polynomial, and the inputs' covariance diagonal
    // (all ones for N(0, I_d)): with w and a, everything the population risk depends on.
    h5::write_attribute(group.get(), "activation", activation_name(data.teacher_activation.kind));
    if (is_polynomial(data.teacher_activation.kind))
      h5::write_attribute(group.get(), "hermite_coefficients",
                          hermite_coefficients(data.teacher_activation));
    std::vector<double> variance = data.covariance_diagonal;
    if (variance.empty()) variance.assign(d, 1.0);
    h5::write_attribute(group.get(), "covariance_diagonal", variance);
  }
  if (data.probe.extent(0) > 0) {
    // The population flow's probe set, on which the Gram diagnostics were evaluated.
    h5::Handle group = h5::create_group(f, "data/probe");
    h5::write_dataset(group.get(), "x", to_host_doubles(ConstMatrix(data.probe)).data(),
                      {hsize_t(data.probe.extent(0)), hsize_t(data.probe.extent(1))});
  }
  if (data.classes > 0)
    h5::write_attribute(h5::open_group(f, "data").get(), "classes", (long long)data.classes);
  h5::flush(f);
}

namespace {
// A value that is a plain decimal number (digits, sign, point, exponent; finite) is stored as a
// numeric attribute, so that raw h5py users get numbers; any other text (the TOML config,
// "0.1.0", "inf") stays a string.
void write_parameter(hid_t group, const std::string& name, const std::string& value) {
  const bool plain =
      !value.empty() && value.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (plain) {
    const char* begin = value.c_str();
    char* end = nullptr;
    errno = 0;
    const long long integer = std::strtoll(begin, &end, 10);
    if (errno == 0 && *end == '\0') return h5::write_attribute(group, name, integer);
    errno = 0;
    const double number = std::strtod(begin, &end);
    if (errno == 0 && *end == '\0' && std::isfinite(number))
      return h5::write_attribute(group, name, number);
  }
  h5::write_attribute(group, name, value);
}
}  // namespace

void H5mdWriter::Impl::write_parameters(const std::map<std::string, std::string>& attributes) {
  if (!comm_.is_root()) return;
  before_first_frame([&] {
    std::uint64_t bytes = 0;
    for (const auto& [name, value] : attributes) bytes += name.size() + value.size() + 256;
    reserve(bytes, "nothing written");
    h5::Handle group = h5::create_group(file_.get(), "parameters");
    for (const auto& [name, value] : attributes) write_parameter(group.get(), name, value);
    h5::flush(file_.get());
  });
}

void H5mdWriter::Impl::append_particles(const ExecSpace& space, index_t step, double time,
                                        const ParticleState& s) {
  last_step_ = step;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const GroupSpec& spec = groups_[g];
    // Every rank's rows in global order on rank 0 (each rank holds part of every slice).
    const auto position = gather_slices(comm_, to_host_doubles(space, s.theta[g]), spec.dim(),
                                        spec.global_count, spec.slices);
    on_root([&] { append_row(positions_[g], step, time, position.data()); });
    if (log_density_) {
      const auto log_density = gather_slices(comm_, to_host_doubles(space, s.log_density[g]), 1,
                                             spec.global_count, spec.slices);
      on_root([&] { append_row(log_densities_[g], step, time, log_density.data()); });
    }
  }
  if (!failed_) pending_frame_step_ = step;
}

void H5mdWriter::Impl::append_observable(const std::string& name, index_t step, double time,
                                         const std::vector<double>& value,
                                         const std::vector<std::size_t>& shape) {
  last_step_ = step;
  on_root([&] { append_observable_row(name, step, time, value, shape); });
}

void H5mdWriter::Impl::append_observable_row(const std::string& name, index_t step, double time,
                                             const std::vector<double>& value,
                                             const std::vector<std::size_t>& shape) {
  auto it = observables_.find(name);
  if (it == observables_.end()) {
    h5::Handle group = h5::create_group(file_.get(), "observables");
    it = observables_
             .emplace(name, make_element(group.get(), name,
                                         std::vector<hsize_t>(shape.begin(), shape.end())))
             .first;
  }
  append_row(it->second, step, time, value.data());
}

void H5mdWriter::Impl::flush() {
  on_root([&] {
    try {
      commit();
    } catch (const std::exception& e) {
      throw std::runtime_error(OutputGuard::describe_failure(path_, e.what()) +
                               (last_frame_step_ < 0 ? std::string("; no frame was written")
                                                     : "; the file holds every frame up to step " +
                                                           std::to_string(last_frame_step_)));
    }
    pending_allocation_ = 0;
    if (pending_frame_step_ >= 0) last_frame_step_ = pending_frame_step_;
    pending_frame_step_ = -1;
    // The first committed frame: the file replaces the target (an InputError if another run
    // took the target meanwhile).
    if (last_frame_step_ >= 0) guard_->publish();
  });
  // Every rank calls flush at the same step: a write that failed on rank 0 ends all of them here.
  raise_pending_error();
}

void H5mdWriter::Impl::publish() {
  flush();  // which publishes once a frame is committed
  on_root([&] { guard_->publish(); });
  raise_pending_error();
}

void H5mdWriter::Impl::raise_pending_error() {
  std::exception_ptr error = pending_error_;
  pending_error_ = nullptr;
  raise_if_any_failed(comm_, error);
}

std::string H5mdWriter::Impl::holds() const {
  return last_frame_step_ < 0
             ? path_ + " holds no frame"
             : path_ + " holds every frame up to step " + std::to_string(last_frame_step_);
}

// Two flushes: the rows first, then the step up to which they are complete. A kill at any point
// leaves a marker that no row on disk contradicts: every row at or before it was on disk before
// the marker changed (H5Fflush writes in no particular order, so one flush would not do).
void H5mdWriter::Impl::commit() {
  h5::flush(file_.get());
  if (last_step_ <= committed_step_) return;
  h5::overwrite_attribute(file_.get(), committed_step_attribute, (long long)last_step_);
  h5::flush(file_.get());
  committed_step_ = last_step_;
}

template <class Write>
void H5mdWriter::Impl::on_root(Write&& write) {
  if (!comm_.is_root() || failed_) return;
  if (comm_.size() == 1) return write();  // one process: fail at once
  // With several ranks, keep the error until flush(): the others are still between two
  // collectives and would wait for rank 0 forever.
  try {
    write();
  } catch (...) {
    pending_error_ = std::current_exception();
    failed_ = true;
  }
}

}  // namespace mfsim

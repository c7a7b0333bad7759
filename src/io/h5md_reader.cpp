#include "mfsim/io/h5md_reader.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "checked_read.hpp"
#include "hdf5.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/io/h5md_layout.hpp"

namespace mfsim {
namespace {

// Complete rows of an H5MD time-dependent element: a row counts once step, time and value have it
// and, in a file that has a commit marker, its step is at or before the marker. Each must be a
// numeric dataset with the rows along its first dimension (step and time [T], value `value_rank`
// dimensions in all).
index_t complete_rows(hid_t file, const std::string& path, const std::string& element,
                      std::optional<long long> committed_step,
                      std::size_t value_rank = checked::any_rank) {
  hsize_t rows = hsize_t(-1), step_rows = 0;
  for (const char* name : {"step", "time", "value"}) {
    std::vector<hsize_t> dims;
    const bool is_value = std::string(name) == "value";
    checked::open_numeric(file, path, "/" + element + "/" + name, is_value ? value_rank : 1, dims);
    rows = std::min(rows, dims[0]);
    if (std::string(name) == "step") step_rows = dims[0];
  }
  if (!committed_step || rows == 0) return index_t(rows);
  // The committed rows are the leading rows whose steps increase up to the marker; after them
  // the rows of a run killed mid-write may hold anything (a step still the fill value, 0).
  const std::string step_path = "/" + element + "/step";
  checked::require_allocatable((long double)step_rows, path, step_path);  // all of it is read
  h5::Handle steps = h5::open_dataset(file, step_path);
  const auto step = checked::read(path, step_path, [&] { return h5::read_int64s(steps.get()); });
  const std::size_t end = std::min<std::size_t>(rows, step.size());
  std::size_t committed = 0;
  while (committed < end && step[committed] <= *committed_step &&
         (committed == 0 || step[committed] > step[committed - 1]))
    ++committed;
  return index_t(committed);
}

std::vector<std::string> child_names(hid_t group) {
  std::vector<std::string> names;
  H5Literate(
      group, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->push_back(name);
        return 0;
      },
      &names);
  return names;
}

Matrix to_device(const std::vector<double>& values, hsize_t rows, hsize_t cols,
                 const std::string& label) {
  auto host = Kokkos::View<real**, Kokkos::LayoutRight, Kokkos::HostSpace>(label, rows, cols);
  for (hsize_t i = 0; i < rows * cols; ++i) host.data()[i] = real(values[i]);
  Matrix m(label, rows, cols);
  Kokkos::deep_copy(m, host);
  return m;
}

Vector to_device(const std::vector<double>& values, const std::string& label) {
  auto host = Kokkos::View<real*, Kokkos::HostSpace>(label, values.size());
  for (std::size_t i = 0; i < values.size(); ++i) host(i) = real(values[i]);
  Vector v(label, values.size());
  Kokkos::deep_copy(v, host);
  return v;
}

// A frame's position datasets ([T][N][D] value, [T] step and time), opened with their shapes and
// types checked before anything is read: a mismatched dataset is never read past its end.
struct PositionDatasets {
  std::string base;  // "/particles/GROUP/position"
  h5::Handle value, steps, times;
  std::vector<hsize_t> dims;  // of value
};

PositionDatasets open_positions(hid_t file, const std::string& path, const std::string& group) {
  PositionDatasets p;
  p.base = "/particles/" + group + "/position";
  std::vector<hsize_t> step_dims, time_dims;
  p.value = checked::open_numeric(file, path, p.base + "/value", 3, p.dims);
  p.steps = checked::open_numeric(file, path, p.base + "/step", 1, step_dims);
  p.times = checked::open_numeric(file, path, p.base + "/time", 1, time_dims);
  if (p.dims[1] == 0 || p.dims[2] == 0)
    throw InputError(checked::where(path, p.base + "/value") + ": holds no particles (shape [" +
                     std::to_string(p.dims[0]) + "][" + std::to_string(p.dims[1]) + "][" +
                     std::to_string(p.dims[2]) + "])");
  checked::require_allocatable((long double)p.dims[1] * p.dims[2], path, p.base + "/value");
  checked::require_allocatable((long double)step_dims[0], path, p.base + "/step");
  return p;
}

// The step and the (finite) time of frame `index`.
void read_step_and_time(const PositionDatasets& p, const std::string& path, index_t index,
                        ParticleFrame& out) {
  out.step = checked::read(path, p.base + "/step",
                           [&] { return h5::read_int64s(p.steps.get()); })[std::size_t(index)];
  out.time = checked::read(path, p.base + "/time",
                           [&] { return h5::read_doubles(p.times.get(), hsize_t(index), 1); })[0];
  if (!std::isfinite(out.time))
    throw InputError(fmt::format("{}: frame {} has time {} (must be finite)",
                                 checked::where(path, p.base + "/time"), index, out.time));
}

// The particles a caller reads of a frame of N: [first, first + rows) in each of `blocks` blocks
// `stride` apart (a rank's part of every slice, GroupSpec).
struct Shard {
  index_t first = 0;
  index_t rows = 0;
  index_t blocks = 1;
  index_t stride = 0;
};

// `first` is clamped to N and `rows_wanted` < 0 means up to the end. Several blocks that do not
// fit the frame (a group of another size) select no row: the caller compares `particles` with
// what it expects and names the mismatch.
Shard select_shard(index_t particles, index_t first, index_t rows_wanted, index_t blocks,
                   index_t stride) {
  Shard shard;
  shard.first = std::min(first, particles);
  shard.rows =
      rows_wanted < 0 ? particles - shard.first : std::min(rows_wanted, particles - shard.first);
  const bool fits = blocks <= 1 || (rows_wanted >= 0 && rows_wanted <= stride &&
                                    first + (blocks - 1) * stride + rows_wanted <= particles);
  if (!fits) shard.rows = 0;
  shard.blocks = std::max<index_t>(blocks, 1);
  shard.stride = stride;
  return shard;
}

// The shard's rows of frame row `frame_row` of a [T][N](...) dataset, block by block.
std::vector<double> read_shard(hid_t dataset, hsize_t frame_row, const Shard& shard) {
  return h5::read_doubles_strided(dataset, frame_row, 1, hsize_t(shard.first), hsize_t(shard.rows),
                                  hsize_t(shard.blocks), hsize_t(shard.stride));
}

// The value's `columns` attribute (the names of a particle's coordinates), empty without one.
std::vector<std::string> read_columns(const PositionDatasets& p, const std::string& path) {
  if (!h5::has_attribute(p.value.get(), "columns")) return {};
  h5::Handle attr(H5Aopen(p.value.get(), "columns", H5P_DEFAULT));
  h5::Handle type(attr ? H5Aget_type(attr.get()) : -1);
  if (!type || H5Tget_class(type.get()) != H5T_STRING)
    throw InputError(checked::where(path, p.base + "/value") +
                     ": attribute columns does not hold strings");
  return checked::read(path, p.base + "/value attribute columns",
                       [&] { return h5::read_string_array_attribute(p.value.get(), "columns"); });
}

// The shard of the log-density frame with the step of `out`, into `out` if the file tracks the
// log-density of `group` and that frame was written. [T][N] with the position's N: a log-density
// of another shape is refused, not read past.
void read_log_density(hid_t file, const std::string& path, std::optional<long long> committed_step,
                      const std::string& group, const PositionDatasets& positions,
                      const Shard& shard, ParticleFrame& out) {
  const std::string log_path = "particles/" + group + "/log_density";
  if (!h5::exists(file, log_path + "/value")) return;
  const std::string log_base = "/" + log_path;
  const index_t rows = complete_rows(file, path, log_path, committed_step, 2);
  std::vector<hsize_t> log_dims, log_step_dims;
  h5::Handle log_value = checked::open_numeric(file, path, log_base + "/value", 2, log_dims);
  h5::Handle log_steps = checked::open_numeric(file, path, log_base + "/step", 1, log_step_dims);
  if (log_dims[1] != positions.dims[1])
    throw InputError(fmt::format("{}: has shape [{}][{}], expected [T][{}] (the particles of {})",
                                 checked::where(path, log_base + "/value"), log_dims[0],
                                 log_dims[1], positions.dims[1], positions.base + "/value"));
  checked::require_allocatable((long double)log_step_dims[0], path, log_base + "/step");
  const auto steps_logp =
      checked::read(path, log_base + "/step", [&] { return h5::read_int64s(log_steps.get()); });
  for (index_t j = 0; j < rows; ++j) {
    if (steps_logp[std::size_t(j)] != out.step) continue;
    const auto logp = checked::read(path, log_base + "/value",
                                    [&] { return read_shard(log_value.get(), hsize_t(j), shard); });
    checked::require_finite(logp, path, log_base + "/value");
    out.log_density = HostVector("mfsim::H5mdReader::log_density", logp.size());
    out.has_log_density = true;
    std::copy(logp.begin(), logp.end(), out.log_density.data());
    return;
  }
}

// Whether another process holds the lock that a writer takes on its output (OutputGuard): the
// file is being written. Probed with a shared lock, released at once.
bool being_written(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the probe's lock, if it got one
  return locked;
}

}  // namespace

// A reader of a file that a run is writing can open it between two parts of a frame's flush and
// find the metadata half updated (HDF5 without SWMR): the read fails. While another process holds
// the writer's lock, such a read is retried on the file opened afresh, a bounded number of times
// with a growing pause; every frame is committed whole, so a later attempt sees a consistent
// file. A file nobody writes fails at once.
struct H5mdReader::Impl {
  std::string path;
  h5::Handle file;
  std::optional<long long> committed_step;  // the file's commit marker, if it has one
  bool in_read = false;                     // a read under way: nested reads are not retried

  static constexpr int max_attempts = 20;

  void open() {
    file = h5::open_file(path);
    const hid_t f = file.get();
    // A data file is any HDF5 file with /data/train/{x,y} (made by hand or by h5py): the /h5md
    // group that mfsim writes is not required of it (docs/data.md).
    if (!h5::exists(f, "h5md") && !(h5::exists(f, "data/train/x") && h5::exists(f, "data/train/y")))
      throw InputError(path +
                       ": not an H5MD file (no /h5md group) and not a data file (no "
                       "/data/train/x and /data/train/y)");
    committed_step.reset();
    if (h5::has_attribute(f, committed_step_attribute)) {
      try {
        committed_step = h5::read_int64_attribute(f, committed_step_attribute);
      } catch (const std::exception& e) {
        throw InputError(path + ": unreadable /" + committed_step_attribute + " (" + e.what() +
                         ")");
      }
    }
  }

  // The error of a failed read as the user sees it: naming the file, and how often it was tried.
  InputError named(const std::exception& e, int attempts) const {
    std::string message = e.what();
    if (message.rfind(path + ":", 0) != 0) message = path + ": " + message;
    if (attempts > 1)
      message += fmt::format(" (read {} times while another process writes the file)", attempts);
    return InputError(message);
  }

  template <class Read>
  auto retried(Read&& read) -> decltype(read()) {
    if (in_read) return read();
    in_read = true;
    struct Done {
      bool& flag;
      ~Done() { flag = false; }
    } done{in_read};
    for (int attempt = 1;; ++attempt) {
      try {
        if (!file) open();
        return read();
      } catch (const InputError& e) {
        if (attempt == max_attempts || !being_written(path)) throw named(e, attempt);
      } catch (const std::runtime_error& e) {  // from the HDF5 layer ("HDF5: ..."), or another
        if (std::string(e.what()).rfind("HDF5: ", 0) != 0) throw;
        if (attempt == max_attempts || !being_written(path)) throw named(e, attempt);
      }
      file = h5::Handle();  // closed: the next attempt reads the file's metadata afresh
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10 * attempt, 100)));
    }
  }
};

H5mdReader::H5mdReader(const std::string& path) : path_(path), impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->retried([&] { return 0; });  // opens the file
}

H5mdReader::~H5mdReader() = default;
H5mdReader::H5mdReader(H5mdReader&& other) noexcept = default;
H5mdReader& H5mdReader::operator=(H5mdReader&& other) noexcept = default;

std::vector<std::string> H5mdReader::particle_groups() const {
  return impl_->retried([&]() -> std::vector<std::string> {
    if (!h5::exists(impl_->file.get(), "particles")) return {};
    return child_names(h5::open_group(impl_->file.get(), "particles").get());
  });
}

bool H5mdReader::has_particles(const std::string& group) const {
  return impl_->retried(
      [&] { return h5::exists(impl_->file.get(), "particles/" + group + "/position/value"); });
}

index_t H5mdReader::frames(const std::string& group) const {
  return impl_->retried([&]() -> index_t {
    if (!has_particles(group)) return 0;
    return complete_rows(impl_->file.get(), path_, "particles/" + group + "/position",
                         impl_->committed_step, 3);
  });
}

ParticleFrame H5mdReader::read_frame(const std::string& group, index_t frame, index_t first,
                                     index_t rows_wanted, index_t blocks, index_t stride) const {
  return impl_->retried([&] {
    if (!has_particles(group)) throw InputError(path_ + ": no particle group /particles/" + group);
    const index_t count = frames(group);
    const index_t index = frame < 0 ? count + frame : frame;
    if (index < 0 || index >= count)
      throw InputError(path_ + ": frame " + std::to_string(frame) + " out of range (the file has " +
                       std::to_string(count) + " frames of /particles/" + group + ")");
    const PositionDatasets positions = open_positions(impl_->file.get(), path_, group);

    ParticleFrame out;
    out.index = index;
    read_step_and_time(positions, path_, index, out);
    out.particles = index_t(positions.dims[1]);
    const Shard shard = select_shard(out.particles, first, rows_wanted, blocks, stride);
    out.first = shard.first;
    const auto values = checked::read(path_, positions.base + "/value", [&] {
      return read_shard(positions.value.get(), hsize_t(index), shard);
    });
    checked::require_finite(values, path_, positions.base + "/value");
    out.value =
        HostMatrix("mfsim::H5mdReader::frame", shard.rows * shard.blocks, positions.dims[2]);
    std::copy(values.begin(), values.end(), out.value.data());
    out.columns = read_columns(positions, path_);
    read_log_density(impl_->file.get(), path_, impl_->committed_step, group, positions, shard, out);
    return out;
  });
}

bool H5mdReader::has_data() const {
  return impl_->retried([&] {
    return h5::exists(impl_->file.get(), "data/train/x") &&
           h5::exists(impl_->file.get(), "data/train/y");
  });
}

Dataset H5mdReader::read_data() const {
  return impl_->retried([&] {
    if (!has_data()) throw InputError(path_ + ": no /data/train/{x,y} in the file");
    Dataset d;
    auto read_split = [&](const std::string& name, Matrix& x, Vector& y, int dim) {
      const std::string base = "/data/" + name;
      if (!h5::exists(impl_->file.get(), base + "/x") &&
          !h5::exists(impl_->file.get(), base + "/y")) {
        x = Matrix("mfsim::Dataset::x_" + name, 0, dim);
        y = Vector("mfsim::Dataset::y_" + name, 0);
        return;
      }
      std::vector<hsize_t> xdims, ydims;
      h5::Handle xs = checked::open_numeric(impl_->file.get(), path_, base + "/x", 2, xdims);
      h5::Handle ys =
          checked::open_numeric(impl_->file.get(), path_, base + "/y", checked::any_rank, ydims);
      // One label a sample, or a row of targets (one-hot): n or n × targets.
      if (ydims.empty() || ydims.size() > 2 || (ydims.size() == 2 && ydims[1] < 2))
        throw InputError(checked::where(path_, base + "/y") +
                         ": expected n labels or an n × targets matrix (targets >= 2)");
      const int targets = ydims.size() == 2 ? int(std::min<hsize_t>(ydims[1], 1 << 20)) : 1;
      if (name == "train")
        d.targets = targets;
      else if (targets != d.targets)
        throw InputError(fmt::format("{}: has {} targets a sample, the training set {}",
                                     checked::where(path_, base + "/y"), targets, d.targets));
      if (xdims[0] != ydims[0])
        throw InputError(fmt::format("{}: has {} rows but {} has {}",
                                     checked::where(path_, base + "/x"), xdims[0], base + "/y",
                                     ydims[0]));
      if (xdims[1] == 0) throw InputError(checked::where(path_, base + "/x") + ": has dimension 0");
      // No training samples: nothing to fit (and a loss of 0/0).
      if (name == "train" && xdims[0] == 0)
        throw InputError(checked::where(path_, base + "/x") + ": has 0 rows (no training samples)");
      if (dim >= 0 && int(xdims[1]) != dim)
        throw InputError(path_ + ": " + base + "/x has dimension " + std::to_string(xdims[1]) +
                         ", the training inputs " + std::to_string(dim));
      checked::require_allocatable((long double)xdims[0] * xdims[1], path_, base + "/x");
      const auto xv = checked::read(path_, base + "/x", [&] { return h5::read_doubles(xs.get()); });
      checked::require_allocatable((long double)ydims[0] * targets, path_, base + "/y");
      const auto yv = checked::read(path_, base + "/y", [&] { return h5::read_doubles(ys.get()); });
      checked::require_finite(xv, path_, base + "/x");
      checked::require_finite(yv, path_, base + "/y");
      x = to_device(xv, xdims[0], xdims[1], "mfsim::Dataset::x_" + name);
      y = to_device(yv, "mfsim::Dataset::y_" + name);
    };
    read_split("train", d.x_train, d.y_train, -1);
    read_split("test", d.x_test, d.y_test, d.dim());
    const h5::Handle group = h5::open_group(impl_->file.get(), "data");
    if (h5::has_attribute(group.get(), "classes")) {
      const long long classes = h5::read_int64_attribute(group.get(), "classes");
      if (classes < 2 || classes > (1 << 20))
        throw InputError(fmt::format("{}: {} classes, expected 2 ... {}",
                                     checked::where(path_, "/data attribute classes"), classes,
                                     1 << 20));
      d.classes = int(classes);
    }
    return d;
  });
}

std::vector<std::string> H5mdReader::observables() const {
  return impl_->retried([&]() -> std::vector<std::string> {
    if (!h5::exists(impl_->file.get(), "observables")) return {};
    return child_names(h5::open_group(impl_->file.get(), "observables").get());
  });
}

ObservableSeries H5mdReader::read_observable(const std::string& name) const {
  return impl_->retried([&] {
    const hid_t file = impl_->file.get();
    const std::string element = "observables/" + name, base = "/" + element;
    if (!h5::exists(file, element)) throw InputError(checked::where(path_, base) + ": missing");
    const index_t rows = complete_rows(file, path_, element, impl_->committed_step);
    std::vector<hsize_t> dims, time_dims, step_dims;
    h5::Handle value = checked::open_numeric(file, path_, base + "/value", checked::any_rank, dims);
    h5::Handle time = checked::open_numeric(file, path_, base + "/time", 1, time_dims);
    h5::Handle step = checked::open_numeric(file, path_, base + "/step", 1, step_dims);
    ObservableSeries out;
    long double row_values = 1;
    for (std::size_t i = 1; i < dims.size(); ++i) {
      out.shape.push_back(std::size_t(dims[i]));
      row_values *= (long double)dims[i];
    }
    checked::require_allocatable(row_values * (long double)rows, path_, base + "/value");
    checked::require_allocatable((long double)step_dims[0], path_, base + "/step");
    out.value = checked::read(path_, base + "/value",
                              [&] { return h5::read_doubles(value.get(), 0, hsize_t(rows)); });
    out.time = checked::read(path_, base + "/time",
                             [&] { return h5::read_doubles(time.get(), 0, hsize_t(rows)); });
    out.step = checked::read(path_, base + "/step", [&] { return h5::read_int64s(step.get()); });
    out.step.resize(std::size_t(rows));
    return out;
  });
}

bool H5mdReader::has_parameter(const std::string& name) const {
  return impl_->retried([&] {
    return h5::exists(impl_->file.get(), "parameters") &&
           h5::has_attribute(h5::open_group(impl_->file.get(), "parameters").get(), name);
  });
}

std::string H5mdReader::parameter(const std::string& name) const {
  return impl_->retried([&] {
    if (!has_parameter(name)) throw InputError(path_ + ": no parameter " + name);
    h5::Handle group = h5::open_group(impl_->file.get(), "parameters");
    // Numbers are numeric attributes (H5mdWriter::write_parameters): back to the text they came
    // from (fmt's shortest round-trip form, as the writer's callers format them).
    const std::string where = checked::where(path_, "/parameters attribute " + name);
    h5::Handle attr(H5Aopen(group.get(), name.c_str(), H5P_DEFAULT));
    h5::Handle type(attr ? H5Aget_type(attr.get()) : -1);
    h5::Handle space(attr ? H5Aget_space(attr.get()) : -1);
    if (!type || !space) throw InputError(where + ": cannot be read (damaged file?)");
    const H5T_class_t kind = H5Tget_class(type.get());
    // A number is one value: a read of more into it would write past it.
    if ((kind == H5T_INTEGER || kind == H5T_FLOAT) &&
        H5Sget_simple_extent_npoints(space.get()) != 1)
      throw InputError(where + ": holds several numbers, expected one");
    if (kind != H5T_INTEGER && kind != H5T_FLOAT && kind != H5T_STRING)
      throw InputError(where + ": holds neither a number nor text");
    if (kind == H5T_INTEGER) {
      long long value = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_LLONG, &value) < 0)
        throw InputError(where + ": cannot be read (damaged file?)");
      return fmt::format("{}", value);
    }
    if (kind == H5T_FLOAT) {
      double value = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
        throw InputError(where + ": cannot be read (damaged file?)");
      return fmt::format("{}", value);
    }
    return checked::read(path_, "/parameters attribute " + name,
                         [&] { return h5::read_string_attribute(group.get(), name); });
  });
}

}  // namespace mfsim

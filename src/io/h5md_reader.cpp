#include "mfsim/io/h5md_reader.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "checked_read.hpp"
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
  hsize_t rows = hsize_t(-1);
  for (const char* name : {"step", "time", "value"}) {
    std::vector<hsize_t> dims;
    const bool is_value = std::string(name) == "value";
    checked::open_numeric(file, path, "/" + element + "/" + name, is_value ? value_rank : 1, dims);
    rows = std::min(rows, dims[0]);
  }
  if (!committed_step || rows == 0) return index_t(rows);
  // The committed rows are the leading rows whose steps increase up to the marker; after them
  // the rows of a run killed mid-write may hold anything (a step still the fill value, 0).
  const std::string step_path = "/" + element + "/step";
  checked::require_allocatable((long double)rows, path, step_path);
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

}  // namespace

H5mdReader::H5mdReader(const std::string& path) : path_(path) {
  file_ = h5::open_file(path);
  if (!h5::exists(file_.get(), "h5md"))
    throw InputError(path + ": not an H5MD file (no /h5md group)");
  if (h5::has_attribute(file_.get(), committed_step_attribute)) {
    try {
      committed_step_ = h5::read_int64_attribute(file_.get(), committed_step_attribute);
    } catch (const std::exception& e) {
      throw InputError(path + ": unreadable /" + committed_step_attribute + " (" + e.what() + ")");
    }
  }
}

std::vector<std::string> H5mdReader::particle_groups() const {
  if (!h5::exists(file_.get(), "particles")) return {};
  return child_names(h5::open_group(file_.get(), "particles").get());
}

bool H5mdReader::has_particles(const std::string& group) const {
  return h5::exists(file_.get(), "particles/" + group + "/position/value");
}

index_t H5mdReader::frames(const std::string& group) const {
  if (!has_particles(group)) return 0;
  return complete_rows(file_.get(), path_, "particles/" + group + "/position", committed_step_, 3);
}

ParticleFrame H5mdReader::read_frame(const std::string& group, index_t frame, index_t first,
                                     index_t rows_wanted, index_t blocks, index_t stride) const {
  if (!has_particles(group)) throw InputError(path_ + ": no particle group /particles/" + group);
  const index_t count = frames(group);
  const index_t index = frame < 0 ? count + frame : frame;
  if (index < 0 || index >= count)
    throw InputError(path_ + ": frame " + std::to_string(frame) + " out of range (the file has " +
                     std::to_string(count) + " frames of /particles/" + group + ")");
  // Shapes and types are checked before anything is read: a mismatched dataset is never read
  // past its end.
  const std::string base = "/particles/" + group + "/position";
  std::vector<hsize_t> dims, step_dims, time_dims;
  h5::Handle value = checked::open_numeric(file_.get(), path_, base + "/value", 3, dims);
  h5::Handle steps = checked::open_numeric(file_.get(), path_, base + "/step", 1, step_dims);
  h5::Handle times = checked::open_numeric(file_.get(), path_, base + "/time", 1, time_dims);
  if (dims[1] == 0 || dims[2] == 0)
    throw InputError(checked::where(path_, base + "/value") + ": holds no particles (shape [" +
                     std::to_string(dims[0]) + "][" + std::to_string(dims[1]) + "][" +
                     std::to_string(dims[2]) + "])");
  checked::require_allocatable((long double)dims[1] * dims[2], path_, base + "/value");
  checked::require_allocatable((long double)step_dims[0], path_, base + "/step");

  ParticleFrame out;
  out.index = index;
  out.step = checked::read(path_, base + "/step",
                           [&] { return h5::read_int64s(steps.get()); })[std::size_t(index)];
  out.time = checked::read(path_, base + "/time",
                           [&] { return h5::read_doubles(times.get(), hsize_t(index), 1); })[0];
  if (!std::isfinite(out.time))
    throw InputError(fmt::format("{}: frame {} has time {} (must be finite)",
                                 checked::where(path_, base + "/time"), index, out.time));
  out.particles = index_t(dims[1]);
  out.first = std::min(first, out.particles);
  index_t shard_rows = rows_wanted < 0 ? out.particles - out.first
                                       : std::min(rows_wanted, out.particles - out.first);
  // Several blocks that do not fit the frame (a group of another size) read nothing: the caller
  // compares `particles` with what it expects and names the mismatch.
  const bool fits = blocks <= 1 || (rows_wanted >= 0 && rows_wanted <= stride &&
                                    first + (blocks - 1) * stride + rows_wanted <= out.particles);
  if (!fits) shard_rows = 0;
  const index_t block_count = std::max<index_t>(blocks, 1);
  // Reads the frame's rows of the shard (block_count blocks) from a [T][N](...) dataset.
  const auto read_shard = [&](hid_t dataset, hsize_t frame_row) {
    return h5::read_doubles_strided(dataset, frame_row, 1, hsize_t(out.first), hsize_t(shard_rows),
                                    hsize_t(block_count), hsize_t(stride));
  };
  const auto values = checked::read(path_, base + "/value",
                                    [&] { return read_shard(value.get(), hsize_t(index)); });
  checked::require_finite(values, path_, base + "/value");
  out.value = HostMatrix("mfsim::H5mdReader::frame", shard_rows * block_count, dims[2]);
  std::copy(values.begin(), values.end(), out.value.data());
  if (h5::has_attribute(value.get(), "columns")) {
    h5::Handle attr(H5Aopen(value.get(), "columns", H5P_DEFAULT));
    h5::Handle type(attr ? H5Aget_type(attr.get()) : -1);
    if (!type || H5Tget_class(type.get()) != H5T_STRING)
      throw InputError(checked::where(path_, base + "/value") +
                       ": attribute columns does not hold strings");
    out.columns = checked::read(path_, base + "/value attribute columns", [&] {
      return h5::read_string_array_attribute(value.get(), "columns");
    });
  }

  const std::string log_path = "particles/" + group + "/log_density";
  if (h5::exists(file_.get(), log_path + "/value")) {
    // [T][N] with the position's N: a log-density of another shape is refused, not read past.
    const std::string log_base = "/" + log_path;
    const index_t rows = complete_rows(file_.get(), path_, log_path, committed_step_, 2);
    std::vector<hsize_t> log_dims, log_step_dims;
    h5::Handle log_value =
        checked::open_numeric(file_.get(), path_, log_base + "/value", 2, log_dims);
    h5::Handle log_steps =
        checked::open_numeric(file_.get(), path_, log_base + "/step", 1, log_step_dims);
    if (log_dims[1] != dims[1])
      throw InputError(fmt::format("{}: has shape [{}][{}], expected [T][{}] (the particles of {})",
                                   checked::where(path_, log_base + "/value"), log_dims[0],
                                   log_dims[1], dims[1], base + "/value"));
    checked::require_allocatable((long double)log_step_dims[0], path_, log_base + "/step");
    const auto steps_logp =
        checked::read(path_, log_base + "/step", [&] { return h5::read_int64s(log_steps.get()); });
    // The log-density frame with the same step, if it was written.
    for (index_t j = 0; j < rows; ++j) {
      if (steps_logp[std::size_t(j)] != out.step) continue;
      const auto logp = checked::read(path_, log_base + "/value",
                                      [&] { return read_shard(log_value.get(), hsize_t(j)); });
      checked::require_finite(logp, path_, log_base + "/value");
      out.log_density = HostVector("mfsim::H5mdReader::log_density", logp.size());
      out.has_log_density = true;
      std::copy(logp.begin(), logp.end(), out.log_density.data());
      break;
    }
  }
  return out;
}

bool H5mdReader::has_data() const {
  return h5::exists(file_.get(), "data/train/x") && h5::exists(file_.get(), "data/train/y");
}

Dataset H5mdReader::read_data() const {
  if (!has_data()) throw InputError(path_ + ": no /data/train/{x,y} in the file");
  Dataset d;
  auto read_split = [&](const std::string& name, Matrix& x, Vector& y, int dim) {
    const std::string base = "/data/" + name;
    if (!h5::exists(file_.get(), base + "/x") && !h5::exists(file_.get(), base + "/y")) {
      x = Matrix("mfsim::Dataset::x_" + name, 0, dim);
      y = Vector("mfsim::Dataset::y_" + name, 0);
      return;
    }
    std::vector<hsize_t> xdims, ydims;
    h5::Handle xs = checked::open_numeric(file_.get(), path_, base + "/x", 2, xdims);
    h5::Handle ys = checked::open_numeric(file_.get(), path_, base + "/y", 1, ydims);
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
    const auto yv = checked::read(path_, base + "/y", [&] { return h5::read_doubles(ys.get()); });
    checked::require_finite(xv, path_, base + "/x");
    checked::require_finite(yv, path_, base + "/y");
    x = to_device(xv, xdims[0], xdims[1], "mfsim::Dataset::x_" + name);
    y = to_device(yv, "mfsim::Dataset::y_" + name);
  };
  read_split("train", d.x_train, d.y_train, -1);
  read_split("test", d.x_test, d.y_test, d.dim());
  return d;
}

std::vector<std::string> H5mdReader::observables() const {
  if (!h5::exists(file_.get(), "observables")) return {};
  return child_names(h5::open_group(file_.get(), "observables").get());
}

ObservableSeries H5mdReader::read_observable(const std::string& name) const {
  h5::Handle element = h5::open_group(file_.get(), "observables/" + name);
  const index_t rows = complete_rows(file_.get(), path_, "observables/" + name, committed_step_);
  h5::Handle value = h5::open_dataset(element.get(), "value");
  ObservableSeries out;
  const auto dims = h5::dataset_dims(value.get());
  out.shape.assign(dims.begin() + (dims.empty() ? 0 : 1), dims.end());
  out.value = h5::read_doubles(value.get(), 0, hsize_t(rows));
  out.time = h5::read_doubles(h5::open_dataset(element.get(), "time").get(), 0, hsize_t(rows));
  out.step = h5::read_int64s(h5::open_dataset(element.get(), "step").get());
  out.step.resize(std::size_t(rows));
  return out;
}

bool H5mdReader::has_parameter(const std::string& name) const {
  return h5::exists(file_.get(), "parameters") &&
         h5::has_attribute(h5::open_group(file_.get(), "parameters").get(), name);
}

std::string H5mdReader::parameter(const std::string& name) const {
  if (!has_parameter(name)) throw InputError(path_ + ": no parameter " + name);
  h5::Handle group = h5::open_group(file_.get(), "parameters");
  // Numbers are numeric attributes (H5mdWriter::write_parameters): back to the text they came
  // from (fmt's shortest round-trip form, as the writer's callers format them).
  h5::Handle attr(H5Aopen(group.get(), name.c_str(), H5P_DEFAULT));
  h5::Handle type(H5Aget_type(attr.get()));
  const H5T_class_t kind = H5Tget_class(type.get());
  if (kind == H5T_INTEGER) {
    long long value = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_LLONG, &value) < 0)
      throw InputError(path_ + ": cannot read parameter " + name);
    return fmt::format("{}", value);
  }
  if (kind == H5T_FLOAT) {
    double value = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
      throw InputError(path_ + ": cannot read parameter " + name);
    return fmt::format("{}", value);
  }
  return h5::read_string_attribute(group.get(), name);
}

}  // namespace mfsim

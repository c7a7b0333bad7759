#include "hdf5.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "input_file.hpp"
#include "mfsim/core/error.hpp"

namespace mfsim::h5 {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("HDF5: " + what);
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) fail(what);
  return id;
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

Handle file_access_without_locking() {
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"));
  check(H5Pset_file_locking(fapl.get(), false, true), "H5Pset_file_locking");
  return fapl;
}

Handle scalar_space() {
  return Handle(check(H5Screate(H5S_SCALAR), "H5Screate"));
}

Handle simple_space(const std::vector<hsize_t>& dims) {
  return Handle(
      check(H5Screate_simple(int(dims.size()), dims.data(), nullptr), "H5Screate_simple"));
}

Handle variable_string_type() {
  Handle t(check(H5Tcopy(H5T_C_S1), "H5Tcopy"));
  check(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

Handle replace_attribute(hid_t obj, const std::string& name, hid_t type, hid_t space) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  return Handle(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                      "cannot create attribute " + name));
}

Handle open_attribute(hid_t obj, const std::string& name) {
  return Handle(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "no attribute " + name));
}

// Bounds of a string attribute: mfsim writes a few dozen strings of at most a few kB (the config).
constexpr hssize_t max_strings = 1 << 20;
constexpr std::size_t max_string_bytes = std::size_t(1) << 30;

// HDF5 1.10 follows a variable-length string's reference into the file's global heap without
// checking it: one damaged byte (the heap object's index) makes H5Aread read wild memory and
// crash. The read is made first in a child process, which only reports whether it survived; the
// file is opened read-only, so the same read in this process then does the same.
bool string_read_survives(hid_t attr, hid_t type, std::size_t count) {
  const pid_t child = ::fork();
  if (child < 0) return true;  // no probe: the read goes ahead unchecked
  // The child's own exit codes, distinct from a sanitizer's or a crash's.
  constexpr int read = 40, refused = 41;
  if (child == 0) {
    const struct rlimit no_core {};
    ::setrlimit(RLIMIT_CORE, &no_core);  // a crash here leaves no core file behind
    // and ends the child: no handler inherited from the parent (a sanitizer's, a fuzzer's) may
    // report it as the parent's crash.
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(s, SIG_DFL);
    // The child speaks only through its exit code: what HDF5 (or a sanitizer, under which a wild
    // read is a report and an exit instead of a crash) would print is not the parent's output.
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    std::vector<char*> ptrs(count, nullptr);
    ::_exit(H5Aread(attr, type, ptrs.data()) < 0 ? refused : read);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // A read that fails cleanly fails again in this process, reported as such.
  return WIFEXITED(status) && (WEXITSTATUS(status) == read || WEXITSTATUS(status) == refused);
}

hsize_t product(const std::vector<hsize_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), hsize_t(1), std::multiplies<hsize_t>());
}

}  // namespace

Handle::Handle(hid_t id) : id_(id) {}

Handle::~Handle() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
}

Handle::Handle(Handle&& other) noexcept : id_(other.id_) {
  other.id_ = -1;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Handle old(id_);
    id_ = other.id_;
    other.id_ = -1;
  }
  return *this;
}

void silence_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Handle create_file(const std::string& path, bool overwrite) {
  silence_errors();
  Handle fapl = file_access_without_locking();
  // HDF5_USE_FILE_LOCKING overrides the file access property: HDF5's own flock would then fail
  // against the writer's (OutputGuard, a stronger lock held on another descriptor). A writer
  // here never uses HDF5's locks, whatever the environment asks.
  const char* asked = std::getenv("HDF5_USE_FILE_LOCKING");
  const std::string restore = asked ? asked : "";
  if (asked) setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
  errno = 0;
  const hid_t id =
      H5Fcreate(path.c_str(), overwrite ? H5F_ACC_TRUNC : H5F_ACC_EXCL, H5P_DEFAULT, fapl.get());
  const int error = errno;
  if (asked) setenv("HDF5_USE_FILE_LOCKING", restore.c_str(), 1);
  if (id < 0) {
    if (!overwrite && std::filesystem::exists(path))
      throw InputError(path + ": output file exists (use --force to overwrite it)");
    throw InputError(path + ": cannot create the output file" +
                     (error != 0 ? " (" + std::string(std::strerror(error)) + ")" : ""));
  }
  return Handle(id);
}

Handle open_file(const std::string& path, bool writable) {
  silence_errors();
  require_regular_file(path);  // a FIFO would block H5Fis_hdf5's open()
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path + ": not an HDF5 file");
  Handle fapl = file_access_without_locking();
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get());
  if (id < 0) throw InputError(path + ": cannot open the HDF5 file");
  return Handle(id);
}

void flush(hid_t file) {
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush");
}

bool exists(hid_t loc, const std::string& path) {
  std::string prefix, parent = ".";
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t next = std::min(path.find('/', pos), path.size());
    const std::string part = path.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty()) continue;
    prefix += (prefix.empty() ? "" : "/") + part;
    const htri_t found = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
    if (found == 0) return false;
    if (found < 0) {
      // Through something that is not a group (a dataset where a group would be) the path does
      // not exist; any other failure is HDF5 failing to read the file's metadata (a damaged
      // file, or one a writer changes meanwhile): an error, which a reader tells from absence.
      Handle object(check(H5Oopen(loc, parent.c_str(), H5P_DEFAULT), "cannot look up " + prefix));
      if (H5Iget_type(object.get()) != H5I_GROUP) return false;
      fail("cannot look up " + prefix);
    }
    parent = prefix;
  }
  return true;
}

Handle create_group(hid_t loc, const std::string& path) {
  if (exists(loc, path)) return open_group(loc, path);
  Handle lcpl(check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"));
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group");
  return Handle(check(H5Gcreate2(loc, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                      "cannot create group " + path));
}

Handle open_group(hid_t loc, const std::string& path) {
  const hid_t id = H5Gopen2(loc, path.c_str(), H5P_DEFAULT);
  if (id < 0) throw InputError("no group " + path);
  return Handle(id);
}

Handle open_dataset(hid_t loc, const std::string& path) {
  const hid_t id = H5Dopen2(loc, path.c_str(), H5P_DEFAULT);
  if (id < 0) throw InputError("no dataset " + path);
  return Handle(id);
}

void write_attribute(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = variable_string_type();
  Handle space = scalar_space();
  Handle attr = replace_attribute(obj, name, type.get(), space.get());
  const char* ptr = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &ptr), "cannot write attribute " + name);
}

void write_attribute(hid_t obj, const std::string& name, const std::vector<std::string>& value) {
  Handle type = variable_string_type();
  Handle space = simple_space({hsize_t(value.size())});
  Handle attr = replace_attribute(obj, name, type.get(), space.get());
  std::vector<const char*> ptrs;
  for (const auto& v : value) ptrs.push_back(v.c_str());
  check(H5Awrite(attr.get(), type.get(), ptrs.data()), "cannot write attribute " + name);
}

void write_attribute(hid_t obj, const std::string& name, const std::vector<int>& value) {
  Handle space = simple_space({hsize_t(value.size())});
  Handle attr = replace_attribute(obj, name, H5T_NATIVE_INT, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_INT, value.data()), "cannot write attribute " + name);
}

void write_attribute(hid_t obj, const std::string& name, const std::vector<double>& value) {
  Handle space = simple_space({hsize_t(value.size())});
  Handle attr = replace_attribute(obj, name, H5T_NATIVE_DOUBLE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, value.data()), "cannot write attribute " + name);
}

void write_attribute(hid_t obj, const std::string& name, double value) {
  Handle space = scalar_space();
  Handle attr = replace_attribute(obj, name, H5T_NATIVE_DOUBLE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), "cannot write attribute " + name);
}

void write_attribute(hid_t obj, const std::string& name, long long value) {
  Handle space = scalar_space();
  Handle attr = replace_attribute(obj, name, H5T_NATIVE_LLONG, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_LLONG, &value), "cannot write attribute " + name);
}

void overwrite_attribute(hid_t obj, const std::string& name, long long value) {
  Handle attr = open_attribute(obj, name);
  check(H5Awrite(attr.get(), H5T_NATIVE_LLONG, &value), "cannot write attribute " + name);
}

long long read_int64_attribute(hid_t obj, const std::string& name) {
  Handle attr = open_attribute(obj, name);
  Handle space(check(H5Aget_space(attr.get()), "H5Aget_space"));
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail("attribute " + name + " is not a scalar");
  long long value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_LLONG, &value), "cannot read attribute " + name);
  return value;
}

bool has_attribute(hid_t obj, const std::string& name) {
  const htri_t found = H5Aexists(obj, name.c_str());
  if (found < 0) fail("cannot look up attribute " + name);
  return found > 0;
}

std::vector<std::string> read_string_array_attribute(hid_t obj, const std::string& name) {
  Handle attr = open_attribute(obj, name);
  Handle space(check(H5Aget_space(attr.get()), "H5Aget_space"));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  Handle file_type(check(H5Aget_type(attr.get()), "H5Aget_type"));
  std::vector<std::string> out;
  if (count < 0 || count > max_strings) fail("attribute " + name + " holds too many strings");
  if (H5Tis_variable_str(file_type.get()) > 0) {
    Handle type = variable_string_type();
    if (!string_read_survives(attr.get(), type.get(), std::size_t(count)))
      fail("attribute " + name + " is damaged (reading its strings crashed HDF5)");
    std::vector<char*> ptrs(std::size_t(count), nullptr);
    check(H5Aread(attr.get(), type.get(), ptrs.data()), "cannot read attribute " + name);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {  // fixed-length strings (h5py's default for numpy bytes)
    const std::size_t size = H5Tget_size(file_type.get());
    if (size == 0 || size > max_string_bytes / std::max<std::size_t>(1, std::size_t(count)))
      fail("attribute " + name + " declares strings of " + std::to_string(size) + " bytes");
    std::vector<char> buffer(size * std::size_t(count));
    check(H5Aread(attr.get(), file_type.get(), buffer.data()), "cannot read attribute " + name);
    for (hssize_t i = 0; i < count; ++i) {
      std::string s(buffer.data() + std::size_t(i) * size, size);
      out.push_back(s.substr(0, s.find('\0')));
    }
  }
  return out;
}

std::string read_string_attribute(hid_t obj, const std::string& name) {
  const auto values = read_string_array_attribute(obj, name);
  if (values.empty()) fail("attribute " + name + " is empty");
  return values.front();
}

std::vector<int> read_int_array_attribute(hid_t obj, const std::string& name) {
  Handle attr = open_attribute(obj, name);
  Handle space(check(H5Aget_space(attr.get()), "H5Aget_space"));
  std::vector<int> out(std::size_t(H5Sget_simple_extent_npoints(space.get())));
  check(H5Aread(attr.get(), H5T_NATIVE_INT, out.data()), "cannot read attribute " + name);
  return out;
}

std::vector<double> read_double_array_attribute(hid_t obj, const std::string& name) {
  Handle attr = open_attribute(obj, name);
  Handle space(check(H5Aget_space(attr.get()), "H5Aget_space"));
  std::vector<double> out(std::size_t(H5Sget_simple_extent_npoints(space.get())));
  check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, out.data()), "cannot read attribute " + name);
  return out;
}

void write_dataset(hid_t loc, const std::string& name, const double* data,
                   const std::vector<hsize_t>& dims) {
  Handle space = simple_space(dims);
  Handle ds(check(H5Dcreate2(loc, name.c_str(), H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT),
                  "cannot create dataset " + name));
  if (product(dims) > 0)
    check(H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
          "cannot write dataset " + name);
}

std::vector<hsize_t> dataset_dims(hid_t dataset) {
  Handle space(check(H5Dget_space(dataset), "H5Dget_space"));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(std::size_t(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

namespace {
// Reads the `values` doubles of the hyperslab (start, stride, count, block) of a dataset, as
// H5Sselect_hyperslab takes them (stride and block null: `count` single elements apart), in
// row-major order; of a scalar dataset, its value.
std::vector<double> read_hyperslab(hid_t dataset, const hsize_t* start, const hsize_t* stride,
                                   const hsize_t* count, const hsize_t* block, std::size_t values) {
  std::vector<double> out(values);
  if (out.empty()) return out;
  Handle file_space(check(H5Dget_space(dataset), "H5Dget_space"));
  if (H5Sget_simple_extent_ndims(file_space.get()) > 0)
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, stride, count, block),
          "H5Sselect_hyperslab");
  Handle memory_space = simple_space({hsize_t(out.size())});
  check(H5Dread(dataset, H5T_NATIVE_DOUBLE, memory_space.get(), file_space.get(), H5P_DEFAULT,
                out.data()),
        "cannot read dataset");
  return out;
}
}  // namespace

std::vector<double> read_doubles(hid_t dataset, hsize_t row, hsize_t count, hsize_t inner_row,
                                 hsize_t inner_count) {
  std::vector<hsize_t> dims = dataset_dims(dataset);
  if (dims.empty()) dims = {1};
  count = std::min(count, dims[0] - std::min(row, dims[0]));
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = row;
  extent[0] = count;
  if (dims.size() > 1) {
    start[1] = std::min(inner_row, dims[1]);
    extent[1] = std::min(inner_count, dims[1] - start[1]);
  }
  return read_hyperslab(dataset, start.data(), nullptr, extent.data(), nullptr,
                        std::size_t(product(extent)));
}

std::vector<double> read_doubles_strided(hid_t dataset, hsize_t row, hsize_t count,
                                         hsize_t inner_row, hsize_t inner_count, hsize_t blocks,
                                         hsize_t stride) {
  if (blocks <= 1) return read_doubles(dataset, row, count, inner_row, inner_count);
  if (inner_count == 0) return {};
  const std::vector<hsize_t> dims = dataset_dims(dataset);
  if (dims.size() < 2 || inner_count > stride ||
      inner_row + (blocks - 1) * stride + inner_count > dims[1])
    throw InputError("cannot read " + std::to_string(blocks) + " blocks of " +
                     std::to_string(inner_count) + " rows every " + std::to_string(stride) +
                     " from row " + std::to_string(inner_row) + " of a dataset of " +
                     std::to_string(dims.size() < 2 ? 0 : dims[1]) + " rows");
  count = std::min(count, dims[0] - std::min(row, dims[0]));
  std::vector<hsize_t> start(dims.size(), 0), step(dims.size(), 1), number(dims.size(), 1),
      block = dims;
  start[0] = row;
  block[0] = count;
  start[1] = inner_row;
  step[1] = stride;
  number[1] = blocks;
  block[1] = inner_count;
  return read_hyperslab(dataset, start.data(), step.data(), number.data(), block.data(),
                        std::size_t(product(block) * blocks));
}

std::vector<long long> read_int64s(hid_t dataset) {
  std::vector<hsize_t> dims = dataset_dims(dataset);
  std::vector<long long> out(std::size_t(dims.empty() ? 1 : product(dims)));
  if (!out.empty())
    check(H5Dread(dataset, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          "cannot read dataset");
  return out;
}

Series::Series(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& inner)
    : type_(type), inner_(inner) {
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED};
  dims.insert(dims.end(), inner.begin(), inner.end());
  max_dims.insert(max_dims.end(), inner.begin(), inner.end());
  // Chunks of at most 16 KiB of rows (up to 256 rows of a scalar series, a few frames of a few
  // particles): HDF5 allocates a chunk whole when it first writes it, so that a file's first
  // rows take little more disk than they hold (a small disk or file-size limit holds a frame). A
  // larger row is a chunk of its own; one of more than 1 MiB, slabs of about 1 MiB of its first
  // inner dimension (a frame of a million particles). Chunking is invisible to readers.
  const hsize_t row_values = std::max<hsize_t>(1, product(inner));
  const hsize_t rows_target = (hsize_t(16) << 10) / 8, slab_target = (hsize_t(1) << 20) / 8;
  std::vector<hsize_t> chunk{std::clamp<hsize_t>(rows_target / row_values, 1, 256)};
  for (hsize_t n : inner) chunk.push_back(std::max<hsize_t>(1, n));
  if (!inner.empty() && row_values > slab_target)
    chunk[1] = std::max<hsize_t>(1, inner[0] * slab_target / row_values);
  Handle space(
      check(H5Screate_simple(int(dims.size()), dims.data(), max_dims.data()), "H5Screate_simple"));
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"));
  check(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), "H5Pset_chunk");
  chunk_ = chunk;
  dataset_ = Handle(
      check(H5Dcreate2(loc, name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            "cannot create dataset " + name));
}

std::uint64_t Series::next_row_allocation() const {
  if (chunk_.empty() || rows_ % chunk_[0] != 0) return 0;
  hsize_t chunks = 1;  // the chunks that cover one row of the inner dimensions
  for (std::size_t i = 0; i < inner_.size(); ++i)
    chunks *= (inner_[i] + chunk_[i + 1] - 1) / chunk_[i + 1];
  return std::uint64_t(chunks) * product(chunk_) * H5Tget_size(type_);
}

void Series::append(const void* row) {
  std::vector<hsize_t> dims{rows_ + 1}, start{rows_}, count{1};
  dims.insert(dims.end(), inner_.begin(), inner_.end());
  start.insert(start.end(), inner_.size(), 0);
  count.insert(count.end(), inner_.begin(), inner_.end());
  check(H5Dset_extent(dataset_.get(), dims.data()), "H5Dset_extent");
  Handle file_space(check(H5Dget_space(dataset_.get()), "H5Dget_space"));
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                            nullptr),
        "H5Sselect_hyperslab");
  Handle memory_space = simple_space({std::max<hsize_t>(1, product(inner_))});
  check(H5Dwrite(dataset_.get(), type_, memory_space.get(), file_space.get(), H5P_DEFAULT, row),
        "cannot append to a dataset");
  ++rows_;
}

}  // namespace mfsim::h5

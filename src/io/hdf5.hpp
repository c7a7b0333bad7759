#pragma once
// A thin RAII layer over the HDF5 C API (HighFive is not packaged in Debian 12): owned handles,
// attributes, fixed datasets and time series that grow along their first dimension.
// Private to the library (src/io): it includes <hdf5.h>, which a public header may not, so that a
// program using mfsim needs no HDF5 headers. Tests reach it through mfsim::internal.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mfsim::h5 {

// An owned HDF5 identifier, closed with the function that matches its type.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id);
  ~Handle();
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
};

// Silences HDF5's own error stack printing: failures become exceptions with one-line messages.
void silence_errors();

// Files are opened without HDF5's file locking so that a reader can look at a run in progress
// (every frame is flushed when written; readers ignore a partly appended frame).
Handle create_file(const std::string& path, bool overwrite);
Handle open_file(const std::string& path, bool writable = false);
void flush(hid_t file);

// Whether every component of a '/'-separated path exists (false where one is not a group); an
// error ("HDF5: cannot look up ...") where HDF5 cannot read the metadata that would say.
bool exists(hid_t loc, const std::string& path);
Handle create_group(hid_t loc, const std::string& path);  // creates missing parents
Handle open_group(hid_t loc, const std::string& path);
Handle open_dataset(hid_t loc, const std::string& path);

void write_attribute(hid_t obj, const std::string& name, const std::string& value);
void write_attribute(hid_t obj, const std::string& name, const std::vector<std::string>& value);
void write_attribute(hid_t obj, const std::string& name, const std::vector<int>& value);
void write_attribute(hid_t obj, const std::string& name, const std::vector<double>& value);
void write_attribute(hid_t obj, const std::string& name, double value);
void write_attribute(hid_t obj, const std::string& name, long long value);
// Overwrites the value of an existing scalar integer attribute in place (the attribute keeps its
// place in the object header: one write, never a moment without it).
void overwrite_attribute(hid_t obj, const std::string& name, long long value);
long long read_int64_attribute(hid_t obj, const std::string& name);
bool has_attribute(hid_t obj, const std::string& name);  // an error where HDF5 cannot say
std::string read_string_attribute(hid_t obj, const std::string& name);
std::vector<std::string> read_string_array_attribute(hid_t obj, const std::string& name);
std::vector<int> read_int_array_attribute(hid_t obj, const std::string& name);
std::vector<double> read_double_array_attribute(hid_t obj, const std::string& name);

// Fixed-size double dataset.
void write_dataset(hid_t loc, const std::string& name, const double* data,
                   const std::vector<hsize_t>& dims);
std::vector<hsize_t> dataset_dims(hid_t dataset);
// Reads rows [row, row + count) along the first dimension (all of it by default) and, of a
// dataset with two or more dimensions, [inner_row, inner_row + inner_count) along the second.
std::vector<double> read_doubles(hid_t dataset, hsize_t row = 0, hsize_t count = hsize_t(-1),
                                 hsize_t inner_row = 0, hsize_t inner_count = hsize_t(-1));
// The same with `blocks` blocks along the second dimension, block b being [inner_row + b·stride,
// inner_row + b·stride + inner_count) (an HDF5 hyperslab with stride), read in that order. The
// blocks must fit the dataset and not overlap (inner_count ≤ stride); throws InputError if not.
std::vector<double> read_doubles_strided(hid_t dataset, hsize_t row, hsize_t count,
                                         hsize_t inner_row, hsize_t inner_count, hsize_t blocks,
                                         hsize_t stride);
std::vector<long long> read_int64s(hid_t dataset);

// A dataset [T][inner...] whose first dimension grows by one row per append.
class Series {
 public:
  Series() = default;
  // Creates the dataset: `type` is H5T_NATIVE_DOUBLE or H5T_NATIVE_INT64.
  Series(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& inner);
  // Appends one row of prod(inner) values of the series' type.
  void append(const void* row);
  hsize_t rows() const { return rows_; }
  // The file space, in bytes, that the next row takes when HDF5 writes it out: the whole chunks
  // it starts (a chunk is allocated whole when first written, and its later rows are written in
  // place), 0 when it falls in chunks already there. Not counted: the chunk index, metadata.
  std::uint64_t next_row_allocation() const;

 private:
  Handle dataset_;
  hid_t type_ = -1;
  std::vector<hsize_t> inner_;
  std::vector<hsize_t> chunk_;  // rows, then the inner dimensions
  hsize_t rows_ = 0;
};

}  // namespace mfsim::h5

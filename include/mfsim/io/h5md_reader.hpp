#pragma once
// Reads what H5mdWriter writes: particle frames (restart and init from file), the data, the
// observables and the parameters. Tolerates a file still being written or killed mid-write: a
// row counts only once its step, time and value are present and its step is committed
// (mfsim/io/h5md_layout.hpp).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "mfsim/data/dataset.hpp"

namespace mfsim {

struct ParticleFrame {
  index_t index = 0;  // frame number, counted from 0
  index_t step = 0;
  double time = 0;
  index_t particles = 0;         // N, the particles of the group in the file
  index_t first = 0;             // the global id of value's first row
  HostMatrix value;              // [rows][D]: all N rows, or those asked for (block by block)
  HostVector log_density;        // [rows], empty if the file does not track it
  bool has_log_density = false;  // the file tracks it (log_density may still hold 0 rows)
  std::vector<std::string> columns;
};

struct ObservableSeries {
  std::vector<long long> step;
  std::vector<double> time;
  std::vector<double> value;       // rows × prod(shape)
  std::vector<std::size_t> shape;  // shape of one row (empty: scalar)
};

class H5mdReader {
 public:
  // Throws InputError if the file is missing, is not HDF5, or is not an H5MD file.
  explicit H5mdReader(const std::string& path);
  ~H5mdReader();
  H5mdReader(H5mdReader&& other) noexcept;
  H5mdReader& operator=(H5mdReader&& other) noexcept;

  const std::string& path() const { return path_; }
  std::vector<std::string> particle_groups() const;
  bool has_particles(const std::string& group) const;
  index_t frames(const std::string& group) const;
  // `frame` < 0 counts from the end (−1: the last complete frame).
  // Reads particles [first, first + rows) of the frame (all of them by default): a rank reads its
  // shard only. With `blocks` > 1, the particles [first + b·stride, first + b·stride + rows) for
  // b < blocks, in that order (a rank's part of every slice, GroupSpec); they must fit the frame.
  ParticleFrame read_frame(const std::string& group, index_t frame, index_t first = 0,
                           index_t rows = -1, index_t blocks = 1, index_t stride = 0) const;

  bool has_data() const;
  Dataset read_data() const;  // /data/train/{x,y}, /data/test/{x,y} into device views

  std::vector<std::string> observables() const;
  ObservableSeries read_observable(const std::string& name) const;

  bool has_parameter(const std::string& name) const;
  std::string parameter(const std::string& name) const;  // attribute of /parameters

 private:
  std::string path_;
  // The open HDF5 file and its commit marker (src/io/h5md_reader.cpp): private, so that this
  // header needs no HDF5 header.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mfsim

#pragma once
// Writes a run as an H5MD 1.1 file (DESIGN.md §5): particle trajectories, observables, the data
// and the parameters. flush() commits every row appended so far: the root attribute
// `committed_step` then says that every row with a step at or before it is complete on disk, so a
// killed run leaves a readable file whose frames each have their observation rows (readers count
// only the rows up to the marker).
//
// With several ranks, every member function is called by every rank at the same point; particles
// are gathered to rank 0, the only rank that opens the file (serial HDF5). A write that fails on
// rank 0 is raised on every rank at the next flush(), with the same message.
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mfsim/core/communicator.hpp"
#include "mfsim/data/dataset.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/h5md_layout.hpp"

namespace mfsim {

class H5mdWriter final : public RunOutput {
 public:
  // Creates `path`; an existing file is an InputError unless `overwrite`.
  H5mdWriter(const std::string& path, bool overwrite, const std::vector<GroupSpec>& groups,
             bool log_density, const Communicator& comm = self_communicator());
  ~H5mdWriter() override;
  H5mdWriter(const H5mdWriter&) = delete;
  H5mdWriter& operator=(const H5mdWriter&) = delete;

  void write_data(const Dataset& data);
  // Attributes of /parameters (verbatim and resolved config, versions, backend, ...).
  void write_parameters(const std::map<std::string, std::string>& attributes);

  using RunOutput::append_particles;
  void append_particles(const ExecSpace& space, index_t step, double time,
                        const ParticleState& s) override;
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value,
                         const std::vector<std::size_t>& shape = {}) override;
  void flush() override;
  // Commits everything and replaces the target with the file now, raising what fails (the
  // destructor does the same, silently): for a file without frames (a data file), which no
  // flush() publishes.
  void publish();

  const std::string& path() const;
  // "PATH holds every frame up to step N" (or "holds no frame"): what a stopped run leaves.
  std::string holds() const;

 private:
  // The HDF5 file and its series (src/io/h5md_writer.cpp): private, so that this header needs no
  // HDF5 header.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mfsim

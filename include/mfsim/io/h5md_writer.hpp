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
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mfsim/core/communicator.hpp"
#include "mfsim/data/dataset.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/h5md_layout.hpp"
#include "mfsim/io/hdf5.hpp"
#include "mfsim/io/output_guard.hpp"

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

  void append_particles(index_t step, double time, const ParticleState& s) override;
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value,
                         const std::vector<std::size_t>& shape = {}) override;
  void flush() override;

  const std::string& path() const { return path_; }
  // "PATH holds every frame up to step N" (or "holds no frame"): what a stopped run leaves.
  std::string holds() const;

 private:
  struct TimeSeries {  // an H5MD time-dependent element: step, time, value
    h5::Series step, time, value;
  };
  TimeSeries make_element(hid_t parent, const std::string& name, const std::vector<hsize_t>& inner);
  void append_row(TimeSeries& e, index_t step, double time, const double* row, std::size_t values);
  void write_data_now(const Dataset& data);
  // Runs `write` (before any frame): on failure the file is removed and the error says why.
  template <class Write>
  void before_first_frame(Write&& write);
  // Reserves `bytes` beyond HDF5's end of the file, plus room for metadata (OutputGuard).
  void reserve(std::uint64_t bytes, const std::string& context);
  void append_observable_row(const std::string& name, index_t step, double time,
                             const std::vector<double>& value,
                             const std::vector<std::size_t>& shape);
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

}  // namespace mfsim

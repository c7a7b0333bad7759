#pragma once
// From a validated config to a finished run: build the problem (data, model, initial particles),
// open the output, attach the observers, run the flow.
#include <iosfwd>
#include <memory>

#include "mfsim/io/config.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim {

struct Problem {
  Dataset data;
  std::unique_ptr<Model> model;
  ParticleState state;
  index_t first_step = 0;  // step and time of the initial state (non-zero on restart)
  double start_time = 0;
};

// Builds everything a run needs without touching the output. Throws InputError on bad input
// (missing or mismatched files, ...). With `log_density`, the state carries log ρ_t per particle.
Problem build_problem(const Config& config, const Communicator& comm = self_communicator(),
                      bool log_density = false);

struct RunOptions {
  bool overwrite = false;  // --force
  bool progress = true;    // progress line on stderr
};

// Runs `config` and writes config.output.path. Throws InputError before creating any file, and
// NonFiniteError after saving the last finite state.
RunSummary run_simulation(const Config& config, const RunOptions& options, std::ostream& log,
                          const Communicator& comm = self_communicator());

}  // namespace mfsim

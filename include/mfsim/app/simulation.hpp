#pragma once
// From a validated config to a finished run: build the problem (data, model, initial particles),
// open the output, attach the observers, run the flow.
#include <chrono>
#include <memory>

#include "mfsim/core/console.hpp"
#include "mfsim/io/config.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim {

struct Problem {
  Dataset data;
  std::unique_ptr<Model> model;
  ParticleState state;
  index_t first_step = 0;  // step and time of the initial state (non-zero on restart)
  double start_time = 0;
  // The file a restart starts from (init.kind = "file"), opened once: the diagnostics read its
  // first frame and its observables from it too.
  std::shared_ptr<const H5mdReader> init_file;
  // A restart from a file without log-densities, which start again from the Gaussian law's (the
  // transport KL then starts again from 0, with a note).
  bool log_density_restarted = false;
};

// Frame `frame` (negative: from the end of the frames every group has) of every group of the
// model in `file`, this rank's rows, into `state`; with log-densities in `state` and in the file,
// those too. Returns the frame's step and time; `has_log_density` tells whether the file had them.
// Throws InputError naming `key` (the config key of the file) on a missing or mismatched frame.
struct LoadedFrame {
  index_t step = 0;
  double time = 0;
  bool has_log_density = true;
};
LoadedFrame load_state(const H5mdReader& file, const std::string& key,
                       const std::vector<GroupSpec>& groups, index_t frame, ParticleState& state);

// Builds everything a run needs without touching the output. Throws InputError on bad input
// (missing or mismatched files, ...). With `log_density`, the state carries log ρ_t per particle.
Problem build_problem(const Config& config, const Communicator& comm = self_communicator(),
                      bool log_density = false);

struct RunOptions {
  bool overwrite = false;  // --force
  bool progress = true;    // progress lines among the console's notes (stderr)
  bool time_phases =
      false;  // --time-phases: the phases' times are fenced (RunSettings::time_phases)
  // Where the wall time of the summary starts: the process's start for the mfsim binary (its
  // set-up then counts parsing and Kokkos' initialisation too), else when the options were made.
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Runs `config` and writes config.output.path. Throws InputError before creating any file, and
// NonFiniteError after saving the last finite state. Rank 0 prints on `console`: the progress (a
// header naming the backend, then its lines) among the notes, the summary, the wall time since
// options.started split into set-up, steps, observing, writing and the rest (their sum), and the
// "wrote" line among the results, and the lines of Diagnostics.
RunSummary run_simulation(const Config& config, const RunOptions& options, const Console& console,
                          const Communicator& comm = self_communicator());

}  // namespace mfsim

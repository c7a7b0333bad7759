#pragma once
// From a validated config to a finished run: build the problem (data, model, initial particles),
// open the output, attach the observers, run the flow.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

class Diagnostics;

// A simulation held in memory and run in parts (the Python module): built and checked as
// run_simulation builds and checks a run, from the config's data or from data given; each run()
// continues from the state the previous part left, as a restart from it would, so that one run()
// of a new session computes what run_simulation computes.
class Session {
 public:
  // Throws InputError on bad input (config, data, sizes); writes nothing. `data`, when given,
  // replaces the config's data (its labels checked against the loss as a data file's are).
  Session(const Config& config, std::optional<Dataset> data, const Console& console);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Config& config() const { return config_; }
  const Model& model() const { return *problem_.model; }
  const ParticleState& state() const { return problem_.state; }
  index_t step() const { return step_; }  // the step number and flow time of the state
  double time() const { return time_; }

  // What one run() of the session does.
  struct RunRequest {
    // The config's flow, cadences and output.path (the session's config but for output.path).
    const Config* config = nullptr;
    bool write = false;                // write config->output.path, as run_simulation does
    bool overwrite = false;            // an existing output file is replaced (--force)
    ObservableSink* rows = nullptr;    // also gets every observation row
    std::vector<Observer*> observers;  // after the loss and the diagnostics
    ProgressReporter* progress = nullptr;
    bool (*stop_requested)() = nullptr;  // RunSettings::stop_requested
  };
  // The flow from the current state: flow.steps more steps, or up to flow.t_end or flow.loss_tol,
  // observed by the loss observer, the config's diagnostics and `observers`. Throws InputError
  // before touching any file (an output path that must not be written); NonFiniteError with the
  // state back at the last finite point (and that point in the file).
  RunSummary run(const RunRequest& request);
  // `steps` steps of flow.dt from the current state, neither observed nor written (no end time,
  // no loss tolerance); fewer when `stop_requested` says so. Returns the steps taken.
  index_t advance(index_t steps, bool (*stop_requested)() = nullptr);
  // The loss observer's rows (loss, test_loss) at the current state, into `sink`.
  void evaluate(ObservableSink& sink);

 private:
  RunSummary run_part(const RunSettings& settings, const std::vector<Observer*>& observers,
                      RunOutput& output, ProgressReporter* progress);

  Config config_;
  bool data_given_;
  Problem problem_;
  std::unique_ptr<const Diagnostics> diagnostics_;
  index_t step_ = 0;
  double time_ = 0;
};

}  // namespace mfsim

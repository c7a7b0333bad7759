#pragma once
// Errors that reach the user as one line, and the exit codes the CLI maps them to.
#include <stdexcept>
#include <string>

namespace mfsim {

// A stop signal exits with 128 + its number (StopRequested), after committing the final state.
enum ExitCode : int {
  exit_ok = 0,
  // The run could not go on: a write failed (a full disk, a file-size limit) or an internal error.
  // The file holds every frame committed before the failure; the message says up to which step.
  exit_run_failed = 1,
  exit_input = 2,      // bad config, bad file, bad command line: nothing was written
  exit_non_finite = 3  // the flow produced NaN/Inf: the file holds every good frame
};

// Bad user input (config key, CLI argument, input file). The message names the culprit.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The state of the flow stopped being finite. The run loop leaves its state at the last finite
// point, step `last_step` at time `last_time` (-1: none, the first point was not finite).
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  NonFiniteError(const std::string& message, long long step, double time)
      : std::runtime_error(message), last_step(step), last_time(time) {}
  long long last_step = -1;
  double last_time = 0;
};

}  // namespace mfsim

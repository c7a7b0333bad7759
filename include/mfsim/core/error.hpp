#pragma once
// Errors that reach the user as one line, and the exit codes the CLI maps them to.
#include <stdexcept>
#include <string>

namespace mfsim {

enum ExitCode : int {
  exit_ok = 0,
  exit_internal = 1,
  exit_input = 2,      // bad config, bad file, bad command line: nothing was written
  exit_non_finite = 3  // the flow produced NaN/Inf: the file holds every good frame
};

// Bad user input (config key, CLI argument, input file). The message names the culprit.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The state of the flow stopped being finite.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mfsim

#pragma once
// SIGTERM, SIGINT and SIGHUP as requests to stop cleanly: the handler only records the signal;
// the output writer checks it after each completed frame and raises StopRequested, so that the
// file is closed complete and the process exits with 128 + the signal's number.
#include <stdexcept>
#include <string>

namespace mfsim {

// Installs the handlers (the mfsim binary does, once, before running). Until
// defer_stop_signals() is called, a signal ends the process at once (exit 128 + the signal, one
// line on stderr): during start-up nothing is on disk yet, and an input that blocks (or a long
// setup) must not hold the signal back.
void install_stop_signal_handlers();
// From now on a signal is only recorded (stop_signal()): called just before the run creates its
// first file or directory, after which the run stops at its next committed point.
void defer_stop_signals();

// The signal received since the handlers were installed, or 0.
int stop_signal();

// "SIGTERM", "SIGINT", "SIGHUP", or "signal N".
std::string signal_name(int signal);

class StopRequested : public std::runtime_error {
 public:
  StopRequested(int signal, const std::string& message)
      : std::runtime_error(message), signal_(signal) {}
  int signal() const { return signal_; }
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

}  // namespace mfsim

#pragma once
// SIGTERM, SIGINT and SIGHUP as requests to stop cleanly: the handler only records the signal;
// the output writer checks it after each completed frame and raises StopRequested, so that the
// file is closed complete and the process exits with 128 + the signal's number.
#include <stdexcept>
#include <string>

namespace mfsim {

// Installs the handlers (the mfsim binary does, once, before running).
void install_stop_signal_handlers();

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

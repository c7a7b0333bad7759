#include "mfsim/core/stop_signal.hpp"

#include <csignal>

namespace mfsim {
namespace {

volatile std::sig_atomic_t received = 0;

extern "C" void record_signal(int signal) {
  // The first signal wins; a second one of the same kind while stopping is not lost either way.
  if (received == 0) received = signal;
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // interrupted writes resume: a frame is never cut by the signal
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &action, nullptr);
}

int stop_signal() {
  return received;
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal " + std::to_string(signal);
  }
}

}  // namespace mfsim

#include "mfsim/core/stop_signal.hpp"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace mfsim {
namespace {

volatile std::sig_atomic_t received = 0;
volatile std::sig_atomic_t deferred = 0;

// Written with write(2), the one way to print from a signal handler.
void say(const char* text, std::size_t length) {
  while (length > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, length);
    if (n <= 0) return;
    text += n;
    length -= std::size_t(n);
  }
}

extern "C" void record_signal(int signal) {
  if (!deferred) {
    // Start-up: nothing is on disk yet, and a blocked open() or a long setup must not make the
    // signal wait for it. The process ends here, with the code a stopped run has.
    static const char start[] = "mfsim: error: stopped by ";
    static const char end[] = " during start-up (nothing written)\n";
    const char* name = signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "SIGHUP";
    say(start, sizeof start - 1);
    say(name, std::strlen(name));
    say(end, sizeof end - 1);
    ::_exit(128 + signal);
  }
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

void defer_stop_signals() {
  deferred = 1;
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

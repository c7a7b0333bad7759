#include "mfsim/flow/progress.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace mfsim {

StderrProgress::StderrProgress(index_t total_steps, double start_time, double t_end,
                               const Console& console)
    : total_steps_(total_steps),
      start_time_(start_time),
      t_end_(t_end),
      console_(console),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void StderrProgress::update(index_t steps_done, index_t step, double time, double loss,
                            bool final) {
  const bool terminal = console_.notes_on_terminal();
  const auto now = std::chrono::steady_clock::now();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  if (!final && since_print < (terminal ? 0.25 : 10.0)) return;
  last_print_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? double(steps_done) / elapsed : 0;
  // Fraction done by steps or by flow time, whichever is further along.
  double fraction = -1;
  if (total_steps_ > 0) fraction = double(steps_done) / double(total_steps_);
  if (t_end_ > start_time_)
    fraction = std::fmax(fraction, (time - start_time_) / (t_end_ - start_time_));
  char eta[32] = "?";
  if (fraction > 0) std::snprintf(eta, sizeof eta, "%.0fs", elapsed * (1 - fraction) / fraction);
  char line[256];
  std::snprintf(line, sizeof line, "step %lld  t=%.4g  loss=%.6g  %.3g steps/s  ETA %s",
                (long long)step, time, loss, rate, final ? "0s" : eta);
  // On a terminal the line rewrites itself and stays open until the last one; elsewhere (a log
  // file) each is a line of its own.
  if (terminal)
    console_.rewrite_note(line, final);
  else
    console_.note(std::string("mfsim: ") + line);
}

}  // namespace mfsim

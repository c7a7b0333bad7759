#pragma once
// Progress as notes of a Console (stderr): a refreshing line on a terminal, a plain log line every
// few seconds otherwise.
#include <chrono>

#include "mfsim/core/console.hpp"
#include "mfsim/flow/run.hpp"

namespace mfsim {

class StderrProgress final : public ProgressReporter {
 public:
  // `total_steps` < 0 when unknown; `t_end` > 0 when the run ends at a flow time.
  StderrProgress(index_t total_steps, double start_time, double t_end,
                 const Console& console = Console::standard());
  void update(index_t steps_done, index_t step, double time, double loss, bool final) override;

 private:
  index_t total_steps_;
  double start_time_, t_end_;
  Console console_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace mfsim

#pragma once
// Writes an estimate as three observables: <name>, <name>_stderr (its standard error) and
// <name>_reliable (1 where kl_reliability.hpp's rule passes it, else 0), and says so once on the
// notes (stderr) the first time <name> is unreliable, naming the flag, so that no unreliable
// number goes by unannounced.
#include <optional>
#include <set>
#include <string>

#include "mfsim/core/console.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class EstimateSeries {
 public:
  // Without notes, the flags are written and nothing is printed.
  explicit EstimateSeries(std::optional<Console> notes = std::nullopt) : notes_(notes) {}

  // `advice`: what to use instead, ending the warning.
  void append(ObservableSink& sink, const std::string& name, const FlowPoint& p, const Estimate& e,
              bool reliable, const std::string& advice);

 private:
  std::optional<Console> notes_;
  std::set<std::string> warned_;
};

}  // namespace mfsim

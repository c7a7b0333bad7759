#pragma once
// Writes an estimate as three observables: <name>, <name>_stderr (its standard error) and
// <name>_reliable (1 where kl_reliability.hpp's rule passes it, else 0), and says so once on the
// notes (stderr) the first time <name> is unreliable, naming the flag, so that no unreliable
// number goes by unannounced. A per-layer estimate (one value per slice of a group) is written the
// same way with a layer axis: each of the three observables holds one number per layer.
#include <optional>
#include <set>
#include <string>
#include <vector>

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
  // One estimate per layer, as rows of shape {layers}; the warning counts the unreliable layers.
  void append_layers(ObservableSink& sink, const std::string& name, const FlowPoint& p,
                     const std::vector<Estimate>& e, const std::vector<bool>& reliable,
                     const std::string& advice);

 private:
  std::optional<Console> notes_;
  std::set<std::string> warned_;
};

}  // namespace mfsim

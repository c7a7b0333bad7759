#include "mfsim/diagnostics/estimate_series.hpp"

#include <fmt/format.h>

namespace mfsim {

void EstimateSeries::append(ObservableSink& sink, const std::string& name, const FlowPoint& p,
                            const Estimate& e, bool reliable, const std::string& advice) {
  sink.append_observable(name, p.step, p.time, {e.value});
  sink.append_observable(name + "_stderr", p.step, p.time, {e.standard_error});
  sink.append_observable(name + "_reliable", p.step, p.time, {reliable ? 1.0 : 0.0});
  if (reliable || !warned_.insert(name).second || !notes_) return;
  notes_->note(fmt::format(
      "mfsim: warning: {} = {:.4g} ± {:.2g} at t = {:.6g} is unreliable: its error bound exceeds "
      "max(0.1 nats, 5 %) (docs/diagnostics.md); flagged {}_reliable = 0 in the file, here and "
      "at every later unreliable row (not announced again); {}",
      name, e.value, e.standard_error, p.time, name, advice));
}

void EstimateSeries::append_layers(ObservableSink& sink, const std::string& name,
                                   const FlowPoint& p, const std::vector<Estimate>& e,
                                   const std::vector<bool>& reliable, const std::string& advice) {
  std::vector<double> values, errors, flags;
  std::size_t unreliable = 0;
  for (std::size_t l = 0; l < e.size(); ++l) {
    values.push_back(e[l].value);
    errors.push_back(e[l].standard_error);
    flags.push_back(reliable[l] ? 1.0 : 0.0);
    unreliable += !reliable[l];
  }
  const std::vector<std::size_t> shape{e.size()};
  sink.append_observable(name, p.step, p.time, values, shape);
  sink.append_observable(name + "_stderr", p.step, p.time, errors, shape);
  sink.append_observable(name + "_reliable", p.step, p.time, flags, shape);
  if (unreliable == 0 || !warned_.insert(name).second || !notes_) return;
  notes_->note(fmt::format(
      "mfsim: warning: {} (one KL per layer) is unreliable for {} of {} layers at t = {:.6g}: "
      "their error bounds exceed max(0.1 nats, 5 %) (docs/diagnostics.md); flagged per layer in "
      "{}_reliable (not announced again); {}",
      name, unreliable, e.size(), p.time, name, advice));
}

}  // namespace mfsim

#include "mfsim/diagnostics/observer.hpp"

namespace mfsim {

std::string observable_name(const std::string& family, const std::string& label,
                            const std::string& quantity) {
  return family + "_" + (label.empty() ? "" : label + "_") + quantity;
}

void LossObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  sink.append_observable("loss", p.step, p.time, {p.loss});
  if (p.model.data().n_test() > 0)
    sink.append_observable("test_loss", p.step, p.time, {p.model.test_loss(p.state, scratch_)});
}

}  // namespace mfsim

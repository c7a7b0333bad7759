#include "mfsim/diagnostics/loss_observer.hpp"

namespace mfsim {

void LossObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  sink.append_observable("loss", p.step, p.time, {p.loss});
  if (p.model.data().n_test() > 0)
    sink.append_observable("test_loss", p.step, p.time,
                           {p.model.test_loss(p.space, p.state, scratch_)});
}

}  // namespace mfsim

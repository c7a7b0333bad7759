#pragma once
#include "mfsim/core/workspace.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

// `loss` (training, |r|²/(2n)) and `test_loss` (same on the test set).
class LossObserver final : public Observer {
 public:
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "loss"; }

 private:
  Workspace scratch_;  // the test-set forward pass
};

}  // namespace mfsim

#pragma once
// One evaluation of a model's velocity field at a state: what Model::evaluate() computes besides
// the velocities (the residuals, the loss, and whatever the model's diagnostics read, such as the
// ResNet's forward and adjoint layers), in buffers that Model::make_evaluation() allocates once
// and every evaluate() refills. The run loop owns it and hands it to the observers read-only
// (FlowPoint), so what a diagnostic may read, and of which state, is in the types; the model
// itself keeps nothing between calls.
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

namespace mfsim {

class Evaluation {
 public:
  explicit Evaluation(index_t n_train)
      : residual(uninitialized<Vector>("mfsim::Evaluation::residual", n_train)) {}
  virtual ~Evaluation() = default;
  Evaluation(const Evaluation&) = delete;
  Evaluation& operator=(const Evaluation&) = delete;

  Vector residual;    // r = f(x_train) − y_train (summed over every rank)
  double loss = 0;    // |r|²/(2n)
  Workspace scratch;  // the evaluation's own packing and transpose buffers
};

}  // namespace mfsim

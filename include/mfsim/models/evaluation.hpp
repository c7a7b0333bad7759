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
      : output(uninitialized<Vector>("mfsim::Evaluation::output", n_train)),
        residual(uninitialized<Vector>("mfsim::Evaluation::residual", n_train)) {}
  virtual ~Evaluation() = default;
  Evaluation(const Evaluation&) = delete;
  Evaluation& operator=(const Evaluation&) = delete;

  Vector output;      // f(x_train) (summed over every rank)
  Vector residual;    // r_i = ℓ'(f(x_i), y_i): f − y for the square loss (models/loss.hpp)
  double loss = 0;    // (1/n) Σ ℓ(f(x_i), y_i): |r|²/(2n) for the square loss
  Workspace scratch;  // the evaluation's own packing and transpose buffers
};

}  // namespace mfsim

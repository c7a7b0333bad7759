#pragma once
// One evaluation of a model's velocity field at a state: what Model::evaluate() computes besides
// the velocities (the residuals, the loss, and whatever the model's diagnostics read, such as the
// ResNet's forward and adjoint layers), in buffers that Model::make_evaluation() allocates once
// and every evaluate() refills. The run loop owns it and hands it to the observers read-only
// (FlowPoint), so what a diagnostic may read, and of which state, is in the types; the model
// itself keeps nothing between calls.
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"
#include "mfsim/data/dataset.hpp"

namespace mfsim {

class Evaluation {
 public:
  // Over the training set of `data`, or with `minibatch` > 0 over minibatches of that many
  // samples (SGD): the caller draws each minibatch into batch_x and batch_y before evaluate()
  // (flow/minibatch.hpp).
  // With `outputs` = c > 1, output and residual hold c values a sample (entry i·c + j).
  explicit Evaluation(const Dataset& data, index_t minibatch = 0, int outputs = 1)
      : minibatch_(minibatch > 0), outputs_(outputs) {
    const index_t n = minibatch_ ? minibatch : data.n_train();
    if (minibatch_) {
      batch_x = uninitialized<Matrix>("mfsim::Evaluation::batch_x", n, data.dim());
      batch_y = uninitialized<Vector>("mfsim::Evaluation::batch_y", n * data.targets);
      x_ = batch_x;
      y_ = batch_y;
    } else {
      x_ = data.x_train;
      y_ = data.y_train;
    }
    output = uninitialized<Vector>("mfsim::Evaluation::output", n * outputs);
    residual = uninitialized<Vector>("mfsim::Evaluation::residual", n * outputs);
  }
  virtual ~Evaluation() = default;
  Evaluation(const Evaluation&) = delete;
  Evaluation& operator=(const Evaluation&) = delete;

  // The samples evaluated: the training set, or the current minibatch.
  ConstMatrix x() const { return x_; }
  ConstVector y() const { return y_; }
  index_t samples() const { return index_t(x_.extent(0)); }
  bool minibatch() const { return minibatch_; }
  int outputs() const { return outputs_; }

  Matrix batch_x;  // a minibatch evaluation's samples (empty otherwise)
  Vector batch_y;
  Vector output;      // f at the samples (summed over every rank), c values a sample
  Vector residual;    // r_i = ∇_f ℓ(f(x_i), y_i): f − y for the square loss (models/loss.hpp)
  double loss = 0;    // (1/n) Σ ℓ(f(x_i), y_i) over the samples: |r|²/(2n) for the square loss
  Workspace scratch;  // the evaluation's own packing and transpose buffers

 private:
  ConstMatrix x_;
  ConstVector y_;
  bool minibatch_ = false;
  int outputs_ = 1;
};

}  // namespace mfsim

#pragma once
// Classification observables, for a loss with labels ±1 (model.loss = "logistic") and, with
// c = model.outputs > 1 outputs, for class labels 0 … c−1 (cross_entropy, or square on one-hot
// targets, whose class is the argmax of the target row): the prediction is argmax_j f_j(x) (the
// first on ties) and the margin min_i (f_{y_i}(x_i) − max_{j≠y_i} f_j(x_i)) (MATH.md §1.5).
//   train_accuracy, test_accuracy   the fraction of samples with sign f(x) = y (f(x) = 0 counts as
//                                   wrong); test_accuracy only with test data
//   margin                          min_i y_i f(x_i) over the training set
//   normalised_margin               margin / path_norm_l2, for a model of one group of two-layer
//                                   units (model A): the Chizat–Bach quantity, invariant under the
//                                   rescaling (a, w) → (ca, w/c) of ReLU units; its growth along
//                                   the flow is the implicit bias towards max-margin
// The training outputs come from the evaluation (Evaluation::output); the test outputs from one
// forward pass per observation.
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class ClassificationObserver final : public Observer {
 public:
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "classification"; }

 private:
  Workspace scratch_;  // the test-set forward pass
};

// Fraction of i with sign f(i) = y(i) (f(i) = 0 counts as wrong); 0 for no samples. Reduced on
// the execution-space instance `space` (without it, the default instance), as the margin.
double accuracy(const ExecSpace& space, ConstVector f, ConstVector y);
inline double accuracy(ConstVector f, ConstVector y) {
  return accuracy(ExecSpace(), f, y);
}
// min_i y(i) f(i).
double margin(const ExecSpace& space, ConstVector f, ConstVector y);
inline double margin(ConstVector f, ConstVector y) {
  return margin(ExecSpace(), f, y);
}
// The same for c > 1 outputs a sample (f(i·c + j)) and `targets` values of y a sample (1: class
// indices; c: one-hot rows).
double accuracy(const ExecSpace& space, ConstVector f, ConstVector y, int c, int targets);
double margin(const ExecSpace& space, ConstVector f, ConstVector y, int c, int targets);

}  // namespace mfsim

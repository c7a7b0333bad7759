#pragma once
// Training and test samples (x_i, y_i), resident in the execution space's memory.
#include <vector>

#include "mfsim/core/activation.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

struct Dataset {
  Matrix x_train;   // [n_train][dim]
  Vector y_train;   // [n_train · targets]: sample i's targets at i·targets …
  Matrix x_test;    // [n_test][dim]
  Vector y_test;    // [n_test · targets]
  int targets = 1;  // values per sample: c for vector targets (one-hot), else 1
  // Class labels 0 … classes−1 (recorded by mfsim data import); 0 when the labels are not classes.
  int classes = 0;
  // The population flow's teacher f*(x) = teacher_scale · Σ_j a*_j σ*(w*_j·x) (MATH.md §2.8): rows
  // (w*_j, a*_j), [k][dim + 1]; no rows otherwise. σ* = teacher_activation; the inputs' law is
  // N(0, diag(covariance_diagonal)), N(0, I_d) when it is empty.
  Matrix teacher;
  double teacher_scale = 1;
  Activation teacher_activation;
  std::vector<double> covariance_diagonal;
  // The population flow's probe set (diagnostics.probe_samples): inputs of that law on which the
  // Gram diagnostics are evaluated, [n_probe][dim]; no rows otherwise.
  Matrix probe;

  index_t n_train() const { return index_t(x_train.extent(0)); }
  index_t n_test() const { return index_t(x_test.extent(0)); }
  int dim() const { return int(x_train.extent(1)); }
};

}  // namespace mfsim

#pragma once
// Training and test samples (x_i, y_i), resident in the execution space's memory.
#include "mfsim/core/types.hpp"

namespace mfsim {

struct Dataset {
  Matrix x_train;  // [n_train][dim]
  Vector y_train;  // [n_train]
  Matrix x_test;   // [n_test][dim]
  Vector y_test;   // [n_test]

  index_t n_train() const { return index_t(x_train.extent(0)); }
  index_t n_test() const { return index_t(x_test.extent(0)); }
  int dim() const { return int(x_train.extent(1)); }
};

}  // namespace mfsim

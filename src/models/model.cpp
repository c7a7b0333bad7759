#include "mfsim/models/model.hpp"

namespace mfsim {

double half_mean_square(ConstVector r) {
  const index_t n = index_t(r.extent(0));
  if (n == 0) return 0;
  double sum = 0;
  Kokkos::parallel_reduce(
      "mfsim::Model::half_mean_square", Kokkos::RangePolicy<ExecSpace>(0, n),
      KOKKOS_LAMBDA(index_t i, double& acc) { acc += double(r(i)) * double(r(i)); }, sum);
  return sum / (2.0 * double(n));
}

double Model::test_loss(const ParticleState& s) const {
  const index_t n = data_.n_test();
  if (n == 0) return 0;
  Vector f(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::Model::test_output"), n);
  predict(s, data_.x_test, f);
  ConstVector y = data_.y_test;
  Kokkos::parallel_for(
      "mfsim::Model::test_residual", Kokkos::RangePolicy<ExecSpace>(0, n),
      KOKKOS_LAMBDA(index_t i) { f(i) -= y(i); });
  return half_mean_square(f);
}

}  // namespace mfsim

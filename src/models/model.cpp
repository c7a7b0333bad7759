#include "mfsim/models/model.hpp"

namespace mfsim {

double half_mean_square(const ExecSpace& space, ConstVector r) {
  const index_t n = index_t(r.extent(0));
  if (n == 0) return 0;
  double sum = 0;
  Kokkos::parallel_reduce(
      "mfsim::Model::half_mean_square", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, double& acc) { acc += double(r(i)) * double(r(i)); }, sum);
  return sum / (2.0 * double(n));
}

double half_mean_square(ConstVector r) {
  return half_mean_square(ExecSpace(), r);
}

void Model::predict(const ParticleState& s, ConstMatrix x, Vector f) const {
  Workspace scratch;
  predict(s, x, f, scratch);
}

double Model::test_loss(const ExecSpace& space, const ParticleState& s, Workspace& scratch) const {
  const index_t n = data_.n_test();
  if (n == 0) return 0;
  const Vector f = scratch.view<Vector>("test_output", n * outputs_);
  predict(space, s, data_.x_test, f, scratch);
  return mean_loss(space, loss_, f, data_.y_test, f, outputs_);
}

}  // namespace mfsim

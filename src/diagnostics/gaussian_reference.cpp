#include "mfsim/diagnostics/gaussian_reference.hpp"

#include <cmath>

#include "mfsim/core/math.hpp"

namespace mfsim {

GaussianReference::GaussianReference(const GroupSpec& group)
    : inv_std_("mfsim::GaussianReference::inv_std", group.dim()) {
  auto host = Kokkos::create_mirror_view(inv_std_);
  for (int j = 0; j < group.dim(); ++j) {
    const double sd = group.init_std[std::size_t(j)];
    host(j) = real(1 / sd);
    log_norm_ += 0.5 * std::log(2 * math::pi * sd * sd);
  }
  Kokkos::deep_copy(inv_std_, host);
}

double GaussianReference::sum_log_ratio(ConstMatrix theta, ConstVector log_density) const {
  const int dim = this->dim();
  const double log_norm = log_norm_;
  ConstVector inv_std = inv_std_;
  double sum = 0;
  Kokkos::parallel_reduce(
      "mfsim::GaussianReference::sum_log_ratio",
      Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))),
      KOKKOS_LAMBDA(index_t k, double& acc) {
        double q = 0;
        for (int j = 0; j < dim; ++j) {
          const double z = double(theta(k, j)) * double(inv_std(j));
          q += z * z;
        }
        acc += double(log_density(k)) + 0.5 * q + log_norm;
      },
      sum);
  return sum;
}

void GaussianReference::whiten(ConstMatrix theta, Matrix out) const {
  const int dim = this->dim();
  ConstVector inv_std = inv_std_;
  Kokkos::parallel_for(
      "mfsim::GaussianReference::whiten",
      Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0)) * dim), KOKKOS_LAMBDA(index_t e) {
        const index_t k = e / dim;
        const int j = int(e % dim);
        out(k, j) = theta(k, j) * inv_std(j);
      });
}

}  // namespace mfsim

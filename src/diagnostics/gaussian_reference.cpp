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

GaussianReference::LogRatioSums GaussianReference::log_ratio_sums(const ExecSpace& space,
                                                                  ConstMatrix theta,
                                                                  ConstVector log_density) const {
  const int dim = this->dim();
  const double log_norm = log_norm_;
  ConstVector inv_std = inv_std_;
  LogRatioSums sums;
  Kokkos::parallel_reduce(
      "mfsim::GaussianReference::log_ratio_sums",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(theta.extent(0))),
      KOKKOS_LAMBDA(index_t k, double& sum, double& squares) {
        double q = 0;
        for (int j = 0; j < dim; ++j) {
          const double z = double(theta(k, j)) * double(inv_std(j));
          q += z * z;
        }
        const double r = double(log_density(k)) + 0.5 * q + log_norm;
        sum += r;
        squares += r * r;
      },
      sums.sum, sums.squares);
  return sums;
}

void GaussianReference::whiten(const ExecSpace& space, ConstMatrix theta, Matrix out,
                               index_t stride) const {
  const int dim = this->dim();
  ConstVector inv_std = inv_std_;
  Kokkos::parallel_for(
      "mfsim::GaussianReference::whiten",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(out.extent(0)) * dim),
      KOKKOS_LAMBDA(index_t e) {
        const index_t k = e / dim;
        const int j = int(e % dim);
        out(k, j) = theta(k * stride, j) * inv_std(j);
      });
}

}  // namespace mfsim

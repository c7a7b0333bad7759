#include "mfsim/diagnostics/gaussian_reference.hpp"

#include <cmath>
#include <stdexcept>

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
                                                                  ConstVector log_density,
                                                                  bool paired) const {
  const int dim = this->dim();
  const double log_norm = log_norm_;
  ConstVector inv_std = inv_std_;
  const index_t unit = paired ? 2 : 1, rows = index_t(theta.extent(0));
  if (rows % unit != 0)
    throw std::invalid_argument("log-ratio sums: antithetic pairs need an even number of rows");
  LogRatioSums sums;
  Kokkos::parallel_reduce(
      "mfsim::GaussianReference::log_ratio_sums",
      Kokkos::RangePolicy<ExecSpace>(space, 0, rows / unit),
      KOKKOS_LAMBDA(index_t j, double& sum, double& squares, double& pair_squares) {
        double unit_sum = 0;
        for (index_t k = j * unit; k < (j + 1) * unit; ++k) {
          double q = 0;
          for (int c = 0; c < dim; ++c) {
            const double z = double(theta(k, c)) * double(inv_std(c));
            q += z * z;
          }
          const double r = double(log_density(k)) + 0.5 * q + log_norm;
          sum += r;
          squares += r * r;
          unit_sum += r;
        }
        pair_squares += unit_sum * unit_sum;
      },
      sums.sum, sums.squares, sums.pair_squares);
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

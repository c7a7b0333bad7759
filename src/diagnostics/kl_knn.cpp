#include "mfsim/diagnostics/kl_knn.hpp"

#include <cmath>

#include "mfsim/core/math.hpp"
#include "mfsim/diagnostics/knn.hpp"

namespace mfsim {
namespace {

double sum_log(const ExecSpace& space, ConstVector v) {
  double sum = 0;
  Kokkos::parallel_reduce(
      "mfsim::KlKnn::sum_log", Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(v.extent(0))),
      KOKKOS_LAMBDA(index_t i, double& acc) { acc += math::log(double(v(i))); }, sum);
  return sum;
}

}  // namespace

double digamma(double x) {
  double shift = 0;
  // Recurrence ψ(x) = ψ(x + 1) − 1/x up to where the asymptotic series is accurate to ~1e−15.
  for (; x < 12; x += 1) shift -= 1 / x;
  const double f = 1 / (x * x);
  return shift + std::log(x) - 0.5 / x -
         f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

namespace {

// The Kozachenko–Leonenko entropy from ε_k, the k-th neighbour distances of x among itself.
double entropy_estimate(const ExecSpace& space, ConstMatrix x, int k, ConstVector eps) {
  const double d = double(x.extent(1)), count = double(x.extent(0));
  const double log_unit_ball = 0.5 * d * std::log(math::pi) - std::lgamma(0.5 * d + 1);
  return digamma(count) - digamma(k) + log_unit_ball + d / count * sum_log(space, eps);
}

// The one-sample estimate from ε_k, the k-th neighbour distances of x among itself.
double standard_normal_estimate(const ExecSpace& space, ConstMatrix x, int k, ConstVector eps) {
  const index_t n = index_t(x.extent(0));
  const int dim = int(x.extent(1));
  double norm2 = 0;
  Kokkos::parallel_reduce(
      "mfsim::KlKnn::sum_norm2", Kokkos::RangePolicy<ExecSpace>(space, 0, n * dim),
      KOKKOS_LAMBDA(index_t e, double& acc) {
        const double c = x(e / dim, e % dim);
        acc += c * c;
      },
      norm2);
  const double d = dim, count = double(n);
  return -entropy_estimate(space, x, k, eps) + 0.5 * d * std::log(2 * math::pi) +
         norm2 / (2 * count);
}

// The two-sample estimate from ρ_k (as ε_k above) and the k-th neighbour distances in y.
double two_sample_estimate(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k, bool paired,
                           ConstVector rho, Workspace& scratch) {
  const index_t n = index_t(x.extent(0)), m = index_t(y.extent(0));
  const Vector nu = scratch.view<Vector>("knn_nu", n);
  kth_neighbour_distance(space, x, y, k, paired, nu, scratch);
  const double references = double(paired ? m - 1 : m);
  return double(x.extent(1)) / double(n) * (sum_log(space, nu) - sum_log(space, rho)) +
         std::log(references / double(n - 1));
}

Vector self_distances(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch) {
  const Vector eps = scratch.view<Vector>("knn_eps", x.extent(0));
  kth_neighbour_distance(space, x, x, k, true, eps, scratch);
  return eps;
}

}  // namespace

double kl_knn_standard_normal(const ExecSpace& space, ConstMatrix x, int k) {
  Workspace scratch;
  return standard_normal_estimate(space, x, k, self_distances(space, x, k, scratch));
}

double kl_knn_standard_normal(ConstMatrix x, int k) {
  return kl_knn_standard_normal(ExecSpace(), x, k);
}

double entropy_knn(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch) {
  return entropy_estimate(space, x, k, self_distances(space, x, k, scratch));
}

double entropy_knn(ConstMatrix x, int k, Workspace& scratch) {
  return entropy_knn(ExecSpace(), x, k, scratch);
}

double kl_knn_two_sample(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k, bool paired) {
  Workspace scratch;
  return two_sample_estimate(space, x, y, k, paired, self_distances(space, x, k, scratch), scratch);
}

double kl_knn_two_sample(ConstMatrix x, ConstMatrix y, int k, bool paired) {
  return kl_knn_two_sample(ExecSpace(), x, y, k, paired);
}

KlKnnEstimates kl_knn_estimates(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k,
                                bool paired, Workspace& scratch) {
  const Vector eps = self_distances(space, x, k, scratch);
  return {standard_normal_estimate(space, x, k, eps),
          two_sample_estimate(space, x, y, k, paired, eps, scratch)};
}

KlKnnEstimates kl_knn_estimates(ConstMatrix x, ConstMatrix y, int k, bool paired,
                                Workspace& scratch) {
  return kl_knn_estimates(ExecSpace(), x, y, k, paired, scratch);
}

}  // namespace mfsim

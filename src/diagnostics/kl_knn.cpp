#include "mfsim/diagnostics/kl_knn.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "mfsim/core/math.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/diagnostics/knn.hpp"

namespace mfsim {

double digamma(double x) {
  double shift = 0;
  // Recurrence ψ(x) = ψ(x + 1) − 1/x up to where the asymptotic series is accurate to ~1e−15.
  for (; x < 12; x += 1) shift -= 1 / x;
  const double f = 1 / (x * x);
  return shift + std::log(x) - 0.5 / x -
         f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

namespace {

// The mean of term(i) over i in [begin, end) and its sampling error (spread / √count).
template <class Term>
Estimate mean_of(const ExecSpace& space, index_t begin, index_t end, const char* label, Term term) {
  double sum = 0, squares = 0;
  Kokkos::parallel_reduce(
      label, Kokkos::RangePolicy<ExecSpace>(space, begin, end),
      KOKKOS_LAMBDA(index_t i, double& s, double& s2) {
        const double t = term(i);
        s += t;
        s2 += t * t;
      },
      sum, squares);
  const double count = double(end - begin), mean = sum / count;
  const double variance = count > 1 ? std::max(squares / count - mean * mean, 0.0) : 0.0;
  return {mean, std::sqrt(variance / std::max(count - 1, 1.0))};
}

double log_unit_ball(int dim) {
  return 0.5 * dim * std::log(math::pi) - std::lgamma(0.5 * dim + 1);
}

// The Kozachenko–Leonenko constant ψ(N) − ψ(k) + log V_D of N points.
double entropy_constant(double count, int k, int dim) {
  return digamma(count) - digamma(k) + log_unit_ball(dim);
}

Vector self_distances(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch,
                      const char* name = "knn_eps") {
  const Vector eps = scratch.view<Vector>(name, x.extent(0));
  kth_neighbour_distance(space, x, x, k, true, eps, scratch);
  return eps;
}

// Merges every draw into `lists`, in chunks of `chunk` rows.
void stream_draws(const ExecSpace& space, ConstMatrix x, const ReferenceDraws& draws, index_t chunk,
                  NeighbourLists lists, Workspace& scratch) {
  const Matrix buffer = scratch.view<Matrix>("knn_draws", chunk, x.extent(1));
  for (index_t j = 0; j < draws.count; j += chunk) {
    const index_t rows = std::min(chunk, draws.count - j);
    generate_reference_draws(space, draws, j, rows, buffer);
    merge_nearest_neighbours(
        space, x, Kokkos::subview(buffer, Kokkos::make_pair(index_t(0), rows), Kokkos::ALL), lists,
        scratch);
  }
}

}  // namespace

Estimate kl_knn_standard_normal(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch) {
  const index_t n = index_t(x.extent(0));
  const int dim = int(x.extent(1));
  const ConstVector eps = self_distances(space, x, k, scratch);
  Estimate e = mean_of(
      space, 0, n, "mfsim::KlKnn::one_sample", KOKKOS_LAMBDA(index_t i) {
        double norm2 = 0;
        for (int c = 0; c < dim; ++c) norm2 += double(x(i, c)) * double(x(i, c));
        return 0.5 * norm2 - dim * math::log(double(eps(i)));
      });
  e.value += 0.5 * dim * std::log(2 * math::pi) - entropy_constant(double(n), k, dim);
  return e;
}

Estimate kl_knn_standard_normal(ConstMatrix x, int k) {
  Workspace scratch;
  return kl_knn_standard_normal(ExecSpace(), x, k, scratch);
}

Estimate entropy_knn(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch) {
  const index_t n = index_t(x.extent(0));
  const int dim = int(x.extent(1));
  const ConstVector eps = self_distances(space, x, k, scratch);
  Estimate e = mean_of(
      space, 0, n, "mfsim::KlKnn::entropy",
      KOKKOS_LAMBDA(index_t i) { return dim * math::log(double(eps(i))); });
  e.value += entropy_constant(double(n), k, dim);
  return e;
}

Estimate entropy_knn(ConstMatrix x, int k, Workspace& scratch) {
  return entropy_knn(ExecSpace(), x, k, scratch);
}

Estimate kl_knn_two_sample(const ExecSpace& space, ConstMatrix x, ConstMatrix y, int k, bool paired,
                           Workspace& scratch) {
  const index_t n = index_t(x.extent(0)), m = index_t(y.extent(0));
  const int dim = int(x.extent(1));
  const ConstVector rho = self_distances(space, x, k, scratch);
  const Vector nu = scratch.view<Vector>("knn_nu", n);
  kth_neighbour_distance(space, x, y, k, paired, nu, scratch);
  Estimate e = mean_of(
      space, 0, n, "mfsim::KlKnn::two_sample", KOKKOS_LAMBDA(index_t i) {
        return dim * (math::log(double(nu(i))) - math::log(double(rho(i))));
      });
  e.value += std::log(double(paired ? m - 1 : m) / double(n - 1));
  return e;
}

Estimate kl_knn_two_sample(ConstMatrix x, ConstMatrix y, int k, bool paired) {
  Workspace scratch;
  return kl_knn_two_sample(ExecSpace(), x, y, k, paired, scratch);
}

double reference_bias(const ExecSpace& space, index_t n, int dim, int k,
                      const ReferenceDraws& draws, Workspace& scratch) {
  const Matrix y = scratch.view<Matrix>("knn_reference_sample", n, dim);
  generate_reference_draws(space, draws, 0, n, y);
  return kl_knn_standard_normal(space, y, k, scratch).value;
}

void generate_reference_draws(const ExecSpace& space, const ReferenceDraws& draws, index_t first,
                              index_t rows, Matrix out) {
  const int dim = int(out.extent(1));
  const CounterRng rng(draws.seed, rng_reference);
  const std::uint64_t base = (draws.stream << 40) + std::uint64_t(first);
  Kokkos::parallel_for(
      "mfsim::KlKnn::reference_draws", Kokkos::RangePolicy<ExecSpace>(space, 0, rows),
      KOKKOS_LAMBDA(index_t j) {
        for (int c = 0; c < dim; ++c)
          out(j, c) = real(rng.normal(base + std::uint64_t(j), std::uint32_t(c)));
      });
}

KnnKlEstimates knn_kl_estimates(const ExecSpace& space, ConstMatrix x, int k,
                                const ReferenceDraws& draws, Workspace& scratch) {
  const index_t n = index_t(x.extent(0)), half = n / 2, m = draws.count;
  const int dim = int(x.extent(1));
  if (n <= k || (m > 0 && m < k))
    throw std::invalid_argument("knn_kl_estimates: too few particles or reference draws for k");
  // ε_k among all particles, and among each half (the halves' rows of eps_half) where the halves
  // have k neighbours.
  const ConstVector eps = self_distances(space, x, k, scratch);
  const bool halves = half > k;
  const Vector eps_half = scratch.view<Vector>("knn_eps_half", halves ? 2 * half : 0);
  for (index_t h = 0; halves && h < 2; ++h) {
    const auto rows = Kokkos::make_pair(h * half, (h + 1) * half);
    const auto xs = Kokkos::subview(x, rows, Kokkos::ALL);
    kth_neighbour_distance(space, xs, xs, k, true, Kokkos::subview(eps_half, rows), scratch);
  }
  KnnKlEstimates out;
  const double log_2pi = std::log(2 * math::pi);
  const auto half_norm2 = KOKKOS_LAMBDA(index_t i) {
    double norm2 = 0;
    for (int c = 0; c < dim; ++c) norm2 += double(x(i, c)) * double(x(i, c));
    return 0.5 * norm2;
  };
  out.entropy = mean_of(
      space, 0, n, "mfsim::KlKnn::entropy",
      KOKKOS_LAMBDA(index_t i) { return dim * math::log(double(eps(i))); });
  out.entropy.value += entropy_constant(double(n), k, dim);
  out.one_sample = mean_of(
      space, 0, n, "mfsim::KlKnn::one_sample",
      KOKKOS_LAMBDA(index_t i) { return half_norm2(i) - dim * math::log(double(eps(i))); });
  out.one_sample.value += 0.5 * dim * log_2pi - entropy_constant(double(n), k, dim);
  // The halves: the mean over both halves of each half's estimate (NaN without halves).
  const double log_eps_half =
      !halves ? NAN
              : mean_of(
                    space, 0, 2 * half, "mfsim::KlKnn::log_eps_half",
                    KOKKOS_LAMBDA(index_t i) { return dim * math::log(double(eps_half(i))); })
                    .value;
  const double norm2_half =
      !halves ? NAN : mean_of(space, 0, 2 * half, "mfsim::KlKnn::norm2_half", half_norm2).value;
  out.entropy_half = entropy_constant(double(half), k, dim) + log_eps_half;
  out.one_sample_half = -out.entropy_half + 0.5 * dim * log_2pi + norm2_half;
  if (m == 0) return out;

  // ν_k among the fresh draws.
  const NeighbourLists lists = scratch.view<NeighbourLists>("knn_lists", n, k);
  reset_neighbour_lists(space, lists);
  stream_draws(space, x, draws, std::min(std::max(n, index_t(1024)), m), lists, scratch);
  const auto nu2 = Kokkos::subview(lists, Kokkos::ALL, k - 1);  // squared distances
  out.two_sample = mean_of(
      space, 0, n, "mfsim::KlKnn::two_sample", KOKKOS_LAMBDA(index_t i) {
        return 0.5 * dim * math::log(double(nu2(i))) - dim * math::log(double(eps(i)));
      });
  out.two_sample.value += std::log(double(m) / double(n - 1));
  return out;
}

}  // namespace mfsim

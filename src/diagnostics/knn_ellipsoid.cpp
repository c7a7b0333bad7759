#include "mfsim/diagnostics/knn_ellipsoid.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "mfsim/core/math.hpp"

namespace mfsim {
namespace {

constexpr int max_dim = knn_ellipsoid_max_dim, max_k = knn_ellipsoid_max_k;

// Eigenvalues (on a's diagonal) and eigenvectors (v's columns) of the symmetric d × d matrix a,
// by cyclic Jacobi rotations.
KOKKOS_INLINE_FUNCTION void jacobi_eigen(double a[max_dim][max_dim], double v[max_dim][max_dim],
                                         int d) {
  for (int p = 0; p < d; ++p)
    for (int q = 0; q < d; ++q) v[p][q] = p == q ? 1 : 0;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0, diag = 0;
    for (int p = 0; p < d; ++p) {
      diag += a[p][p] * a[p][p];
      for (int q = p + 1; q < d; ++q) off += a[p][q] * a[p][q];
    }
    if (off <= 1e-30 * diag) return;
    for (int p = 0; p < d; ++p)
      for (int q = p + 1; q < d; ++q) {
        if (a[p][q] == 0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t =
            (theta >= 0 ? 1 : -1) / (math::fabs(theta) + math::sqrt(theta * theta + 1));
        const double c = 1 / math::sqrt(t * t + 1), s = t * c;
        for (int r = 0; r < d; ++r) {  // columns p, q
          const double arp = a[r][p], arq = a[r][q];
          a[r][p] = c * arp - s * arq;
          a[r][q] = s * arp + c * arq;
        }
        for (int r = 0; r < d; ++r) {  // rows p, q
          const double apr = a[p][r], aqr = a[q][r];
          a[p][r] = c * apr - s * aqr;
          a[q][r] = s * apr + c * aqr;
        }
        for (int r = 0; r < d; ++r) {
          const double vrp = v[r][p], vrq = v[r][q];
          v[r][p] = c * vrp - s * vrq;
          v[r][q] = s * vrp + c * vrq;
        }
      }
  }
}

// log vol(E_i)/V_D for every point: its k nearest neighbours by brute force, their second-moment
// matrix about x_i, and the smallest scaled ellipsoid of its principal axes that holds them.
void log_ellipsoid_volumes(const ExecSpace& space, ConstMatrix x, int k, Vector out) {
  const index_t n = index_t(x.extent(0));
  const int d = int(x.extent(1));
  Kokkos::parallel_for(
      "mfsim::KnnEllipsoid::log_volumes", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i) {
        double best[max_k];
        index_t index[max_k];
        for (int j = 0; j < k; ++j) best[j] = 1e300, index[j] = i;
        for (index_t j = 0; j < n; ++j) {
          if (j == i) continue;
          double d2 = 0;
          for (int c = 0; c < d; ++c) {
            const double diff = double(x(j, c)) - double(x(i, c));
            d2 += diff * diff;
          }
          if (!(d2 < best[k - 1])) continue;
          int pos = k - 1;
          for (; pos > 0 && best[pos - 1] > d2; --pos)
            best[pos] = best[pos - 1], index[pos] = index[pos - 1];
          best[pos] = d2;
          index[pos] = j;
        }
        double a[max_dim][max_dim], v[max_dim][max_dim];
        for (int p = 0; p < d; ++p)
          for (int q = 0; q < d; ++q) a[p][q] = 0;
        for (int j = 0; j < k; ++j)
          for (int p = 0; p < d; ++p) {
            const double dp = double(x(index[j], p)) - double(x(i, p));
            for (int q = 0; q < d; ++q)
              a[p][q] += dp * (double(x(index[j], q)) - double(x(i, q))) / k;
          }
        jacobi_eigen(a, v, d);
        double largest = 0;
        for (int l = 0; l < d; ++l) largest = a[l][l] > largest ? a[l][l] : largest;
        double log_det = 0;
        for (int l = 0; l < d; ++l) {
          a[l][l] = a[l][l] > 1e-12 * largest ? a[l][l] : 1e-12 * largest;
          log_det += math::log(a[l][l]);
        }
        double scale2 = 0;  // s²: the largest Mahalanobis radius² of a neighbour
        for (int j = 0; j < k; ++j) {
          double r2 = 0;
          for (int l = 0; l < d; ++l) {
            double proj = 0;
            for (int p = 0; p < d; ++p)
              proj += (double(x(index[j], p)) - double(x(i, p))) * v[p][l];
            r2 += proj * proj / a[l][l];
          }
          scale2 = r2 > scale2 ? r2 : scale2;
        }
        out(i) = real(0.5 * d * math::log(scale2) + 0.5 * log_det);
      });
}

// The mean and standard error over the points of −log vol(E_i)/V_D + |x_i|²/2 (`kl`), or of
// log vol(E_i)/V_D (the entropy), after the checks and the volumes.
Estimate mean_terms(const ExecSpace& space, ConstMatrix x, int k, bool kl, Workspace& scratch) {
  const index_t n = index_t(x.extent(0));
  const int d = int(x.extent(1));
  if (d > max_dim || k <= d || k > max_k || n <= k)
    throw std::invalid_argument("knn ellipsoid estimate: needs D <= " + std::to_string(max_dim) +
                                " < k <= " + std::to_string(max_k) +
                                " < N (got D = " + std::to_string(d) +
                                ", k = " + std::to_string(k) + ", N = " + std::to_string(n) + ")");
  const Vector log_volume = scratch.view<Vector>("knn_ellipsoid_log_volume", n);
  log_ellipsoid_volumes(space, x, k, log_volume);
  double sum = 0, squares = 0;
  Kokkos::parallel_reduce(
      "mfsim::KnnEllipsoid::sum", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, double& s, double& s2) {
        double t = double(log_volume(i));
        if (kl) {
          double norm2 = 0;
          for (int c = 0; c < d; ++c) norm2 += double(x(i, c)) * double(x(i, c));
          t = 0.5 * norm2 - t;
        }
        s += t;
        s2 += t * t;
      },
      sum, squares);
  const double count = double(n), mean = sum / count;
  return {mean, std::sqrt(std::max(squares / count - mean * mean, 0.0) / (count - 1))};
}

// ψ(N) − ψ(k) + log V_D.
double ball_constant(index_t n, int k, int d) {
  return digamma(double(n)) - digamma(k) + 0.5 * d * std::log(math::pi) - std::lgamma(0.5 * d + 1);
}

}  // namespace

Estimate entropy_knn_ellipsoid(const ExecSpace& space, ConstMatrix x, int k, Workspace& scratch) {
  Estimate e = mean_terms(space, x, k, false, scratch);
  e.value += ball_constant(index_t(x.extent(0)), k, int(x.extent(1)));
  return e;
}

Estimate kl_knn_ellipsoid_standard_normal(const ExecSpace& space, ConstMatrix x, int k,
                                          Workspace& scratch) {
  const int d = int(x.extent(1));
  Estimate e = mean_terms(space, x, k, true, scratch);
  e.value += 0.5 * d * std::log(2 * math::pi) - ball_constant(index_t(x.extent(0)), k, d);
  return e;
}

EllipsoidReference ellipsoid_reference(const ExecSpace& space, index_t n, int dim,
                                       const ReferenceDraws& draws, Workspace& scratch) {
  EllipsoidReference r;
  r.k = 2 * dim + 1;
  const Matrix y = scratch.view<Matrix>("knn_ellipsoid_reference", n, dim);
  generate_reference_draws(space, draws, 0, n, y);
  r.full = kl_knn_ellipsoid_standard_normal(space, y, r.k, scratch);
  r.half = kl_knn_ellipsoid_standard_normal(
               space, Kokkos::subview(y, Kokkos::make_pair(index_t(0), n / 2), Kokkos::ALL), r.k,
               scratch)
               .value;
  return r;
}

EllipsoidKl kl_knn_ellipsoid(const ExecSpace& space, ConstMatrix x,
                             const EllipsoidReference& reference, Workspace& scratch) {
  const index_t n = index_t(x.extent(0)), half = n / 2;
  const Estimate raw = kl_knn_ellipsoid_standard_normal(space, x, reference.k, scratch);
  double halves = 0;
  for (index_t h = 0; h < 2; ++h)
    halves +=
        kl_knn_ellipsoid_standard_normal(
            space, Kokkos::subview(x, Kokkos::make_pair(h * half, (h + 1) * half), Kokkos::ALL),
            reference.k, scratch)
            .value /
        2;
  return {{raw.value - reference.full.value,
           std::hypot(raw.standard_error, reference.full.standard_error)},
          halves - reference.half};
}

}  // namespace mfsim

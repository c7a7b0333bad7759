#pragma once
// Every KL estimator of mfsim on one sample of a calibration law (detail/kl_calibration_laws.hpp,
// app/kl_calibration_flows.hpp), with its standard error and reliability flag, as the observers
// compute them: what the harness (benchmarks/kl_calibration.cpp) tabulates and its tests check.
// Private to the library's tests and benchmarks.
//   transport        mean of the exact per-point log-density ratio (what kl_transport computes
//                    from the log-densities its particles carry), ± its sampling error
//   knn              Kozachenko–Leonenko against the known N(0, I)
//   knn_corrected    knn minus knn on a fresh N(0, I) sample of the same size (bias_t0)
//   two_sample_init  Wang–Kulkarni–Verdú against the sample's own initial points, each point's
//                    own left out (mfsim's two-sample estimator before the fresh draws)
//   two_sample       Wang–Kulkarni–Verdú against 10× as many fresh draws of N(0, I), streamed
//   knn_ellipsoid    the geometric kNN estimate of Lord–Sun–Bollt less its value at ρ₀
//                    (knn_ellipsoid.hpp), k = 2D + 1, where it applies
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "detail/kl_calibration_laws.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/kl_reliability.hpp"
#include "mfsim/diagnostics/knn_ellipsoid.hpp"

namespace mfsim::calibration {

// Rows 0, stride, 2·stride, ... of a row-major [.][dim] array, on the device.
inline Matrix rows_of(const std::vector<double>& values, index_t rows, int dim,
                      index_t stride = 1) {
  Matrix m("calibration::x", rows, dim);
  auto h = Kokkos::create_mirror_view(m);
  for (index_t i = 0; i < rows; ++i)
    for (int j = 0; j < dim; ++j) h(i, j) = real(values[std::size_t(i * stride * dim + j)]);
  Kokkos::deep_copy(m, h);
  return m;
}

// The mean of per-point log-ratios with its sampling error (the transport estimate); with
// `paired`, the error of the antithetic pairs' means (points 2j, 2j + 1), as the observer's.
inline Estimate mean_log_ratio(const std::vector<double>& log_ratio, bool paired) {
  const std::size_t unit = paired ? 2 : 1;
  const double draws = double(log_ratio.size() / unit);
  double sum = 0, squares = 0;
  for (std::size_t k = 0; k + unit <= log_ratio.size(); k += unit) {
    const double r = paired ? 0.5 * (log_ratio[k] + log_ratio[k + 1]) : log_ratio[k];
    sum += r, squares += r * r;
  }
  const double mean = sum / draws;
  return {mean, std::sqrt(std::max(squares / draws - mean * mean, 0.0) / (draws - 1))};
}

struct Result {
  std::string estimator;
  double value, standard_error;
  bool reliable;
  double half = NAN;  // the halving check's value, where the estimator has one
};

// The estimators on the m rows of `s` (its x, whitened; its z, the points at t = 0; its log
// ratios): the transport estimate on all of them, the kNN estimates on one member of each
// antithetic pair (rows 0, 2, 4, ...) when `antithetic`, as the observers do. `seed` picks the
// fresh N(0, I) sample of knn_corrected.
inline std::vector<Result> estimate_all(const Sample& s, int dim, int k, bool antithetic,
                                        std::uint64_t seed, Workspace& scratch) {
  std::vector<Result> results;
  const index_t m = index_t(s.log_ratio.size());
  const Estimate transport = mean_log_ratio(s.log_ratio, antithetic);
  results.push_back(
      {"transport", transport.value, transport.standard_error, kl_reliable(transport, 0)});

  const index_t stride = antithetic ? 2 : 1, n = m / stride;
  const Matrix x = rows_of(s.x, n, dim, stride);
  const ExecSpace space;
  const ReferenceDraws draws{7, std::uint64_t(dim), 10 * n};
  const KnnKlEstimates e = knn_kl_estimates(space, x, k, draws, scratch);
  const double b0 = reference_bias(space, n, dim, k, {8, std::uint64_t(dim), n}, scratch);
  const double bound = knn_bias_bound(e.one_sample.value - e.one_sample_half, dim, b0);
  results.push_back({"knn", e.one_sample.value, e.one_sample.standard_error,
                     kl_reliable(e.one_sample, bound), e.one_sample_half});

  const Sample reference = sample({"gaussian", dim, 0}, m, seed);
  const Matrix y = rows_of(reference.x, n, dim, stride);
  const Estimate bias = kl_knn_standard_normal(space, y, k, scratch);
  const Estimate corrected{e.one_sample.value - bias.value,
                           std::hypot(e.one_sample.standard_error, bias.standard_error)};
  results.push_back({"knn_corrected", corrected.value, corrected.standard_error,
                     kl_reliable(corrected, bound + std::fabs(bias.value))});

  const Matrix z = rows_of(s.z, n, dim, stride);
  const Estimate initial = kl_knn_two_sample(space, x, z, k, true, scratch);
  results.push_back({"two_sample_init", initial.value, initial.standard_error, false});

  results.push_back({"two_sample", e.two_sample.value, e.two_sample.standard_error,
                     kl_reliable(e.two_sample, two_sample_bias_bound(e.two_sample.value,
                                                                     e.one_sample.value, bound))});

  // The geometric (local-ellipsoid) estimate less its value at ρ₀, as kl_knn_ellipsoid.
  if (knn_ellipsoid_applies(n, dim)) {
    const EllipsoidReference ref =
        ellipsoid_reference(space, n, dim, {9, std::uint64_t(dim), n}, scratch);
    const EllipsoidKl ellipsoid = kl_knn_ellipsoid(space, x, ref, scratch);
    results.push_back(
        {"knn_ellipsoid", ellipsoid.kl.value, ellipsoid.kl.standard_error,
         kl_reliable(ellipsoid.kl, ellipsoid_bias_bound(ellipsoid.kl.value, ellipsoid.half, dim,
                                                        e.one_sample.value, corrected.value)),
         ellipsoid.half});
  }
  return results;
}

}  // namespace mfsim::calibration

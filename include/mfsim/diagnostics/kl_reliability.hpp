#pragma once
// When a KL or entropy estimate can be trusted: the rules behind every `<name>_reliable` flag,
// calibrated on the laws of the calibration harness (benchmarks/kl_calibration.cpp,
// docs/diagnostics.md) so that every value they pass was within kl_tolerance of the truth there.
//
// A reliable value is one whose error bound, z·(standard error) plus a bias bound, is within the
// tolerance. The transport estimate is unbiased (up to the integrator's error), its bound its
// sampling error alone. A kNN estimate's bias falls as its sample grows, like N^(−a) with
// a ≈ 2/D for smooth laws (Singh–Póczos 2016) and faster near lower-dimensional sets; so its
// change Δ on halving the sample, extrapolated as a geometric series, Δ / (2^a − 1), estimates the
// bias left at the full sample. That change is itself noisy (small by chance where the bias is
// small), so the bound adds the estimator's bias at ρ₀ for the same N and D (reference_bias), the
// least bias it has near ρ₀.
//   With ρ₀ known, the two-sample estimate is the one-sample estimate less the error of the
// draws' kNN density estimate of ρ₀ at the particles (their difference, up to O(1/N) constants):
// its bias is bounded by the one-sample bound plus |two-sample − one-sample|, and
// kl_knn_corrected's by the one-sample bound plus |bias_t0|. These rules passed no value outside
// the tolerance on the calibration grid (docs/diagnostics.md); the harness is what to rerun after
// changing them.
#include <algorithm>
#include <cmath>

#include "mfsim/diagnostics/kl_knn.hpp"

namespace mfsim {

// max(0.1 nats, 5 % of the value): the accuracy a reliable value promises.
inline double kl_tolerance(double value) {
  return std::max(0.1, 0.05 * std::fabs(value));
}

// Standard errors to add to the bias bound: a value whose bound sits at the tolerance is passed
// outside it by its own noise in about 1 case in 80, one well inside far more rarely; on the
// calibration grid 2 standard errors passed two transport values outside the tolerance, 2.5 none.
inline constexpr double kl_error_multiplier = 2.5;

// The bias bound of a one-sample kNN estimate in D dimensions whose value changed by `change` on
// halving its sample, with `reference` its reference_bias.
inline double knn_bias_bound(double change, int dim, double reference) {
  return std::fabs(change) / (std::pow(2.0, 2.0 / dim) - 1) + std::fabs(reference);
}

// The bias bound of the two-sample estimate, from the one-sample estimate's value and bound.
inline double two_sample_bias_bound(double two_sample, double one_sample, double one_sample_bound) {
  return one_sample_bound + std::fabs(two_sample - one_sample);
}

// The bias bound of kl_knn_ellipsoid: its halving change extrapolated, plus its distance to the
// nearer of kl_knn and kl_knn_corrected. Its value at ρ₀ is subtracted, but its bias still varies
// with the law (by −0.11 on a mildly stretched law in D = 10 where its halving change was 0.002);
// the ball estimates are biased otherwise, so where one agrees with it both are likely right.
inline double ellipsoid_bias_bound(double ellipsoid, double ellipsoid_half, int dim, double knn,
                                   double knn_corrected) {
  return knn_bias_bound(ellipsoid - ellipsoid_half, dim, 0) +
         std::min(std::fabs(ellipsoid - knn), std::fabs(ellipsoid - knn_corrected));
}

// A value within the tolerance, given its standard error and a bound on its bias (0 for the
// transport estimate; knn_bias_bound for kNN, summed over the halving checks of a two-sample
// estimate; for the mean of several slices' estimates, the mean of their bounds).
inline bool kl_reliable(const Estimate& e, double bias_bound) {
  return std::isfinite(e.value) && std::isfinite(e.standard_error) &&
         kl_error_multiplier * e.standard_error + bias_bound <= kl_tolerance(e.value);
}

}  // namespace mfsim

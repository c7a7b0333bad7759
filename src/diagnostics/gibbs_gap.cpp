#include "mfsim/diagnostics/gibbs_gap.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "mfsim/core/random.hpp"

namespace mfsim {
namespace {

// U(θ) − Ψ(θ) = λ'|θ|²/2 + μβ s_ε(|a|₂) s_ε(‖w‖) of row k, a its first `outputs` coordinates.
KOKKOS_INLINE_FUNCTION double regulariser_potential(ConstMatrix theta, index_t k, int dim,
                                                    int outputs, double decay, double penalty,
                                                    double eps) {
  double norm2 = 0;
  for (int c = 0; c < dim; ++c) norm2 += double(theta(k, c)) * double(theta(k, c));
  double u = 0.5 * decay * norm2;
  if (penalty > 0)
    u += penalty *
         SmoothedPathWeight::at(Kokkos::subview(theta, k, Kokkos::ALL), dim, eps, outputs).value;
  return u;
}

// −(Ψ + μβ s_ε s_ε)(ζ_j)/λ: the importance weight's exponent of draw j.
KOKKOS_INLINE_FUNCTION double exponent(ConstVector psi, ConstMatrix points, index_t j, int dim,
                                       int outputs, double penalty, double eps, double lambda) {
  return -(double(psi(j)) + regulariser_potential(points, j, dim, outputs, 0.0, penalty, eps)) /
         lambda;
}

// The reference draws: standard normals keyed by (seed, draw, coordinate). A free function, not
// the constructor: nvcc refuses an extended lambda whose enclosing function is a constructor.
void draw_normals(Matrix normals, const CounterRng& rng) {
  const int dim = int(normals.extent(1));
  Kokkos::parallel_for(
      "mfsim::GibbsGap::draw", Kokkos::RangePolicy<ExecSpace>(0, index_t(normals.extent(0))),
      KOKKOS_LAMBDA(index_t j) {
        for (int c = 0; c < dim; ++c) normals(j, c) = real(rng.normal(std::uint64_t(j), c));
      });
}

}  // namespace

GibbsGap::GibbsGap(const Model& model, const PotentialModel& potential, const Regularisation& r,
                   index_t samples, std::uint64_t seed)
    : potential_(potential), regularisation_(r) {
  const int dim = model.groups()[0].dim();
  normals_ = Matrix("mfsim::GibbsGap::normals", samples, dim);
  points_ = Matrix("mfsim::GibbsGap::points", samples, dim);
  psi_ = Vector("mfsim::GibbsGap::psi", std::max(samples, model.groups()[0].local_count));
  draw_normals(normals_, CounterRng(seed, rng_gibbs_reference));
}

Estimate GibbsGap::operator()(const FlowPoint& p, double entropy, double lambda) {
  const Regularisation& r = regularisation_;
  const GroupSpec& group = p.model.groups()[0];
  const int dim = group.dim(), outputs = group.outputs;
  const double decay = r.weight_decay, eps = r.path_norm_smoothing;
  const double penalty = r.path_norm_penalty * group.path_norm_scale;

  // E_ρ[U] over every rank's particles.
  ConstMatrix theta = p.state.theta[0];
  const index_t local = index_t(theta.extent(0));
  Vector psi = psi_;
  potential_.potential(p.space, p.evaluation, theta,
                       Kokkos::subview(psi, Kokkos::make_pair(index_t(0), local)), scratch_);
  double mean_u = 0;
  Kokkos::parallel_reduce(
      "mfsim::GibbsGap::mean_potential", Kokkos::RangePolicy<ExecSpace>(p.space, 0, local),
      KOKKOS_LAMBDA(index_t k, double& acc) {
        acc += double(psi(k)) + regulariser_potential(theta, k, dim, outputs, decay, penalty, eps);
      },
      mean_u);
  mean_u = p.model.comm().sum(mean_u) / double(group.global_count);

  // log Z: the same draws on every rank, so no reduction.
  const index_t samples = index_t(normals_.extent(0));
  ConstMatrix normals = normals_;
  Matrix points = points_;
  const double scale = std::sqrt(lambda / decay);
  Kokkos::parallel_for(
      "mfsim::GibbsGap::scale_draws", Kokkos::RangePolicy<ExecSpace>(p.space, 0, samples),
      KOKKOS_LAMBDA(index_t j) {
        for (int c = 0; c < dim; ++c) points(j, c) = real(scale * double(normals(j, c)));
      });
  const auto psi_draws = Kokkos::subview(psi, Kokkos::make_pair(index_t(0), samples));
  potential_.potential(p.space, p.evaluation, points, psi_draws, scratch_);
  // exponent_j = −(Ψ + μβ s s)(ζ_j)/λ; log-mean-exp about the largest exponent.
  double largest = -DBL_MAX;
  Kokkos::parallel_reduce(
      "mfsim::GibbsGap::max_exponent", Kokkos::RangePolicy<ExecSpace>(p.space, 0, samples),
      KOKKOS_LAMBDA(index_t j, double& acc) {
        const double e = exponent(psi, points, j, dim, outputs, penalty, eps, lambda);
        if (e > acc) acc = e;
      },
      Kokkos::Max<double>(largest));
  // Σ w_j and Σ w_j² with w_j = exp(exponent_j − largest).
  double sum = 0, squares = 0;
  Kokkos::parallel_reduce(
      "mfsim::GibbsGap::sum_exp", Kokkos::RangePolicy<ExecSpace>(p.space, 0, samples),
      KOKKOS_LAMBDA(index_t j, double& acc, double& acc2) {
        const double w =
            math::exp(exponent(psi, points, j, dim, outputs, penalty, eps, lambda) - largest);
        acc += w;
        acc2 += w * w;
      },
      sum, squares);
  const double s = double(samples), mean_w = sum / s;
  const double variance_w = std::max(0.0, squares / s - mean_w * mean_w) * s / (s - 1);
  const double log_z =
      0.5 * dim * std::log(2 * math::pi * lambda / decay) + largest + std::log(mean_w);
  return {-entropy + mean_u / lambda + log_z, std::sqrt(variance_w / s) / mean_w};
}

}  // namespace mfsim

#pragma once
// The self-consistency check of mean-field Langevin dynamics (MATH.md §2.4): the KL divergence of
// the particle law ρ from its proximal Gibbs measure
//   ρ̂ ∝ exp(−U/λ),   U(θ) = Ψ_ρ(θ) + λ'|θ|²/2 + μ β s_ε(|a|₂) s_ε(‖w‖)  (a ∈ R^c),
// built from the current potential Ψ_ρ (PotentialModel). ρ̂ = ρ exactly at the stationary law
// ρ* of the flow, and F_λ(ρ) − F_λ(ρ*) ≤ λ KL(ρ || ρ̂) (Nitanda–Wu–Suzuki 2022; Chizat 2022), so
// the gap falls to 0 (up to the estimators' errors) as the flow converges. With H the
// Kozachenko–Leonenko entropy of ρ,
//   KL(ρ || ρ̂) = −H(ρ) + E_ρ[U]/λ + log Z,   Z = ∫ exp(−U/λ) dθ,
// and log Z by importance sampling from the Gibbs measure of the weight decay alone,
// q = N(0, (λ/λ') I_D):
//   Z = (2πλ/λ')^{D/2} E_q[exp(−(Ψ_ρ + μ β s_ε s_ε)/λ)],
// over S fixed draws (common random numbers from one observation to the next), with the
// importance-sampling error of log Z by the delta method (MATH.md §2.4):
//   se(log Ẑ) = sd(w_j) / (√S · mean(w_j)),   w_j = exp(−(Ψ_ρ + μ β s_ε s_ε)(ζ_j)/λ).
// Valid for one group of two-layer units in D ≤ 4 dimensions with λ, λ' > 0
// (docs/diagnostics.md).
#include <cstdint>

#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/flow/observer.hpp"
#include "mfsim/flow/regularisation.hpp"
#include "mfsim/models/potential_model.hpp"

namespace mfsim {

class GibbsGap {
 public:
  static constexpr int max_dim = 4;

  GibbsGap(const Model& model, const PotentialModel& potential, const Regularisation& r,
           index_t samples, std::uint64_t seed);

  // KL(ρ || ρ̂) at the flow point, for the entropy estimate `entropy` of ρ (nats, every rank)
  // and the temperature `lambda` = λ(t), with se(log Ẑ) as its standard error (the entropy's is
  // the caller's to add). Collective.
  Estimate operator()(const FlowPoint& p, double entropy, double lambda);

 private:
  const PotentialModel& potential_;
  Regularisation regularisation_;
  Matrix normals_;  // standard normal draws, [samples][D]
  Matrix points_;   // the draws of q at the current λ
  Vector psi_;      // Ψ at the particles or the draws
  Workspace scratch_;
};

}  // namespace mfsim

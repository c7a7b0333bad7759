#pragma once
// The optional capability of a model to evaluate its potential Ψ_ρ(θ) = δL/δρ(θ) (MATH.md (A3))
// at arbitrary parameter points, not only at its particles: what the proximal Gibbs measure
// ∝ exp(−(Ψ_ρ + λ'|θ|²/2 + μ P)/λ) of mean-field Langevin dynamics needs (GibbsGap, MATH.md §2.4).
#include "mfsim/core/workspace.hpp"
#include "mfsim/models/evaluation.hpp"

namespace mfsim {

class PotentialModel {
 public:
  virtual ~PotentialModel() = default;
  // psi(j) = Ψ_ρ(points(j, ·)) for the law of the state that `e` was evaluated at (its residuals);
  // points are rows shaped like the model's (single) particle group. Pointwise: no rank
  // reduction is needed or done. Intermediate values in `scratch`. Runs on `space`.
  virtual void potential(const ExecSpace& space, const Evaluation& e, ConstMatrix points,
                         Vector psi, Workspace& scratch) const = 0;
  void potential(const Evaluation& e, ConstMatrix points, Vector psi, Workspace& scratch) const {
    potential(ExecSpace(), e, points, psi, scratch);
  }
};

}  // namespace mfsim

#pragma once
// The reference law of the KL diagnostics: a group's Gaussian initial law ρ₀ = N(0, diag(σ_j²))
// with the per-column stds GroupSpec::init_std (also when the run started from a file).
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

class GaussianReference {
 public:
  explicit GaussianReference(const GroupSpec& group);

  int dim() const { return int(inv_std_.extent(0)); }
  // Σ_k r_k and Σ_k r_k² of r_k = log_density_k − log ρ₀(θ_k) over the rows of theta (this rank's
  // particles): N times the transport estimate (K1) of KL(ρ_t || ρ₀), and what its sampling
  // error needs. With `paired` (antithetic pairs: rows 2j, 2j + 1, an even number of rows) the
  // pairs, not the particles, are the independent draws: pair_squares = Σ_j (r_2j + r_2j+1)²;
  // without, pair_squares = squares.
  struct LogRatioSums {
    double sum = 0, squares = 0, pair_squares = 0;
  };
  LogRatioSums log_ratio_sums(const ExecSpace& space, ConstMatrix theta, ConstVector log_density,
                              bool paired = false) const;
  // out row k = (row k·stride of θ) / σ column by column: maps ρ₀ to N(0, I). stride 2 keeps one
  // member of each antithetic pair (rows 2j, 2j + 1); out has rows(θ)/stride rows.
  void whiten(const ExecSpace& space, ConstMatrix theta, Matrix out, index_t stride = 1) const;

 private:
  Vector inv_std_;
  double log_norm_ = 0;  // Σ_j ½ log(2π σ_j²)
};

}  // namespace mfsim

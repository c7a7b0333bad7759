#pragma once
// kNN estimates of KL(ρ_t || ρ₀) for each particle group (MATH.md §5.3), on whitened coordinates
// (θ_j / σ_j with the initial stds):
//   kl_<label>_knn              Kozachenko–Leonenko, against the known Gaussian ρ₀
//   kl_<label>_knn_two_sample   Wang–Kulkarni–Verdú, against the run's initial particles, each
//                               particle's own initial position left out (exactly 0 at t = 0)
//   kl_<label>_knn_bias_t0      the Kozachenko–Leonenko estimate on the initial particles, whose
//                               true KL to ρ₀ is 0: the estimator's measured bias (a constant)
//   kl_<label>_knn_corrected    kl_<label>_knn − kl_<label>_knn_bias_t0 (first-order correction:
//                               the bias at ρ_t is taken to be the bias at ρ₀)
// The constructor prints one warning line per group in the regime where the estimator is known to
// be unreliable (docs/corrections.md: N per slice < 10^(D/2), or |bias_t0| > 0.1).
// A group of L slices (ResNet layers) is estimated slice by slice from each slice's particles, and
// the slices' estimates are averaged. The initial particles are the state the run starts from
// for a fresh run, and frame 0 of init.path on a restart (Diagnostics). With several ranks, the
// particles are gathered to rank 0 for the neighbour search (a serial O(N²/L) search per group;
// Diagnostics caps the gathered size), and rank 0 broadcasts the estimates.
#include <vector>

#include "mfsim/diagnostics/gaussian_reference.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class KlKnnObserver final : public Observer {
 public:
  // With `notes`, a warning where the estimate is unreliable (the rule of docs/corrections.md).
  KlKnnObserver(const Model& model, const ParticleState& initial, int k, index_t every,
                std::ostream* notes = nullptr);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "kl_knn"; }
  index_t every() const override { return every_; }

 private:
  std::vector<GaussianReference> references_;
  std::vector<Matrix> initial_, whitened_;  // per group, whitened, all particles (rank 0 only)
  std::vector<double> bias_;                // per group, the estimate at t = 0 (rank 0 only)
  Workspace scratch_;                       // the neighbour searches' panels and distances
  int k_;
  index_t every_;
};

}  // namespace mfsim

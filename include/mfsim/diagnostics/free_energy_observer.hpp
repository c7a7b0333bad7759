#pragma once
// The objective of the regularised flow (flow/regularisation.hpp, MATH.md §2.4),
//   free_energy = loss + weight_decay_term + path_norm_penalty_term + entropy_term,
//   weight_decay_term      = (λ'/2) Σ_groups E|θ|²
//   path_norm_penalty_term = μ Σ_groups P_ε        (groups of two-layer units)
//   entropy_term           = −λ(t) Σ_groups H      (H: Kozachenko–Leonenko, on whitened
//                                                   coordinates plus Σ_j log σ_j; a group of
//                                                   L slices takes the mean of its slices; with
//                                                   antithetic pairs, on one member of each, as
//                                                   the kNN KL: a twin is a neighbour no
//                                                   independent draw would be)
// with `temperature` = λ(t) and, when λ > 0, entropy_<label>_knn per group, so that a user can
// recompose F_λ. With a GibbsGap it also writes gibbs_gap = KL(ρ || ρ̂). The entropy gathers
// each group to rank 0 as the kNN KL does. Each entropy is written with its _stderr and
// _reliable (kl_reliability.hpp, the halving check), and free_energy and gibbs_gap inherit them:
// their _stderr is the entropy's error carried through (λ √Σ_g se_g², and for the gap
// √(Σ_g se_g² + se_logZ²) with se_logZ the importance-sampling error of log Z, GibbsGap), their
// _reliable is 1 where every group's entropy is reliable (and for the gap, where 2.5 se_logZ is
// within its tolerance too).
#include <memory>
#include <optional>
#include <vector>

#include "mfsim/diagnostics/estimate_series.hpp"
#include "mfsim/diagnostics/gaussian_reference.hpp"
#include "mfsim/diagnostics/gibbs_gap.hpp"
#include "mfsim/diagnostics/kl_knn_observer.hpp"
#include "mfsim/flow/observer.hpp"
#include "mfsim/flow/regularisation.hpp"

namespace mfsim {

class FreeEnergyObserver final : public Observer {
 public:
  // The entropies' kNN search uses knn.k and knn.antithetic (its other settings are the kNN KL's).
  // With `notes`, a warning the first time an estimate is unreliable.
  FreeEnergyObserver(const Model& model, const Regularisation& r, const KnnSettings& knn,
                     index_t every, std::unique_ptr<GibbsGap> gibbs_gap = nullptr,
                     std::optional<Console> notes = std::nullopt);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "free_energy"; }
  index_t every() const override { return every_; }

 private:
  // Each group's entropy H_g (every rank), and the bound of its bias.
  struct GroupEntropy {
    Estimate h;
    double bias_bound = 0;
  };
  std::vector<GroupEntropy> entropy(const FlowPoint& p);

  Regularisation regularisation_;
  int k_;
  index_t stride_;  // 2 with antithetic pairs: one member of each
  index_t every_;
  std::vector<GaussianReference> references_;
  std::vector<Matrix> whitened_;        // per group, one of each pair or all (rank 0 only)
  std::vector<double> log_std_;         // per group, Σ_j log σ_j: the whitening's entropy shift
  std::vector<double> reference_bias_;  // per group, reference_bias of a slice (rank 0)
  Workspace scratch_;
  std::unique_ptr<GibbsGap> gibbs_gap_;
  EstimateSeries series_;
};

}  // namespace mfsim

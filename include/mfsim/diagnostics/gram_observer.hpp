#pragma once
// Observables of the Gram matrix G = Σ_parts G_part (MATH.md §2.5, §3.6), from the model's
// GramModel::accumulate_gram:
//   gram_lambda_min, gram_lambda_max   extreme eigenvalues of G
//   gram_<part>_lambda_min             λ_min of each part, for models with several parts
//   gram_<part>_lambda_min_layers [L]  with gram_layers, for a part that is a sum over layers
//                                      (GramModel::gram_layers, the ResNet's G₁ = Σ_l G₁,l):
//                                      λ_min(G_part,l) of every layer; Weyl's inequality gives
//                                      Σ_l λ_min(G_part,l) ≤ λ_min(G_part)
//   gram_spectrum [n]                  every eigenvalue, ascending (optional)
//   gram_matrix [n][n]                 G itself (optional, small n)
//   energy_identity_error              |(1/n²) rᵀGr − S| / max(S, (1/n²) rᵀGr), S the mean squared
//                                      particle speed: (A11) says 0 up to rounding
//   loss_bound                         L(t₀) exp(−(2/n) ∫_{t₀}^t λ_min(G) du) (A12), the integral
//                                      by the trapezoid rule over this observer's observation
//                                      times; a restart continues it (continue_from)
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "mfsim/diagnostics/settings.hpp"
#include "mfsim/flow/observer.hpp"
#include "mfsim/models/gram_model.hpp"

namespace mfsim {

class GramObserver final : public Observer {
 public:
  // `gram` is `model`'s Gram capability (gram_model(model)). With `log` (a notes stream), the
  // first time the Lanczos solver hands over to the dense one is noted there, one line (root
  // rank: pass null elsewhere).
  GramObserver(const Model& model, const GramModel& gram, const DiagnosticsSettings& settings,
               std::ostream* log = nullptr);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "gram"; }
  index_t every() const override { return every_; }
  // On a restart: the bound the init file holds at the restart step, B(t_r). The run then writes
  // B(t_r) exp(−(2/n) ∫_{t_r}^t λ_min), the original run's bound continued, instead of starting
  // again from L(t_r).
  void continue_from(double loss_bound) { continued_bound_ = loss_bound; }
  // (A12) bounds the loss of the plain gradient flow only: a regularised or noisy flow (weight
  // decay, path-norm penalty, temperature) writes no loss_bound.
  void omit_loss_bound() { loss_bound_ = false; }
  // (A11) is an identity of the training samples' residual: G on a probe set (the population
  // flow's) writes no energy_identity_error.
  void omit_energy_identity() { energy_identity_ = false; }

 private:
  const GramModel& model_;
  std::vector<std::string> parts_;
  std::vector<Matrix> part_gram_;
  Matrix gram_, layer_gram_;          // layer_gram_: with gram_layers, one layer's term at a time
  HostMatrix host_part_, host_gram_;  // host copies (preallocated: an observation allocates none)
  Workspace scratch_;
  EigenSolverKind solver_;
  std::ostream* log_;
  bool fallback_noted_ = false;
  // λ_min and λ_max of `host`, noting the first dense fallback of the Lanczos solver.
  ExtremeEigenvalues extremes(const HostMatrix& host, const std::string& part, index_t step);
  bool spectrum_, matrix_, layers_;
  index_t every_;
  // (A12): the loss at this run's first observation (or the continued bound) and the running
  // ∫ λ_min dt.
  std::optional<double> continued_bound_;
  bool loss_bound_ = true, energy_identity_ = true;
  bool started_ = false;
  double initial_loss_ = 0, integral_ = 0, last_time_ = 0, last_lambda_min_ = 0;
};

}  // namespace mfsim

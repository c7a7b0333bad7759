#pragma once
// kl_<label>_transport: KL(ρ_t || ρ₀) of each particle group by log-density transport (K1):
//   KL ≈ (1/N) Σ_k [ log ρ_t(θ_k) − log ρ₀(θ_k) ],
// log ρ_t(θ_k) integrated along the characteristic (ParticleState::log_density, d/dt = ΔΨ) and ρ₀
// the group's Gaussian initial law. For a group of L slices (ResNet layers) of equal size this is
// also the mean over slices of each slice's KL, (1/L) Σ_l KL_l. Valid for C² activations only
// (for ReLU, ΔΨ is a measure on the data hyperplanes).
#include <vector>

#include "mfsim/diagnostics/gaussian_reference.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class KlTransportObserver final : public Observer {
 public:
  KlTransportObserver(const Model& model, index_t every);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "kl_transport"; }
  index_t every() const override { return every_; }

 private:
  std::vector<GaussianReference> references_;
  index_t every_;
};

}  // namespace mfsim

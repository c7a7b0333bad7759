#pragma once
// kl_<label>_transport: KL(ρ_t || ρ₀) of each particle group by log-density transport (K1):
//   KL ≈ (1/N) Σ_k r_k,   r_k = log ρ_t(θ_k) − log ρ₀(θ_k),
// log ρ_t(θ_k) integrated along the characteristic (ParticleState::log_density, d/dt = ΔΨ) and ρ₀
// the group's Gaussian initial law; with kl_<label>_transport_stderr = (spread of the r_k)/√N, its
// sampling error (from antithetic starts, the spread of the pair means over √(N/2)), and
// kl_<label>_transport_reliable (kl_reliability.hpp: 2.5 standard errors within max(0.1 nats, 5
// %)). For a group of L slices (ResNet layers) of equal size this is also the mean over slices of
// each slice's KL, (1/L) Σ_l KL_l; such a group also gets kl_<label>_transport_layers: KL_l for
// every slice l (shape {L}), each from its slice's particles, with its _stderr and _reliable per
// layer. Valid for C² activations only (for ReLU, ΔΨ is a measure on the data hyperplanes).
#include <optional>
#include <vector>

#include "mfsim/diagnostics/estimate_series.hpp"
#include "mfsim/diagnostics/gaussian_reference.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class KlTransportObserver final : public Observer {
 public:
  // `antithetic`: the particles start in antithetic pairs (rows 2j, 2j + 1), so the pairs are
  // the independent draws of the standard error. With `notes`, a warning the first time an
  // estimate is unreliable.
  KlTransportObserver(const Model& model, index_t every, bool antithetic,
                      std::optional<Console> notes = std::nullopt);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "kl_transport"; }
  index_t every() const override { return every_; }

 private:
  std::vector<GaussianReference> references_;
  index_t every_;
  bool antithetic_;
  EstimateSeries series_;
};

}  // namespace mfsim

#pragma once
// The optional capability of a model to assemble its Gram matrix (MATH.md §2.5, §3.6), read by
// GramObserver and the NTK diagnostics. A model that has no Gram matrix does not implement it.
#include <string>
#include <vector>

#include "mfsim/core/workspace.hpp"
#include "mfsim/models/evaluation.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

class GramModel {
 public:
  virtual ~GramModel() = default;

  // G = Σ_parts Φ_p Φ_pᵀ (n × n, n = gram_samples), Φ_p the gradient features of the particles of
  // part p, φ_{i,k} = (β/√m) ∇_θ h(x_i; θ_k) for model A: then (1/n²) rᵀGr is the mean squared
  // particle speed (A11). Parts are what the theory treats separately (the ResNet: "blocks" G₁ and
  // "head" G₂); a model with one part names it after its group.
  virtual std::vector<std::string> gram_parts() const = 0;

  // The samples G is built on (n = this times the model's outputs): the training samples of
  // `data`, the model's data, or a probe set of its own (the population flow, which has none).
  virtual index_t gram_samples(const Dataset& data) const { return data.n_train(); }
  // Whether those samples are the training samples (false: the probe set). The energy identity
  // (A11) and the loss bound (A12) speak of the training loss: they hold only on the former.
  virtual bool gram_on_training_samples() const { return true; }

  // Adds this rank's particles' contribution to part `part` of G at the state `s` of the
  // evaluation `e` (the model may read what it computed: forward and adjoint passes), on the
  // execution-space instance `space` (without it, the default instance). Like every accumulate_*
  // method it does not reduce over ranks: the caller sums G (Communicator).
  virtual void accumulate_gram(const ExecSpace& space, const ParticleState& s, const Evaluation& e,
                               int part, Matrix gram, Workspace& scratch) const = 0;
  void accumulate_gram(const ParticleState& s, const Evaluation& e, int part, Matrix gram,
                       Workspace& scratch) const {
    accumulate_gram(ExecSpace(), s, e, part, gram, scratch);
  }

  // A part that is a sum over layers, G_part = Σ_l G_part,l (the ResNet's blocks: one term per
  // layer, from that layer's particles): the number of layers, 0 for a part that is not (the
  // default). accumulate_gram_layer then adds this rank's contribution to G_part,l alone.
  virtual int gram_layers(int /*part*/) const { return 0; }
  virtual void accumulate_gram_layer(const ExecSpace& /*space*/, const ParticleState& /*s*/,
                                     const Evaluation& /*e*/, int /*part*/, int /*layer*/,
                                     Matrix /*gram*/, Workspace& /*scratch*/) const {}

  // The infinite-width Gram at the Gaussian initial law, G(τ₀) = scale · K (MATH.md §2.6): writes
  // K (n_train × n_train) on `space` and returns scale (β² for model A); 0 when the model has no
  // reference.
  virtual double infinite_width_gram(const ExecSpace& /*space*/, Matrix /*kernel*/) const {
    return 0;
  }
  double infinite_width_gram(Matrix kernel) const {
    return infinite_width_gram(ExecSpace(), kernel);
  }
};

// The model's Gram capability, or nullptr.
template <class AnyModel>
const GramModel* gram_model(const AnyModel& model) {
  return dynamic_cast<const GramModel*>(&model);
}

}  // namespace mfsim

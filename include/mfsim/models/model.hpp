#pragma once
// A mean-field model: particle groups, their initial law, and the velocity field of the
// Wasserstein gradient flow of L = |f(x) − y|²/(2n) (flow time: every particle velocity is O(1)
// whatever the width, MATH.md §1.4).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mfsim/core/activation.hpp"
#include "mfsim/core/communicator.hpp"
#include "mfsim/data/dataset.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

class Model {
 public:
  virtual ~Model() = default;

  virtual std::string kind() const = 0;
  virtual const std::vector<GroupSpec>& groups() const = 0;
  const Dataset& data() const { return data_; }
  const Communicator& comm() const { return comm_; }

  // Draws this rank's particles from the Gaussian initial law. With `antithetic`, particles come
  // in pairs whose output weight has opposite signs, so that f ≡ 0 exactly at t = 0.
  virtual void initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const = 0;

  // The mean-field velocity v = −∇Ψ at every particle of `s` (forward pass, residuals, velocities),
  // and when `dsdt` tracks log-densities, ΔΨ: the rate of change of log ρ_t along the
  // characteristic. Returns the training loss. The residuals (and whatever a model keeps for its
  // diagnostics) describe `s` until the next call.
  virtual real velocity(const ParticleState& s, ParticleState& dsdt) = 0;

  // Network outputs f(x_i) on the rows of x (summed over every rank).
  virtual void predict(const ParticleState& s, ConstMatrix x, Vector f) const = 0;

  // r = f(x_train) − y_train at the state of the last velocity() call.
  virtual ConstVector residual() const = 0;

  // The model's scaling constants for /parameters: the flow's normalisation and the raw gradient
  // descent learning rates equivalent to a flow step dt.
  virtual std::map<std::string, std::string> scalings(double dt) const = 0;

  // Each activation the model uses, by its config key ("model.activation", ...), so that checks
  // needing σ'' (transport KL) can name the key to change.
  virtual std::map<std::string, Activation> activations() const = 0;

  // --- Gram matrix (MATH.md §2.5, §3.6) ---------------------------------------------------------
  // G = Σ_parts Φ_p Φ_pᵀ (n_train × n_train), Φ_p the gradient features of the particles of part p,
  // φ_{i,k} = (β/√m) ∇_θ h(x_i; θ_k) for model A: then (1/n²) rᵀGr is the mean squared particle
  // speed (A11). Parts are what the theory treats separately (the ResNet: "blocks" G₁ and "head"
  // G₂); a model with one part names it after its group. Empty: the model has no Gram matrix.
  virtual std::vector<std::string> gram_parts() const { return {}; }
  // Adds this rank's particles' contribution to part `part` of G. `s` must be the state of the
  // last velocity() call (the model may use what that call kept: residuals, forward and adjoint
  // passes). The caller sums the result over the ranks (comm().allreduce_sum).
  virtual void accumulate_gram(const ParticleState& /*s*/, int /*part*/, Matrix /*gram*/) const {}
  // The infinite-width Gram at the Gaussian initial law, G(τ₀) = scale · K (MATH.md §2.6): writes
  // K (n_train × n_train) and returns scale (β² for model A); 0 when the model has no reference.
  virtual double infinite_width_gram(Matrix /*kernel*/) const { return 0; }

  // Path norms the model defines beyond those of its groups of two-layer units
  // (GroupSpec::path_norm_scale), by observable name, summed over every rank: the ResNet's
  // weighted path norm (MATH.md §3.8).
  virtual std::map<std::string, double> path_norms(const ParticleState& /*s*/) const { return {}; }

  // The test loss |f(x_test) − y_test|²/(2 n_test); 0 without test data.
  double test_loss(const ParticleState& s) const;

 protected:
  Model(const Dataset& data, const Communicator& comm) : data_(data), comm_(comm) {}

 private:
  Dataset data_;
  const Communicator& comm_;
};

// |r|²/(2n) for a residual vector.
double half_mean_square(ConstVector r);

}  // namespace mfsim

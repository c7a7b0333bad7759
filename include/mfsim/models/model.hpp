#pragma once
// A mean-field model: particle groups, their initial law, and the velocity field of the
// Wasserstein gradient flow of L = (1/n) Σ ℓ(f(x_i), y_i) (models/loss.hpp; square by default)
// (flow time: every particle velocity is O(1) whatever the width, MATH.md §1.4). Optional
// capabilities are separate interfaces a model may also implement (GramModel, PathNormModel).
//
// Ranks: every method returns values summed over every rank (a model's particles are sharded,
// its data is not), except the accumulate_* methods, which add this rank's part and leave the sum
// to the caller.
//
// Execution-space instances: make_evaluation, evaluate, predict and test_loss take the Kokkos
// instance (a partition of the host's threads, a CUDA stream) that every kernel, copy and
// reduction of theirs runs on, first; they wait for that instance only, and only where they read
// a result on the host (a loss). The overloads without one use the default instance.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mfsim/core/activation.hpp"
#include "mfsim/core/communicator.hpp"
#include "mfsim/core/workspace.hpp"
#include "mfsim/data/dataset.hpp"
#include "mfsim/models/evaluation.hpp"
#include "mfsim/models/loss.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

class Model {
 public:
  virtual ~Model() = default;

  virtual std::string kind() const = 0;
  virtual const std::vector<GroupSpec>& groups() const = 0;
  const Dataset& data() const { return data_; }
  const Communicator& comm() const { return comm_; }
  LossKind loss_kind() const { return loss_; }  // the loss ℓ (Evaluation::loss is its value)
  int outputs() const { return outputs_; }      // c: f(x) ∈ R^c (model.outputs)

  // Draws this rank's particles from the Gaussian initial law. With `antithetic`, particles come
  // in pairs whose output weight has opposite signs, so that f ≡ 0 exactly at t = 0.
  virtual void initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const = 0;

  // The buffers of one evaluation of this model (residuals, layer passes, packing scratch),
  // allocated once: the caller keeps it and passes it to every evaluate(). Over the training set,
  // or with `minibatch` > 0 over minibatches of that many samples (SGD; Evaluation).
  // Buffers that start zeroed are zeroed on `space`.
  virtual std::unique_ptr<Evaluation> make_evaluation(const ExecSpace& space,
                                                      index_t minibatch) const = 0;
  std::unique_ptr<Evaluation> make_evaluation(index_t minibatch) const {
    return make_evaluation(ExecSpace(), minibatch);
  }
  std::unique_ptr<Evaluation> make_evaluation() const { return make_evaluation(0); }

  // The mean-field velocity v = −∇Ψ at every particle of `s` (forward pass, residuals,
  // velocities) for the loss over the samples of `e` (the training set or a minibatch), and when
  // `dsdt` tracks log-densities, ΔΨ: the rate of change of log ρ_t along the
  // characteristic. Fills `e` (which must come from this model's make_evaluation()) with what it
  // computed at `s`, sets e.loss and returns it. The model keeps nothing between calls.
  virtual real evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                        ParticleState& dsdt) const = 0;
  real evaluate(const ParticleState& s, Evaluation& e, ParticleState& dsdt) const {
    return evaluate(ExecSpace(), s, e, dsdt);
  }

  // Network outputs f(x_i) on the rows of x (summed over every rank; c values a row, entry
  // i·c + j), its intermediate values in
  // `scratch`; the overload without one allocates its own (for one-off calls).
  virtual void predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
                       Workspace& scratch) const = 0;
  void predict(const ParticleState& s, ConstMatrix x, Vector f, Workspace& scratch) const {
    predict(ExecSpace(), s, x, f, scratch);
  }
  void predict(const ParticleState& s, ConstMatrix x, Vector f) const;

  // The model's scaling constants for /parameters: the flow's normalisation and the raw gradient
  // descent learning rates equivalent to a flow step dt.
  virtual std::map<std::string, std::string> scalings(double dt) const = 0;

  // Each activation the model uses, by its config key ("model.activation", ...), so that checks
  // needing σ'' (transport KL) can name the key to change.
  virtual std::map<std::string, Activation> activations() const = 0;

  // The test loss (1/n_test) Σ ℓ(f(x), y) on the test set (f in `scratch`); 0 without test data.
  double test_loss(const ExecSpace& space, const ParticleState& s, Workspace& scratch) const;
  double test_loss(const ParticleState& s, Workspace& scratch) const {
    return test_loss(ExecSpace(), s, scratch);
  }

 protected:
  Model(const Dataset& data, const Communicator& comm, LossKind loss = LossKind::square,
        int outputs = 1)
      : data_(data), comm_(comm), loss_(loss), outputs_(outputs) {}

 private:
  Dataset data_;
  const Communicator& comm_;
  LossKind loss_;
  int outputs_;
};

// |r|²/(2n) for a residual vector (reduced on `space`).
double half_mean_square(const ExecSpace& space, ConstVector r);
double half_mean_square(ConstVector r);

}  // namespace mfsim

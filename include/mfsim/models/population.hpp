#pragma once
// Model A on the population risk of Gaussian inputs x ~ N(0, Σ), Σ = I_d or a diagonal
// (Dataset::covariance_diagonal) (MATH.md §2.8): the same
// particles θ_k = (a_k, w_k), initial law, forward pass and groups as TwoLayerModel (which it
// holds), but the velocity field is the population one, an interacting particle system
//   dθ_k/dt = β ∇V(θ_k) − (β²/m) Σ_j ∇₁U(θ_k, θ_j),
// with closed-form Gaussian kernels, and the loss is the population risk itself (no samples).
// The teacher is a finite network scale · Σ_j a*_j σ*(w*_j·x) (Dataset::teacher), σ* the student's
// activation or a polynomial (a Hermite-link single-index teacher for width 1).
// Scalar outputs only, no bias, activations erf, relu and the polynomials (the parser refuses the
// rest). Its Gram matrix is model A's on the probe set Dataset::probe (none without one).
#include <memory>

#include "mfsim/models/model.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {

// The two terms of the risk at the evaluated state (MATH.md (P1)): R = teacher_energy +
// teacher_term + interaction, teacher_energy = ½E[f*²], teacher_term = −β∫V dρ,
// interaction = ½β²∬U dρdρ.
class PopulationEvaluation final : public Evaluation {
 public:
  PopulationEvaluation(const Dataset& data, index_t sources, int dim, index_t local);
  double teacher_energy = 0, teacher_term = 0, interaction = 0;
  Matrix sources;       // the teacher's rows, then every student particle: (c_j, w_j)
  Vector teacher_part;  // per local particle: Σ_{teacher j} c_j K
  Vector student_part;  // per local particle: Σ_{students j} c_j K
};

class PopulationModel final : public Model, public GramModel {
 public:
  // The teacher is data.teacher (its training set is not used: a population data set has none).
  PopulationModel(const TwoLayerSpec& spec, const Dataset& data,
                  const Communicator& comm = self_communicator());

  std::string kind() const override { return "two_layer"; }
  const std::vector<GroupSpec>& groups() const override { return layout_.groups(); }
  const TwoLayerSpec& spec() const { return layout_.spec(); }
  double teacher_energy() const { return teacher_energy_; }

  void initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const override {
    layout_.initialize(s, seed, antithetic);
  }
  using Model::make_evaluation;
  std::unique_ptr<Evaluation> make_evaluation(const ExecSpace& space,
                                              index_t minibatch) const override;
  // The population velocity; e.loss = the population risk R. Log-densities are not tracked
  // (the parser refuses transport KL).
  using Model::evaluate;
  real evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                ParticleState& dsdt) const override;
  using Model::predict;
  void predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
               Workspace& scratch) const override {
    layout_.predict(space, s, x, f, scratch);
  }
  std::map<std::string, std::string> scalings(double dt) const override;
  std::map<std::string, Activation> activations() const override { return layout_.activations(); }

  // Model A's G and K (MATH.md §2.5, §2.6) on the rows of the probe set instead of training
  // samples; no part without a probe set.
  std::vector<std::string> gram_parts() const override {
    return data().probe.extent(0) > 0 ? layout_.gram_parts() : std::vector<std::string>{};
  }
  index_t gram_samples(const Dataset& d) const override { return index_t(d.probe.extent(0)); }
  bool gram_on_training_samples() const override { return false; }
  using GramModel::accumulate_gram;
  void accumulate_gram(const ExecSpace& space, const ParticleState& s, const Evaluation& /*e*/,
                       int /*part*/, Matrix gram, Workspace& scratch) const override {
    layout_.accumulate_gram_on(space, s, data().probe, gram, scratch);
  }
  using GramModel::infinite_width_gram;
  double infinite_width_gram(const ExecSpace& space, Matrix kernel) const override {
    return layout_.infinite_width_gram_on(space, data().probe, kernel);
  }

 private:
  TwoLayerModel layout_;
  Matrix teacher_sources_;  // (β scale a*_j, w*_j) on the device
  Vector variance_;         // the inputs' covariance diagonal (1 … 1 for N(0, I_d))
  double teacher_energy_ = 0;
};

// Whether `a` has a closed-form Gaussian kernel in the population flow; and a student of `student`
// against a teacher of `teacher` (the same activation, or a polynomial teacher).
bool has_population_kernel(ActivationKind a);
bool has_population_kernel(ActivationKind student, ActivationKind teacher);

}  // namespace mfsim

#pragma once
// Model A (MATH.md §2): f(x) = (β/m) Σ_k a_k σ(w_k·x + b_k), particle θ_k = (a_k, w_k, b_k), with
// a_k ∈ R^c for c = outputs (MATH.md §1.5).
#include <cmath>
#include <cstdint>
#include <memory>

#include "mfsim/core/activation.hpp"
#include "mfsim/models/gram_model.hpp"
#include "mfsim/models/model.hpp"
#include "mfsim/models/potential_model.hpp"

namespace mfsim {

namespace tiles {
struct SamplePanels;  // private (src/detail/pair_tiles.hpp)
}

struct TwoLayerSpec {
  index_t width = 1024;  // m
  double beta = 1;       // output multiplier
  bool bias = true;
  Activation activation;
  double std_a = 1, std_w = 1, std_b = 1;  // Gaussian initial law per block
  LossKind loss = LossKind::square;
  int outputs = 1;  // c
  // The activation cache (flow.activation_cache_bytes; 0: none): an evaluation keeps the n × m
  // pre-activations of its forward pass for its velocity pass, which then skips the products
  // w·x̃, when they take at most this many bytes (n samples, m particles of this rank rounded up
  // to whole 64-byte blocks, cache_block; c = 1) and the inputs are wide enough for it to pay.
  std::uint64_t activation_cache_bytes = std::uint64_t(256) << 20;
  static constexpr int cache_block = int(64 / sizeof(real));
  // Inputs from which the cache pays: a cached pair saves the dz multiply-adds of w·x̃ but costs
  // 8 bytes written and read back through memory (the cache exceeds the core's caches at the sizes
  // where it matters). Measured on a 2-core Xeon (AVX-512, n = 1000, m = 10⁴; figures in
  // docs/performance.md): slower at d = 16 and 64, even at d = 128, faster at d = 256.
  static constexpr int min_cached_inputs = 192;

  // Whether an evaluation over `samples` of `inputs` dimensions with `particles` keeps its
  // pre-activations (sizes in long double, like the coordinates). The memory check asks the same.
  bool caches_activations(long double samples, long double particles, int inputs) const {
    const long double blocks = std::ceil(particles / cache_block);
    return outputs == 1 && inputs >= min_cached_inputs &&
           samples * blocks * 64 <= activation_cache_bytes;
  }

  // Coordinates of one particle θ = (a ∈ R^c, w ∈ R^dim, b when bias), and of all of them: in long
  // double, so that the memory check's absurd sizes do not wrap around.
  int particle_dim(int dim) const { return outputs + dim + (bias ? 1 : 0); }
  long double coordinates(int dim) const { return (long double)width * particle_dim(dim); }
};

class TwoLayerModel final : public Model, public GramModel, public PotentialModel {
 public:
  TwoLayerModel(const TwoLayerSpec& spec, const Dataset& data,
                const Communicator& comm = self_communicator());

  std::string kind() const override { return "two_layer"; }
  const std::vector<GroupSpec>& groups() const override { return groups_; }
  const TwoLayerSpec& spec() const { return spec_; }

  void initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const override;
  using Model::make_evaluation;
  std::unique_ptr<Evaluation> make_evaluation(const ExecSpace& space,
                                              index_t minibatch) const override;
  using Model::evaluate;
  real evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                ParticleState& dsdt) const override;
  using Model::predict;
  void predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
               Workspace& scratch) const override;
  std::map<std::string, std::string> scalings(double dt) const override;
  std::map<std::string, Activation> activations() const override;

  // One Gram part, named after the group: G of (A9) with φ = (β/√m)∇_θ h.
  std::vector<std::string> gram_parts() const override { return {"two_layer"}; }
  using GramModel::accumulate_gram;
  void accumulate_gram(const ExecSpace& space, const ParticleState& s, const Evaluation& e,
                       int part, Matrix gram, Workspace& scratch) const override;
  // K of MATH.md §2.6 at the configured stds (arc-cosine, Williams, or quadrature); scale β².
  using GramModel::infinite_width_gram;
  double infinite_width_gram(const ExecSpace& space, Matrix kernel) const override;
  // Both on the rows of `x` instead of the training inputs (the population flow's probe set).
  void accumulate_gram_on(const ExecSpace& space, const ParticleState& s, ConstMatrix x,
                          Matrix gram, Workspace& scratch) const;
  double infinite_width_gram_on(const ExecSpace& space, ConstMatrix x, Matrix kernel) const;

  // Ψ(θ) = (β/n) Σ_i r_i a σ(w·x̃_i) at the rows of `points` (A3), through the velocity kernel:
  // Ψ = −a v_a (A5).
  using PotentialModel::potential;
  void potential(const ExecSpace& space, const Evaluation& e, ConstMatrix points, Vector psi,
                 Workspace& scratch) const override;

 private:
  // f on the rows of x from this rank's particles (not yet summed over the ranks), keeping the
  // pre-activations in `preactivations` when it has values (c = 1).
  void forward(const ExecSpace& space, ConstMatrix theta, ConstMatrix x, Vector f,
               Matrix preactivations) const;
  // v (and ΔΨ into `laplacian` when it has a value per particle) at the rows of theta, from the
  // cached pre-activations when `preactivations` has values (c = 1); c > 1 packs the residuals in
  // `scratch`.
  void velocity(const ExecSpace& space, ConstMatrix theta, const tiles::SamplePanels& panels,
                ConstVector r, ConstVector norm2, Matrix v, Vector laplacian, real coeff,
                const char* label, Workspace& scratch,
                ConstMatrix preactivations = ConstMatrix()) const;
  // The activation cache of an evaluation `e` at `particles` particles (an empty matrix when the
  // budget has no room for it), in e.scratch.
  Matrix activation_cache(Evaluation& e, index_t particles) const;

  TwoLayerSpec spec_;
  std::vector<GroupSpec> groups_;
  Vector input_norm2_;  // |x_i|² (+1 with bias): the Laplacian's data factor
  // x̃_train packed for the velocity kernel; shared by copies of the model, never modified.
  std::shared_ptr<const tiles::SamplePanels> train_panels_;
};

}  // namespace mfsim

#pragma once
// Model B (MATH.md §3): the scaled deep ResNet in the mean-field regime with a two-layer head,
//   z_0 = x,  z_{l+1} = z_l + (α/(L M)) Σ_m u_{l,m} σ0(w_{l,m}·z_l + b_{l,m}),  l = 0..L−1,
//   f(x) = (β/K) Σ_k a_k σh(v_k·z_L),  a_k ∈ R^c for c = outputs (MATH.md §3.9).
// Two particle groups: the blocks θ = (u, w, b) ∈ R^{2d+1}, global id l·M + j for particle j of
// layer l (L slices: each rank holds the same part of every layer, stored layer-major), and the
// head ω = (a, v) ∈ R^{c+d}. The flow is dθ/dt = −LM ∇_θ L, dω/dt = −K ∇_ω L.
#include <cmath>
#include <cstdint>
#include <utility>

#include "mfsim/core/activation.hpp"
#include "mfsim/core/shard.hpp"
#include "mfsim/models/gram_model.hpp"
#include "mfsim/models/model.hpp"
#include "mfsim/models/path_norm_model.hpp"

namespace mfsim {

// How the blocks' initial law depends on depth (MATH.md §3.1).
enum class DepthInit {
  iid,       // every θ_{l,m} drawn independently
  constant,  // θ_{l,m} = θ_m for every layer l (Ding et al.'s admissible law)
};

DepthInit parse_depth_init(const std::string& name);  // throws InputError
const std::vector<std::string>& depth_init_names();   // what model.depth_init accepts

struct ResNetSpec {
  index_t depth = 16;          // L
  index_t width = 1024;        // M, particles per layer
  index_t head_width = 1024;   // K
  double alpha = 1;            // residual multiplier
  double beta = 1;             // output multiplier
  Activation activation;       // σ0 of the blocks
  Activation head_activation;  // σh of the head
  DepthInit depth_init = DepthInit::iid;
  double std_u = 1, std_w = 1, std_b = 1;  // Gaussian initial law of the blocks, per coordinate
  double std_a = 1, std_v = 1;             // and of the head
  // c in path_norm_weighted's A_l = I + c |U_l||W_l| (model.path_norm_weight; 3 as recalled from
  // E, Ma & Wang 2019, not verified: docs/corrections.md).
  double path_norm_weight = 3;
  LossKind loss = LossKind::square;
  int outputs = 1;  // c: the head's output weights a_k ∈ R^c
  // The activation cache (flow.activation_cache_bytes; 0: none): an evaluation keeps the
  // pre-activations π = w·z_l + b of its forward pass and the products q_{l+1}·u of its backward
  // pass, L × n × M of each, for its velocity pass, which then skips both (6 rather than 9
  // multiply-adds per block pair and input), when they take at most this many bytes (n samples, M
  // this rank's particles per layer rounded up to whole 64-byte blocks, cache_block) and the inputs
  // are wide enough for it to pay (as model A's: TwoLayerSpec::activation_cache_bytes).
  std::uint64_t activation_cache_bytes = std::uint64_t(256) << 20;
  static constexpr int cache_block = int(64 / sizeof(real));
  // Inputs from which the cache pays: a cached pair saves 3d multiply-adds but moves 40 bytes
  // through memory (π written, read twice; q·u written, read once). Measured on a 2-core Xeon
  // (AVX-512, n = 1000, L = 8, M = K = 1000; figures in docs/performance.md): slower at d = 32,
  // break-even at d = 48, faster from d = 64.
  static constexpr int min_cached_inputs = 64;

  // Whether an evaluation over `samples` of `inputs` dimensions, with `per_layer` particles of each
  // layer on this rank, keeps its activations (sizes in long double, like the coordinates). The
  // memory check asks the same.
  bool caches_activations(long double samples, long double per_layer, int inputs) const {
    const long double blocks = std::ceil(per_layer / cache_block);
    return inputs >= min_cached_inputs &&
           2 * (long double)depth * samples * blocks * 64 <= activation_cache_bytes;
  }

  // Coordinates of one block particle (u, w ∈ R^dim, b) and one head particle (a ∈ R^c,
  // v ∈ R^dim), and of all of them: in long double, so that the memory check's absurd sizes do not
  // wrap around.
  static int block_dim(int dim) { return 2 * dim + 1; }
  int head_dim(int dim) const { return outputs + dim; }
  long double block_coordinates(int dim) const {
    return (long double)depth * (long double)width * block_dim(dim);
  }
  long double head_coordinates(int dim) const { return (long double)head_width * head_dim(dim); }
  long double coordinates(int dim) const { return block_coordinates(dim) + head_coordinates(dim); }
};

// Layers of states or adjoints on the training inputs: [L+1][n][d].
using LayerView = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;

// What a ResNet evaluation keeps besides the residuals: the forward and backward pass on the
// training inputs (what the Gram matrices G₁, G₂ need): z_l^i for l = 0..L and the output
// sensitivities q_l^i = ∂f(x_i)/∂z_l; with c > 1 outputs, the adjoints p_l^i = Σ_j r_ij
// ∂f_j(x_i)/∂z_l instead (weighted by the residuals r_i ∈ R^c: one backward pass, not c; MATH.md
// §3.9).
class ResNetEvaluation final : public Evaluation {
 public:
  // Over the training set of `data`, or over minibatches of `minibatch` samples, for c = `outputs`;
  // the layers are zeroed on `space`.
  ResNetEvaluation(const ExecSpace& space, index_t depth, const Dataset& data,
                   index_t minibatch = 0, int outputs = 1);
  ConstMatrix state(index_t l) const;
  ConstMatrix sensitivity(index_t l) const;

  LayerView states;         // z_l^i
  LayerView sensitivities;  // q_l^i (c = 1), p_l^i (c > 1)
  Vector norm2;             // |z_l^i|² at l·n + i: the Laplacians' data factor
  // c > 1: ones, the sample weights of the blocks' velocities (the residuals are in p).
  Vector unit_weights;
  // The activation cache (ResNetSpec::caches_activations; empty views: none): π = w·z_l + b of
  // every block pair (forward pass) and q_{l+1}·u (backward pass), for the velocity pass; in the
  // kernels' layout (src/detail/resnet_kernels.hpp): the layers one after another, a layer's rows
  // its blocks of particles, the columns the samples. Refilled by every evaluation.
  Matrix block_preactivations, block_input_products;
  // Layers whose velocities one kernel computes (their states and sensitivities packed together):
  // all of them unless that would take more than 64 MiB of packs. Any value ≥ 1 gives the same
  // bits; tests set it.
  index_t velocity_layer_group = 1;
};

class ResNetModel final : public Model, public GramModel, public PathNormModel {
 public:
  ResNetModel(const ResNetSpec& spec, const Dataset& data,
              const Communicator& comm = self_communicator());

  std::string kind() const override { return "resnet"; }
  const std::vector<GroupSpec>& groups() const override { return groups_; }
  const ResNetSpec& spec() const { return spec_; }
  static constexpr std::size_t blocks = 0, head = 1;  // group indices in a ParticleState

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

  // Gram parts (B13): "blocks" G₁ with φ^R = (α/√(LM)) ∇_θ(q_{l+1}·σ(z_l, θ)), and "head" G₂ with
  // φ^H = (β/√K) ∇_ω h(z_L; ω), from the forward and backward pass of the evaluation `e`
  // (a ResNetEvaluation).
  std::vector<std::string> gram_parts() const override { return {"blocks", "head"}; }
  using GramModel::accumulate_gram;
  void accumulate_gram(const ExecSpace& space, const ParticleState& s, const Evaluation& e,
                       int part, Matrix gram, Workspace& scratch) const override;
  // G₁ = Σ_l G₁,l, layer l's term from its M particles (the same kernel as accumulate_gram's).
  int gram_layers(int part) const override { return part == 0 ? int(spec_.depth) : 0; }
  void accumulate_gram_layer(const ExecSpace& space, const ParticleState& s, const Evaluation& e,
                             int part, int layer, Matrix gram, Workspace& scratch) const override;
  // K_head of MATH.md §3.6 on the raw inputs (σh, std_a, std_v, no bias), scale β²: the limit of
  // G(0)/β² as M, K → ∞ (z_L → x and G₁(0) → 0; G₁(0) = 0 exactly with antithetic pairs).
  using GramModel::infinite_width_gram;
  double infinite_width_gram(const ExecSpace& space, Matrix kernel) const override;

  // path_norm_weighted (MATH.md §3.8, after E, Ma & Wang 2019): ‖ cᵀ A_L ⋯ A_1 ‖₁ on the
  // augmented state (z, 1), with A_l = I + c |U_l||W_l|, U_l = (α/(LM)) [u_{l,1} … u_{l,M}],
  // W_l = [(w_{l,m}, b_{l,m})]_m, and c_j = (β/K) Σ_k |a_k| |v_{k,j}| the head's path weights
  // (so that with L = 0 it is the head's ℓ1 path norm). c = spec.path_norm_weight, default 3
  // (recalled, not verified).
  using PathNormModel::path_norms;
  std::map<std::string, double> path_norms(const ExecSpace& space, const ParticleState& s,
                                           Workspace& scratch) const override;
  // path_norm_blocks_l1_layers: layer l's residual map as a two-layer network in the mean-field
  // convention, P_l = α · mean_m ‖u_{l,m}‖₁ ‖(w_{l,m}, b_{l,m})‖₁ (the entries of |U_l||W_l| sum
  // to P_l / L).
  std::map<std::string, std::vector<double>> layer_path_norms(
      const ExecSpace& space, const ParticleState& s) const override;

  // This rank's (local) rows of the blocks group that belong to layer l: rows
  // [l·m, (l+1)·m) with m = local_per_slice, global ids l·M + slice_offset + [0, m).
  Shard local_layer(index_t l) const;

 private:
  // z_{l+1} = z_l + (α/(LM)) Σ_{m in layer l} u σ0(w·z_l + b), summed over every rank, from the
  // layer's particles transposed in chunks (detail::transpose_layers).
  // With `preactivations` (layer l's rows of the activation cache), keeps π there.
  void propagate(const ExecSpace& space, Matrix layer_panel, ConstMatrix z, Matrix z_next,
                 Matrix preactivations = Matrix()) const;
  // f(z_L) on every row of z_last, summed over every rank.
  void head_output(const ExecSpace& space, ConstMatrix head, ConstMatrix z_last, Vector f) const;
  // The steps of evaluate, in order, on `space`. The forward pass (B1), (B3): z_0 = x, …, z_L,
  // then f, the loss and r = ℓ'(f, y) (f − y: square loss) into `e`; returns every layer's
  // particles transposed (detail::transpose_layers), which the backward pass reads too.
  LayerView forward_pass(const ExecSpace& space, const ParticleState& s, ResNetEvaluation& e) const;
  // The backward pass (MATH.md §3.5) on the states `states` (their rows the samples): q_L from the
  // head, then q_l = q_{l+1} + (α/(LM)) Σ … w, into `out`. Without `weights`, q = ∂f/∂z (c = 1);
  // with weights W (a row of c values per state row), q = Σ_j W_j ∂f_j/∂z (MATH.md §3.9).
  // With the activation cache (`preactivations` filled by the forward pass on `states`), reads π
  // from it and keeps q_{l+1}·u in `input_products`.
  void backward_pass(const ExecSpace& space, const ParticleState& s, const LayerView& panels,
                     const LayerView& states, ConstMatrix weights, const LayerView& out,
                     Workspace& scratch, Matrix preactivations = Matrix(),
                     Matrix input_products = Matrix()) const;
  // c > 1: the states z_l^i and the sensitivities ∂f_j(x_i)/∂z_l of every output, rows i·c + j
  // ([L+1][nc][d] each, in `scratch`), from the forward pass of `e`: the Gram part G₁ (B13) of
  // the nc × nc Gram matrix.
  std::pair<LayerView, LayerView> output_sensitivities(const ExecSpace& space,
                                                       const ParticleState& s,
                                                       const ResNetEvaluation& e,
                                                       Workspace& scratch) const;
  void accumulate_block_gram(const ExecSpace& space, const ParticleState& s, int layer,
                             const LayerView& states, const LayerView& sensitivities, Matrix gram,
                             Workspace& scratch) const;
  // The blocks' velocities (B11) and, when `dsdt` tracks log-densities, Laplacians (B12) (|z_l|²
  // in e.norm2), a group of layers per kernel: z_l and q_{l+1} of the group's layers packed for
  // the register blocks (O(layers·n·d) each); π and q·u from e's activation cache when it has one.
  void block_velocities(const ExecSpace& space, const ParticleState& s, ResNetEvaluation& e,
                        ParticleState& dsdt) const;
  // The head's velocity and Laplacian, on z_L.
  void head_velocity(const ExecSpace& space, const ParticleState& s, ResNetEvaluation& e,
                     ParticleState& dsdt) const;

  ResNetSpec spec_;
  std::vector<GroupSpec> groups_;
};

}  // namespace mfsim

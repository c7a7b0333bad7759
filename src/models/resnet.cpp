#include "mfsim/models/resnet.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "detail/resnet_kernels.hpp"
#include "detail/two_layer_kernels.hpp"
#include "detail/two_layer_vector_kernels.hpp"
#include "mfsim/core/enum_names.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/random.hpp"

namespace mfsim {
namespace {

Matrix layer(const LayerView& v, index_t l) {
  return Kokkos::subview(v, l, Kokkos::ALL, Kokkos::ALL);
}

// A matrix as a stack of one matrix per layer: the layers [first, first + count) of v.
tiles::MatrixStack layer_stack(const LayerView& v, index_t first, index_t count) {
  return Kokkos::subview(v, std::make_pair(first, first + count), Kokkos::ALL, Kokkos::ALL);
}

using detail::block_velocity;

// Layer l's rows of an activation cache of `layers` layers (ResNetEvaluation; none: none).
Matrix cache_layer(const Matrix& cache, index_t l, index_t layers) {
  if (!cache.data()) return Matrix();
  const index_t rows = index_t(cache.extent(0)) / layers;
  return Kokkos::subview(cache, std::make_pair(l * rows, (l + 1) * rows), Kokkos::ALL);
}

void add_into(const ExecSpace& space, Matrix out, ConstMatrix base) {
  const index_t d = index_t(out.extent(1));
  Kokkos::parallel_for(
      "mfsim::ResNet::add_into",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(out.extent(0)) * d),
      KOKKOS_LAMBDA(index_t idx) { out(idx / d, idx % d) += base(idx / d, idx % d); });
}

void initialize_blocks(Matrix theta, RowMap rows, const ResNetSpec& spec, std::uint64_t seed,
                       bool antithetic) {
  const index_t width = rows.per_slice;
  const int d = int(theta.extent(1) - 1) / 2;
  const real su = real(spec.std_u), sw = real(spec.std_w), sb = real(spec.std_b);
  const bool constant = spec.depth_init == DepthInit::constant;
  const CounterRng rng(seed, rng_particles);
  Kokkos::parallel_for(
      "mfsim::ResNet::initialize_blocks",
      Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))), KOKKOS_LAMBDA(index_t k) {
        // Depth-constant laws give every layer the draws of its index j within the layer; pairs
        // (2p, 2p+1) share the draws of p and have opposite u, so each layer's sum vanishes.
        const index_t id = rows.global_row(k);  // layer-major global id: the split's invariant
        const index_t item = constant ? id % width : id;
        const auto [key, sign] = antithetic_draw(item, antithetic);
        for (int c = 0; c < d; ++c) {
          theta(k, c) = sign * su * real(rng.normal(key, std::uint32_t(c)));
          theta(k, d + c) = sw * real(rng.normal(key, std::uint32_t(d + c)));
        }
        theta(k, 2 * d) = sb * real(rng.normal(key, std::uint32_t(2 * d)));
      });
}

void initialize_head(Matrix theta, index_t offset, const ResNetSpec& spec, std::uint64_t seed,
                     bool antithetic) {
  const int outputs = spec.outputs, d = int(theta.extent(1)) - outputs;
  const real sa = real(spec.std_a), sv = real(spec.std_v);
  const CounterRng rng(seed, rng_head_particles);
  Kokkos::parallel_for(
      "mfsim::ResNet::initialize_head", Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))),
      KOKKOS_LAMBDA(index_t k) {
        const index_t id = offset + k;
        const auto [key, sign] = antithetic_draw(id, antithetic);
        // Draw j of a particle's stream is its coordinate j of the scalar head; the output
        // weights a_2 … a_c take draws after those, so that c = 1 draws what it always drew.
        theta(k, 0) = sign * sa * real(rng.normal(key, 0));
        for (int c = 0; c < d; ++c)
          theta(k, outputs + c) = sv * real(rng.normal(key, std::uint32_t(1 + c)));
        for (int j = 1; j < outputs; ++j)
          theta(k, j) = sign * sa * real(rng.normal(key, std::uint32_t(d + j)));
      });
}

}  // namespace

namespace {
const EnumNames<DepthInit>& depth_init_table() {
  static const EnumNames<DepthInit> names(
      "depth law", {{DepthInit::iid, "iid"}, {DepthInit::constant, "constant"}});
  return names;
}
}  // namespace

DepthInit parse_depth_init(const std::string& name) {
  return depth_init_table().parse(name);
}

const std::vector<std::string>& depth_init_names() {
  return depth_init_table().names();
}

ResNetModel::ResNetModel(const ResNetSpec& spec, const Dataset& data, const Communicator& comm)
    : Model(data, comm, spec.loss, spec.outputs), spec_(spec) {
  const int d = data.dim();
  GroupSpec blocks_group;
  blocks_group.name = "resnet_blocks";
  for (const char* block : {"u", "w"})
    for (int c = 0; c < d; ++c) {
      blocks_group.columns.push_back(std::string(block) + "_" + std::to_string(c + 1));
      blocks_group.init_std.push_back(*block == 'u' ? spec.std_u : spec.std_w);
    }
  blocks_group.columns.push_back("b");
  blocks_group.init_std.push_back(spec.std_b);
  blocks_group.global_count = spec.depth * spec.width;
  blocks_group.slices = int(spec.depth);
  blocks_group.label = "blocks";
  // Every rank holds part of every layer (shard_group: granule 2 keeps antithetic pairs
  // together), so each layer's forward and backward sums are split over all ranks, one allreduce
  // per layer per pass (docs/mpi.md).
  shard_group(blocks_group, comm.rank(), comm.size());

  GroupSpec head_group;
  head_group.name = "resnet_head";
  for (int j = 0; j < spec.outputs; ++j) {
    head_group.columns.push_back(spec.outputs == 1 ? "a" : "a_" + std::to_string(j + 1));
    head_group.init_std.push_back(spec.std_a);
  }
  head_group.outputs = spec.outputs;
  for (int c = 0; c < d; ++c) {
    head_group.columns.push_back("v_" + std::to_string(c + 1));
    head_group.init_std.push_back(spec.std_v);
  }
  head_group.label = "head";
  head_group.path_norm_scale = spec.beta;
  head_group.global_count = spec.head_width;
  shard_group(head_group, comm.rank(), comm.size());
  groups_ = {blocks_group, head_group};
}

ResNetEvaluation::ResNetEvaluation(const ExecSpace& space, index_t depth, const Dataset& data,
                                   index_t minibatch, int outputs)
    : Evaluation(data, minibatch, outputs),
      states(Kokkos::view_alloc(space, "mfsim::ResNet::states"), depth + 1, samples(), data.dim()),
      sensitivities(Kokkos::view_alloc(space, "mfsim::ResNet::sensitivities"), depth + 1, samples(),
                    data.dim()),
      norm2(Kokkos::view_alloc(space, "mfsim::ResNet::norm2"), (depth + 1) * samples()) {
  // Every layer in one group unless the packs (4 arrays of about n × (d + 1) reals per layer)
  // would pass 64 MiB: at large n·d one launch per layer costs nothing, and the packs' memory
  // would rival the states'.
  constexpr double budget_bytes = 64.0 * 1024 * 1024;
  const double bytes_per_layer = 4.0 * double(samples() + tiles::sample_chunk) *
                                 double(data.dim() + tiles::block_rows) * sizeof(real);
  velocity_layer_group =
      std::clamp<index_t>(index_t(budget_bytes / bytes_per_layer), 1, std::max<index_t>(depth, 1));
  if (outputs > 1) {
    unit_weights = Vector(Kokkos::view_alloc(space, "mfsim::ResNet::unit_weights"), samples());
    Kokkos::deep_copy(space, unit_weights, real(1));
  }
}

ConstMatrix ResNetEvaluation::state(index_t l) const {
  return layer(states, l);
}

ConstMatrix ResNetEvaluation::sensitivity(index_t l) const {
  return layer(sensitivities, l);
}

std::unique_ptr<Evaluation> ResNetModel::make_evaluation(const ExecSpace& space,
                                                         index_t minibatch) const {
  auto e = std::make_unique<ResNetEvaluation>(space, spec_.depth, data(), minibatch, spec_.outputs);
  // The activation cache: allocated here, once, rather than in a step.
  const index_t per_layer = local_layer(0).size();
  if (per_layer > 0 && spec_.caches_activations(e->samples(), per_layer, data().dim())) {
    const index_t rows = spec_.depth * ((per_layer + tiles::lanes - 1) / tiles::lanes);
    const index_t cols = e->samples() * tiles::lanes;
    const auto alloc = [&](const std::string& label) {
      return Matrix(Kokkos::view_alloc(space, Kokkos::WithoutInitializing, label), rows, cols);
    };
    e->block_preactivations = alloc("mfsim::ResNet::block_preactivations");
    e->block_input_products = alloc("mfsim::ResNet::block_input_products");
  }
  return e;
}

Shard ResNetModel::local_layer(index_t l) const {
  // Local rows are layer-major: this rank's part of layer l is one contiguous block.
  const index_t per_layer = groups_[blocks].local_per_slice;
  return {l * per_layer, (l + 1) * per_layer};
}

void ResNetModel::initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const {
  initialize_blocks(s.theta[blocks], groups_[blocks].rows(), spec_, seed, antithetic);
  initialize_head(s.theta[head], groups_[head].slice_offset, spec_, seed, antithetic);
}

void ResNetModel::propagate(const ExecSpace& space, Matrix layer_panel, ConstMatrix z,
                            Matrix z_next, Matrix preactivations) const {
  const real scale = real(spec_.alpha / (double(spec_.depth) * double(spec_.width)));
  // Alone, the kernel adds z itself (one launch less per layer); across ranks z is added once,
  // after the allreduce of the ranks' increments.
  const bool alone = comm().size() == 1;
  with_activation(spec_.activation, [&](auto act) {
    detail::per_sample_sum<detail::SampleSum::forward>(space, "mfsim::ResNet::forward", layer_panel,
                                                       z, z, alone ? z : ConstMatrix(), z_next,
                                                       scale, act, {preactivations, Matrix()});
  });
  if (alone) return;
  comm().allreduce_sum(space, z_next);
  add_into(space, z_next, z);
}

void ResNetModel::head_output(const ExecSpace& space, ConstMatrix head_theta, ConstMatrix z_last,
                              Vector f) const {
  const real scale = real(spec_.beta / double(spec_.head_width));
  const int c = spec_.outputs;
  with_activation(spec_.head_activation, [&](auto act) {
    if (c == 1)
      detail::two_layer_forward(space, "mfsim::ResNet::head_output", head_theta, z_last, f, scale,
                                false, act);
    else
      detail::two_layer_vector_forward(space, "mfsim::ResNet::head_output", head_theta, z_last, f,
                                       scale, false, act, c);
  });
  comm().allreduce_sum(space, f);
}

void ResNetModel::predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
                          Workspace& scratch) const {
  const index_t n = index_t(x.extent(0));
  const int d = int(x.extent(1));
  Matrix z = scratch.view<Matrix>("predict_state", n, d);
  Matrix z_next = scratch.view<Matrix>("predict_next_state", n, d);
  Kokkos::deep_copy(space, z, x);
  const detail::ParticlePanels panels = detail::transpose_layers(
      space, s.theta[blocks], spec_.depth, local_layer(0).size(), scratch, "block_panels");
  for (index_t l = 0; l < spec_.depth; ++l) {
    propagate(space, detail::layer_panel(panels, l), z, z_next);
    std::swap(z, z_next);
  }
  head_output(space, s.theta[head], z, f);
}

real ResNetModel::evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& evaluation,
                           ParticleState& dsdt) const {
  auto& e = static_cast<ResNetEvaluation&>(evaluation);
  const LayerView panels = forward_pass(space, s, e);
  // c > 1: the adjoints weighted by the residuals r_i ∈ R^c (one pass; MATH.md §3.9).
  const int c = spec_.outputs;
  const ConstMatrix weights =
      c == 1 ? ConstMatrix() : ConstMatrix(e.residual.data(), e.samples(), c);
  backward_pass(space, s, panels, e.states, weights, e.sensitivities, e.scratch,
                e.block_preactivations, e.block_input_products);
  const bool laplacian = dsdt.tracks_log_density();
  // |z_l|² of every layer in e.norm2, layer after layer (z_L's last: the head's), for the
  // Laplacians.
  if (laplacian)
    detail::squared_row_norms(
        space,
        ConstMatrix(e.states.data(), (spec_.depth + 1) * e.samples(), index_t(e.states.extent(2))),
        0, e.norm2);
  block_velocities(space, s, e, dsdt);
  head_velocity(space, s, e, dsdt);
  return real(e.loss);
}

LayerView ResNetModel::forward_pass(const ExecSpace& space, const ParticleState& s,
                                    ResNetEvaluation& e) const {
  const index_t L = spec_.depth;
  Kokkos::deep_copy(space, layer(e.states, 0), e.x());
  const LayerView panels = detail::transpose_layers(
      space, s.theta[blocks], L, local_layer(0).size(), e.scratch, "block_panels");
  for (index_t l = 0; l < L; ++l)
    propagate(space, detail::layer_panel(panels, l), layer(e.states, l), layer(e.states, l + 1),
              cache_layer(e.block_preactivations, l, L));
  head_output(space, s.theta[head], layer(e.states, L), e.output);
  e.loss = loss_and_derivative(space, loss_kind(), e.output, e.y(), e.residual, spec_.outputs);
  return panels;
}

void ResNetModel::backward_pass(const ExecSpace& space, const ParticleState& s,
                                const LayerView& panels, const LayerView& states,
                                ConstMatrix weights, const LayerView& sensitivities,
                                Workspace& scratch, Matrix preactivations,
                                Matrix input_products) const {
  const index_t L = spec_.depth;
  ConstMatrix head_theta = s.theta[head];
  const ConstMatrix z_last = layer(states, L);
  const real head_scale = real(spec_.beta / double(spec_.head_width));
  const detail::ParticlePanels head_panel = detail::transpose_layers(
      space, head_theta, 1, index_t(head_theta.extent(0)), scratch, "head_panel");
  with_activation(spec_.head_activation, [&](auto act) {
    if (weights.extent(0) == 0)
      detail::per_sample_sum<detail::SampleSum::head_adjoint>(
          space, "mfsim::ResNet::head_adjoint", detail::layer_panel(head_panel, 0), z_last, z_last,
          ConstMatrix(), layer(sensitivities, L), head_scale, act);
    else
      detail::per_sample_sum<detail::SampleSum::weighted_head_adjoint>(
          space, "mfsim::ResNet::head_adjoint", detail::layer_panel(head_panel, 0), z_last, weights,
          ConstMatrix(), layer(sensitivities, L), head_scale, act);
  });
  comm().allreduce_sum(space, layer(sensitivities, L));
  const real block_scale = real(spec_.alpha / (double(L) * double(spec_.width)));
  const bool alone = comm().size() == 1;  // as in propagate
  for (index_t l = L - 1; l >= 0; --l) {
    const Matrix q = layer(sensitivities, l);
    const ConstMatrix q_next = layer(sensitivities, l + 1);
    with_activation(spec_.activation, [&](auto act) {
      detail::per_sample_sum<detail::SampleSum::backward>(
          space, "mfsim::ResNet::backward", detail::layer_panel(panels, l), layer(states, l),
          q_next, alone ? q_next : ConstMatrix(), q, block_scale, act,
          {cache_layer(preactivations, l, L), cache_layer(input_products, l, L)});
    });
    if (alone) continue;
    comm().allreduce_sum(space, q);
    add_into(space, q, q_next);
  }
}

void ResNetModel::block_velocities(const ExecSpace& space, const ParticleState& s,
                                   ResNetEvaluation& e, ParticleState& dsdt) const {
  const index_t L = spec_.depth, per_layer = local_layer(0).size();
  const bool laplacian = dsdt.tracks_log_density();
  const real coeff = real(spec_.alpha / double(e.samples()));
  const index_t group = std::max<index_t>(1, e.velocity_layer_group);
  // c > 1: the residuals are in the adjoints p (evaluate), each sample weighs 1 here.
  const ConstVector r = spec_.outputs == 1 ? ConstVector(e.residual) : ConstVector(e.unit_weights);
  const detail::LayerCache cache{e.block_preactivations, e.block_input_products};
  for (index_t first = 0; first < L && per_layer > 0; first += group) {
    const index_t layers = std::min(group, L - first);
    const auto zs = tiles::pack_layers(space, layer_stack(e.states, first, layers), true, e.scratch,
                                       "layer_states");
    const auto qs = tiles::pack_layers(space, layer_stack(e.sensitivities, first + 1, layers),
                                       false, e.scratch, "layer_sensitivities");
    with_activation(spec_.activation, [&](auto act) {
      if (laplacian) {
        block_velocity<true>(space, s.theta[blocks], first, layers, per_layer, zs, qs, r, e.norm2,
                             dsdt.theta[blocks], dsdt.log_density[blocks], coeff, act, cache);
      } else {
        block_velocity<false>(space, s.theta[blocks], first, layers, per_layer, zs, qs, r, e.norm2,
                              dsdt.theta[blocks], Vector(), coeff, act, cache);
      }
    });
  }
}

void ResNetModel::head_velocity(const ExecSpace& space, const ParticleState& s, ResNetEvaluation& e,
                                ParticleState& dsdt) const {
  const index_t L = spec_.depth, n = e.samples();
  const ConstMatrix z_last = layer(e.states, L);
  const ConstVector head_norm2 = Kokkos::subview(e.norm2, std::make_pair(L * n, (L + 1) * n));
  const real coeff = real(spec_.beta / double(n));
  const int c = spec_.outputs;
  if (c > 1) {
    const tiles::SamplePanels panels =
        tiles::pack_samples(space, z_last, false, e.scratch, "head_samples");
    const bool laplacian = dsdt.tracks_log_density();
    with_activation(spec_.head_activation, [&](auto act) {
      if (laplacian)
        detail::two_layer_vector_velocity<true>(
            space, "mfsim::ResNet::head_velocity", s.theta[head], panels, e.residual, head_norm2,
            dsdt.theta[head], dsdt.log_density[head], coeff, act, c, e.scratch);
      else
        detail::two_layer_vector_velocity<false>(
            space, "mfsim::ResNet::head_velocity", s.theta[head], panels, e.residual, head_norm2,
            dsdt.theta[head], Vector(), coeff, act, c, e.scratch);
    });
    return;
  }
  with_activation(spec_.head_activation, [&](auto act) {
    if (dsdt.tracks_log_density()) {
      detail::two_layer_velocity<true>(space, "mfsim::ResNet::head_velocity", s.theta[head], z_last,
                                       e.residual, head_norm2, dsdt.theta[head],
                                       dsdt.log_density[head], coeff, false, act, e.scratch);
    } else {
      detail::two_layer_velocity<false>(space, "mfsim::ResNet::head_velocity", s.theta[head],
                                        z_last, e.residual, head_norm2, dsdt.theta[head], Vector(),
                                        coeff, false, act, e.scratch);
    }
  });
}

std::map<std::string, Activation> ResNetModel::activations() const {
  return {{"model.activation", spec_.activation}, {"model.head_activation", spec_.head_activation}};
}

std::map<std::string, std::string> ResNetModel::scalings(double dt) const {
  // Mean-field time: dθ/dt = −LM ∇_θ L and dω/dt = −K ∇_ω L, so gradient descent on the raw
  // parameters takes the same steps with learning rate LM·dt on the blocks and K·dt on the head
  // (one shared raw rate is not this flow unless LM = K).
  return {
      {"flow_scaling",
       "z_{l+1} = z_l + (alpha/(L M)) sum_m u_{l,m} sigma0(w_{l,m}.z_l + b_{l,m}); "
       "f = (beta/K) sum_k a_k sigmah(v_k.z_L)" +
           (spec_.outputs > 1 ? fmt::format(", a_k in R^{}", spec_.outputs) : std::string()) +
           "; " + loss_formula(spec_.loss) +
           "; dtheta_{l,m}/dt = -L M grad_theta L; domega_k/dt = -K grad_omega L"},
      {"raw_learning_rate_blocks",
       fmt::format("{}", double(spec_.depth) * double(spec_.width) * dt)},
      {"raw_learning_rate_head", fmt::format("{}", double(spec_.head_width) * dt)},
  };
}

}  // namespace mfsim

#include "mfsim/models/two_layer.hpp"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "detail/two_layer_kernels.hpp"
#include "detail/two_layer_vector_kernels.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/models/ntk.hpp"

namespace mfsim {

TwoLayerModel::TwoLayerModel(const TwoLayerSpec& spec, const Dataset& data,
                             const Communicator& comm)
    : Model(data, comm, spec.loss, spec.outputs), spec_(spec) {
  const int dim = data.dim();
  GroupSpec g;
  g.name = "two_layer";
  for (int j = 0; j < spec.outputs; ++j) {
    g.columns.push_back(spec.outputs == 1 ? "a" : "a_" + std::to_string(j + 1));
    g.init_std.push_back(spec.std_a);
  }
  g.outputs = spec.outputs;
  for (int c = 0; c < dim; ++c) {
    g.columns.push_back("w_" + std::to_string(c + 1));
    g.init_std.push_back(spec.std_w);
  }
  if (spec.bias) {
    g.columns.push_back("b");
    g.init_std.push_back(spec.std_b);
  }
  g.path_norm_scale = spec.beta;
  g.global_count = spec.width;
  shard_group(g, comm.rank(), comm.size());
  groups_.push_back(g);

  input_norm2_ = uninitialized<Vector>("mfsim::TwoLayer::input_norm2", data.n_train());
  detail::squared_row_norms(ExecSpace(), data.x_train, spec.bias ? real(1) : real(0), input_norm2_);
  train_panels_ = std::make_shared<const tiles::SamplePanels>(
      tiles::pack_samples(ExecSpace(), data.x_train, spec.bias));
}

void TwoLayerModel::initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const {
  const GroupSpec& g = groups_[0];
  Matrix theta = s.theta[0];
  const int dim = data().dim();
  const bool bias = spec_.bias;
  const real sa = real(spec_.std_a), sw = real(spec_.std_w), sb = real(spec_.std_b);
  const index_t offset = g.slice_offset;  // one slice: a contiguous shard
  const CounterRng rng(seed, rng_particles);
  // Draw j of a particle's stream is its coordinate j; the output weights a_2 … a_c take draws
  // after the scalar model's, so that c = 1 draws what it always drew.
  const int c = spec_.outputs;
  Kokkos::parallel_for(
      "mfsim::TwoLayer::initialize", Kokkos::RangePolicy<ExecSpace>(0, g.local_count),
      KOKKOS_LAMBDA(index_t i) {
        const index_t id = offset + i;
        const auto [key, sign] = antithetic_draw(id, antithetic);
        const int extra = c - 1, first_w = c;
        theta(i, 0) = sign * sa * real(rng.normal(key, 0));
        for (int q = 0; q < dim; ++q) theta(i, first_w + q) = sw * real(rng.normal(key, q + 1));
        if (bias) theta(i, first_w + dim) = sb * real(rng.normal(key, dim + 1));
        for (int j = 1; j <= extra; ++j)
          theta(i, j) = sign * sa * real(rng.normal(key, std::uint32_t(dim + 1 + j)));
      });
}

std::unique_ptr<Evaluation> TwoLayerModel::make_evaluation(
    const ExecSpace& /*space: nothing filled*/, index_t minibatch) const {
  auto e = std::make_unique<Evaluation>(data(), minibatch, spec_.outputs);
  activation_cache(*e, groups_[0].local_count);  // allocated here, once, rather than in a step
  return e;
}

Matrix TwoLayerModel::activation_cache(Evaluation& e, index_t particles) const {
  if (!spec_.caches_activations(e.samples(), particles, data().dim())) return Matrix();
  return e.scratch.view<Matrix>("preactivations", detail::preactivation_blocks(particles),
                                e.samples() * tiles::lanes);
}

void TwoLayerModel::forward(const ExecSpace& space, ConstMatrix theta, ConstMatrix x, Vector f,
                            Matrix preactivations) const {
  const real scale = real(spec_.beta / double(spec_.width));
  const int c = spec_.outputs;
  with_activation(spec_.activation, [&](auto act) {
    if (c == 1)
      detail::two_layer_forward(space, "mfsim::TwoLayer::forward", theta, x, f, scale, spec_.bias,
                                act, preactivations);
    else
      detail::two_layer_vector_forward(space, "mfsim::TwoLayer::forward", theta, x, f, scale,
                                       spec_.bias, act, c);
  });
}

void TwoLayerModel::predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
                            Workspace& /*scratch: the forward pass needs none*/) const {
  forward(space, s.theta[0], x, f, Matrix());
  comm().allreduce_sum(space, f);
}

real TwoLayerModel::evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                             ParticleState& dsdt) const {
  const Vector r = e.residual;
  const Matrix preactivations = activation_cache(e, index_t(s.theta[0].extent(0)));
  forward(space, s.theta[0], e.x(), e.output, preactivations);
  comm().allreduce_sum(space, e.output);
  e.loss = loss_and_derivative(space, loss_kind(), e.output, e.y(), r, spec_.outputs);

  const real coeff = real(spec_.beta / double(e.samples()));
  const bool laplacian = dsdt.tracks_log_density();
  // The training set is packed once (constructor); a minibatch at every evaluation.
  tiles::SamplePanels batch_panels;
  Vector norm2 = input_norm2_;
  if (e.minibatch()) {
    batch_panels = tiles::pack_samples(space, e.x(), spec_.bias, e.scratch, "minibatch_samples");
    norm2 = e.scratch.view<Vector>("minibatch_norm2", e.samples());
    detail::squared_row_norms(space, e.x(), spec_.bias ? real(1) : real(0), norm2);
  }
  const tiles::SamplePanels& panels = e.minibatch() ? batch_panels : *train_panels_;
  velocity(space, s.theta[0], panels, r, norm2, dsdt.theta[0],
           laplacian ? dsdt.log_density[0] : Vector(), coeff, "mfsim::TwoLayer::velocity",
           e.scratch, preactivations);
  return real(e.loss);
}

void TwoLayerModel::velocity(const ExecSpace& space, ConstMatrix theta,
                             const tiles::SamplePanels& panels, ConstVector r, ConstVector norm2,
                             Matrix v, Vector laplacian, real coeff, const char* label,
                             Workspace& scratch, ConstMatrix preactivations) const {
  const int c = spec_.outputs;
  const bool with_laplacian = laplacian.extent(0) == theta.extent(0) && laplacian.data();
  with_activation(spec_.activation, [&](auto act) {
    if (c > 1 && with_laplacian)
      detail::two_layer_vector_velocity<true>(space, label, theta, panels, r, norm2, v, laplacian,
                                              coeff, act, c, scratch);
    else if (c > 1)
      detail::two_layer_vector_velocity<false>(space, label, theta, panels, r, norm2, v, Vector(),
                                               coeff, act, c, scratch);
    else if (with_laplacian)
      detail::two_layer_velocity<true>(space, label, theta, panels, r, norm2, v, laplacian, coeff,
                                       act, preactivations);
    else
      detail::two_layer_velocity<false>(space, label, theta, panels, r, norm2, v, Vector(), coeff,
                                        act, preactivations);
  });
}

std::map<std::string, Activation> TwoLayerModel::activations() const {
  return {{"model.activation", spec_.activation}};
}

void TwoLayerModel::accumulate_gram(const ExecSpace& space, const ParticleState& s,
                                    const Evaluation& /*e*/, int /*part*/, Matrix gram,
                                    Workspace& scratch) const {
  accumulate_gram_on(space, s, data().x_train, gram, scratch);
}

void TwoLayerModel::accumulate_gram_on(const ExecSpace& space, const ParticleState& s,
                                       ConstMatrix x, Matrix gram, Workspace& scratch) const {
  const real scale = real(spec_.beta / std::sqrt(double(spec_.width)));
  const int c = spec_.outputs;
  with_activation(spec_.activation, [&](auto act) {
    if (c == 1)
      detail::accumulate_two_layer_gram(space, s.theta[0], x, scale, spec_.bias, act, gram,
                                        scratch);
    else
      mfsim::accumulate_gram(
          space,
          detail::TwoLayerVectorFeatures<decltype(act)>{s.theta[0], x, scale, spec_.bias, act, c},
          index_t(s.theta[0].extent(0)), gram, scratch);
  });
}

double TwoLayerModel::infinite_width_gram(const ExecSpace& space, Matrix kernel) const {
  return infinite_width_gram_on(space, data().x_train, kernel);
}

double TwoLayerModel::infinite_width_gram_on(const ExecSpace& space, ConstMatrix x,
                                             Matrix kernel) const {
  const TwoLayerKernelSpec k{spec_.activation, spec_.std_a, spec_.std_w, spec_.std_b, spec_.bias};
  two_layer_kernel(space, k, x, kernel);
  return spec_.beta * spec_.beta;
}

void TwoLayerModel::potential(const ExecSpace& space, const Evaluation& e, ConstMatrix points,
                              Vector psi, Workspace& scratch) const {
  const index_t count = index_t(points.extent(0));
  const Matrix v = scratch.view<Matrix>("potential_velocity", count, points.extent(1));
  const real coeff = real(spec_.beta / double(data().n_train()));
  velocity(space, points, *train_panels_, e.residual, input_norm2_, v, Vector(), coeff,
           "mfsim::TwoLayer::potential", scratch);
  const int c = spec_.outputs;
  Kokkos::parallel_for(
      "mfsim::TwoLayer::potential_from_velocity", Kokkos::RangePolicy<ExecSpace>(space, 0, count),
      KOKKOS_LAMBDA(index_t k) {
        real sum = -points(k, 0) * v(k, 0);
        for (int j = 1; j < c; ++j) sum -= points(k, j) * v(k, j);
        psi(k) = sum;
      });
}

std::map<std::string, std::string> TwoLayerModel::scalings(double dt) const {
  // Mean-field time: dθ/dt = −m ∇_θ L, so gradient descent on the raw parameters with learning
  // rate m·dt takes the same steps.
  return {
      {"flow_scaling",
       fmt::format("f = (beta/m) sum_k a_k sigma(w_k.x + b_k){}; {}; "
                   "dtheta_k/dt = -m grad_{{theta_k}} L",
                   spec_.outputs > 1 ? fmt::format(", a_k in R^{}", spec_.outputs) : "",
                   loss_formula(spec_.loss))},
      {"raw_learning_rate", fmt::format("{}", double(spec_.width) * dt)},
  };
}

}  // namespace mfsim

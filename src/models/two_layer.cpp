#include "mfsim/models/two_layer.hpp"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "detail/two_layer_kernels.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/models/ntk.hpp"

namespace mfsim {

TwoLayerModel::TwoLayerModel(const TwoLayerSpec& spec, const Dataset& data,
                             const Communicator& comm)
    : Model(data, comm, spec.loss), spec_(spec) {
  const int dim = data.dim();
  GroupSpec g;
  g.name = "two_layer";
  g.columns.push_back("a");
  g.init_std.push_back(spec.std_a);
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
  Kokkos::parallel_for(
      "mfsim::TwoLayer::initialize", Kokkos::RangePolicy<ExecSpace>(0, g.local_count),
      KOKKOS_LAMBDA(index_t i) {
        const index_t id = offset + i;
        const auto [key, sign] = antithetic_draw(id, antithetic);
        theta(i, 0) = sign * sa * real(rng.normal(key, 0));
        for (int c = 0; c < dim; ++c) theta(i, c + 1) = sw * real(rng.normal(key, c + 1));
        if (bias) theta(i, dim + 1) = sb * real(rng.normal(key, dim + 1));
      });
}

std::unique_ptr<Evaluation> TwoLayerModel::make_evaluation(
    const ExecSpace& /*space: nothing filled*/, index_t minibatch) const {
  return std::make_unique<Evaluation>(data(), minibatch);
}

void TwoLayerModel::predict(const ExecSpace& space, const ParticleState& s, ConstMatrix x, Vector f,
                            Workspace& /*scratch: the forward pass needs none*/) const {
  const real scale = real(spec_.beta / double(spec_.width));
  with_activation(spec_.activation, [&](auto act) {
    detail::two_layer_forward(space, "mfsim::TwoLayer::forward", s.theta[0], x, f, scale,
                              spec_.bias, act);
  });
  comm().allreduce_sum(space, f);
}

real TwoLayerModel::evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                             ParticleState& dsdt) const {
  const Vector r = e.residual;
  predict(space, s, e.x(), e.output, e.scratch);
  e.loss = loss_and_derivative(space, loss_kind(), e.output, e.y(), r);

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
  with_activation(spec_.activation, [&](auto act) {
    if (laplacian) {
      detail::two_layer_velocity<true>(space, "mfsim::TwoLayer::velocity", s.theta[0], panels, r,
                                       norm2, dsdt.theta[0], dsdt.log_density[0], coeff, act);
    } else {
      detail::two_layer_velocity<false>(space, "mfsim::TwoLayer::velocity", s.theta[0], panels, r,
                                        norm2, dsdt.theta[0], Vector(), coeff, act);
    }
  });
  return real(e.loss);
}

std::map<std::string, Activation> TwoLayerModel::activations() const {
  return {{"model.activation", spec_.activation}};
}

void TwoLayerModel::accumulate_gram(const ExecSpace& space, const ParticleState& s,
                                    const Evaluation& /*e*/, int /*part*/, Matrix gram,
                                    Workspace& scratch) const {
  const real scale = real(spec_.beta / std::sqrt(double(spec_.width)));
  with_activation(spec_.activation, [&](auto act) {
    detail::accumulate_two_layer_gram(space, s.theta[0], data().x_train, scale, spec_.bias, act,
                                      gram, scratch);
  });
}

double TwoLayerModel::infinite_width_gram(const ExecSpace& space, Matrix kernel) const {
  const TwoLayerKernelSpec k{spec_.activation, spec_.std_a, spec_.std_w, spec_.std_b, spec_.bias};
  two_layer_kernel(space, k, data().x_train, kernel);
  return spec_.beta * spec_.beta;
}

void TwoLayerModel::potential(const Evaluation& e, ConstMatrix points, Vector psi,
                              Workspace& scratch) const {
  const index_t count = index_t(points.extent(0));
  const Matrix v = scratch.view<Matrix>("potential_velocity", count, points.extent(1));
  const real coeff = real(spec_.beta / double(data().n_train()));
  with_activation(spec_.activation, [&](auto act) {
    detail::two_layer_velocity<false>(ExecSpace(), "mfsim::TwoLayer::potential", points,
                                      *train_panels_, e.residual, input_norm2_, v, Vector(), coeff,
                                      act);
  });
  Kokkos::parallel_for(
      "mfsim::TwoLayer::potential_from_velocity", Kokkos::RangePolicy<ExecSpace>(0, count),
      KOKKOS_LAMBDA(index_t j) { psi(j) = -points(j, 0) * v(j, 0); });
}

std::map<std::string, std::string> TwoLayerModel::scalings(double dt) const {
  // Mean-field time: dθ/dt = −m ∇_θ L, so gradient descent on the raw parameters with learning
  // rate m·dt takes the same steps.
  return {
      {"flow_scaling",
       "f = (beta/m) sum_k a_k sigma(w_k.x + b_k); L = |f(x)-y|^2/(2n); "
       "dtheta_k/dt = -m grad_{theta_k} L"},
      {"raw_learning_rate", fmt::format("{}", double(spec_.width) * dt)},
  };
}

}  // namespace mfsim

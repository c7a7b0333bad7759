#include "mfsim/models/two_layer.hpp"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "mfsim/core/random.hpp"
#include "mfsim/diagnostics/gram_kernel.hpp"
#include "mfsim/diagnostics/ntk.hpp"

namespace mfsim {
namespace {

// f(x_i) = scale · Σ_k a_k σ(w_k·x_i + b_k) over this rank's particles; one team per sample.
template <class Act>
void forward_kernel(ConstMatrix theta, ConstMatrix x, Vector f, real scale, bool bias, Act act) {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  const int dim = int(x.extent(1));
  const index_t m = index_t(theta.extent(0));
  Kokkos::parallel_for(
      "mfsim::TwoLayer::forward", Policy(int(x.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const Policy::member_type& team) {
        const index_t i = team.league_rank();
        real sum = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, m),
            [&](index_t k, real& acc) {
              real z = bias ? theta(k, dim + 1) : real(0);
              for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
              acc += theta(k, 0) * act.value(z);
            },
            sum);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { f(i) = scale * sum; });
      });
}

// v_k = −(β/n) Σ_i r_i ∇_θ[a σ(w·x_i + b)] (A5) and ΔΨ(θ_k) = (β/n) Σ_i r_i a σ''(z) (|x_i|²+1)
// (A6).
template <bool WithLaplacian, class Act>
void velocity_kernel(ConstMatrix theta, ConstMatrix x, ConstVector r, ConstVector norm2, Matrix v,
                     Vector laplacian, real coeff, bool bias, Act act) {
  const int dim = int(x.extent(1));
  const index_t n = index_t(x.extent(0));
  Kokkos::parallel_for(
      "mfsim::TwoLayer::velocity", Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))),
      KOKKOS_LAMBDA(index_t k) {
        const real a = theta(k, 0);
        const real b = bias ? theta(k, dim + 1) : real(0);
        real va = 0, vb = 0, lap = 0;
        for (int c = 0; c < dim; ++c) v(k, c + 1) = 0;
        for (index_t i = 0; i < n; ++i) {
          real z = b;
          for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
          real s, ds, dds = 0;
          if constexpr (WithLaplacian) {
            act.eval(z, s, ds, dds);
          } else {
            act.eval(z, s, ds);
          }
          const real ri = r(i);
          va += ri * s;
          const real g = ri * a * ds;
          for (int c = 0; c < dim; ++c) v(k, c + 1) += g * x(i, c);
          vb += g;
          if constexpr (WithLaplacian) lap += ri * a * dds * norm2(i);
        }
        v(k, 0) = -coeff * va;
        for (int c = 0; c < dim; ++c) v(k, c + 1) *= -coeff;
        if (bias) v(k, dim + 1) = -coeff * vb;
        if constexpr (WithLaplacian) laplacian(k) = coeff * lap;
      });
}

// φ_{i,k} = (β/√m) (σ(z), a σ'(z) x_i, a σ'(z) [bias]), z = w_k·x_i + b_k (A9).
template <class Act>
struct TwoLayerFeatures {
  ConstMatrix theta, x;
  real scale;
  bool bias;
  Act act;

  int size() const { return int(theta.extent(1)); }
  KOKKOS_INLINE_FUNCTION void operator()(index_t i, index_t k, real* phi) const {
    const int dim = int(x.extent(1));
    real z = bias ? theta(k, dim + 1) : real(0);
    for (int c = 0; c < dim; ++c) z += theta(k, c + 1) * x(i, c);
    real s, ds;
    act.eval(z, s, ds);
    const real g = scale * theta(k, 0) * ds;
    phi[0] = scale * s;
    for (int c = 0; c < dim; ++c) phi[c + 1] = g * x(i, c);
    if (bias) phi[dim + 1] = g;
  }
};

template <class Act>
void accumulate_two_layer_gram(ConstMatrix theta, ConstMatrix x, real scale, bool bias, Act act,
                               Matrix gram) {
  accumulate_gram(TwoLayerFeatures<Act>{theta, x, scale, bias, act}, index_t(theta.extent(0)),
                  gram);
}

}  // namespace

TwoLayerModel::TwoLayerModel(const TwoLayerSpec& spec, const Dataset& data,
                             const Communicator& comm)
    : Model(data, comm), spec_(spec) {
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
  const Shard shard = shard_of(spec.width, comm.rank(), comm.size(), 2);
  g.offset = shard.begin;
  g.local_count = shard.size();
  groups_.push_back(g);

  residual_ = Vector("mfsim::TwoLayer::residual", data.n_train());
  input_norm2_ = uninitialized<Vector>("mfsim::TwoLayer::input_norm2", data.n_train());
  ConstMatrix x = data.x_train;
  Vector norm2 = input_norm2_;
  const real extra = spec.bias ? real(1) : real(0);
  Kokkos::parallel_for(
      "mfsim::TwoLayer::input_norm2", Kokkos::RangePolicy<ExecSpace>(0, data.n_train()),
      KOKKOS_LAMBDA(index_t i) {
        real s = extra;
        for (int c = 0; c < dim; ++c) s += x(i, c) * x(i, c);
        norm2(i) = s;
      });
}

void TwoLayerModel::initialize(ParticleState& s, std::uint64_t seed, bool antithetic) const {
  const GroupSpec& g = groups_[0];
  Matrix theta = s.theta[0];
  const int dim = data().dim();
  const bool bias = spec_.bias;
  const real sa = real(spec_.std_a), sw = real(spec_.std_w), sb = real(spec_.std_b);
  const index_t offset = g.offset;
  const CounterRng rng(seed, rng_particles);
  Kokkos::parallel_for(
      "mfsim::TwoLayer::initialize", Kokkos::RangePolicy<ExecSpace>(0, g.local_count),
      KOKKOS_LAMBDA(index_t i) {
        const index_t id = offset + i;
        // Antithetic pairs (2p, 2p+1) share the draws of p and have opposite output weights.
        const std::uint64_t key = std::uint64_t(antithetic ? id / 2 : id);
        const real sign = (antithetic && id % 2 == 1) ? real(-1) : real(1);
        theta(i, 0) = sign * sa * real(rng.normal(key, 0));
        for (int c = 0; c < dim; ++c) theta(i, c + 1) = sw * real(rng.normal(key, c + 1));
        if (bias) theta(i, dim + 1) = sb * real(rng.normal(key, dim + 1));
      });
}

void TwoLayerModel::predict(const ParticleState& s, ConstMatrix x, Vector f) const {
  const real scale = real(spec_.beta / double(spec_.width));
  with_activation(spec_.activation,
                  [&](auto act) { forward_kernel(s.theta[0], x, f, scale, spec_.bias, act); });
  comm().allreduce_sum(f);
}

real TwoLayerModel::velocity(const ParticleState& s, ParticleState& dsdt) {
  const Dataset& d = data();
  predict(s, d.x_train, residual_);
  Vector r = residual_;
  ConstVector y = d.y_train;
  Kokkos::parallel_for(
      "mfsim::TwoLayer::residual", Kokkos::RangePolicy<ExecSpace>(0, d.n_train()),
      KOKKOS_LAMBDA(index_t i) { r(i) -= y(i); });

  const real coeff = real(spec_.beta / double(d.n_train()));
  const bool laplacian = dsdt.tracks_log_density();
  with_activation(spec_.activation, [&](auto act) {
    if (laplacian) {
      velocity_kernel<true>(s.theta[0], d.x_train, r, input_norm2_, dsdt.theta[0],
                            dsdt.log_density[0], coeff, spec_.bias, act);
    } else {
      velocity_kernel<false>(s.theta[0], d.x_train, r, input_norm2_, dsdt.theta[0], Vector(), coeff,
                             spec_.bias, act);
    }
  });
  return real(half_mean_square(r));
}

std::map<std::string, Activation> TwoLayerModel::activations() const {
  return {{"model.activation", spec_.activation}};
}

void TwoLayerModel::accumulate_gram(const ParticleState& s, int /*part*/, Matrix gram) const {
  const real scale = real(spec_.beta / std::sqrt(double(spec_.width)));
  with_activation(spec_.activation, [&](auto act) {
    accumulate_two_layer_gram(s.theta[0], data().x_train, scale, spec_.bias, act, gram);
  });
}

double TwoLayerModel::infinite_width_gram(Matrix kernel) const {
  const TwoLayerKernelSpec k{spec_.activation, spec_.std_a, spec_.std_w, spec_.std_b, spec_.bias};
  two_layer_kernel(k, data().x_train, kernel);
  return spec_.beta * spec_.beta;
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

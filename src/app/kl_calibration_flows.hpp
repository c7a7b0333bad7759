#pragma once
// The transported tracer laws of the KL calibration harness (docs/diagnostics.md, "Which KL to
// trust"): a short deterministic run of mfsim's own model (two-layer or ResNet, from a config and
// overrides), and beside its m particles T ≫ m fresh draws of ρ₀ ("tracers") carried passively
// through the same velocity field with their log-densities. The field at a point depends on the
// particles only through what the model's evaluation holds (residuals; the ResNet's layer states
// and sensitivities), so the tracers see the particles' field without changing it:
//   two-layer θ = (a, w, b):    Ψ(θ) = (β/n) Σ_i r_i a σ(w·x_i + b)
//   ResNet block of layer l:    Ψ_l(θ) = (α/n) Σ_i r_i (q_{l+1}^i·u) σ0(w·z_l^i + b)
//   ResNet head ω = (a, v):     Ψ(ω) = (β/n) Σ_i r_i a σh(v·z_L^i)
// (MATH.md §1, §3), v = −∇Ψ and d/dt log ρ_t = ΔΨ along a characteristic, integrated with the
// run's scheme stage by stage (Euler, Heun, RK4: each stage uses the previous stage's velocity
// only). The particles' law is Φ_t # ρ₀ (Φ_t the flow map of that field); its KL to ρ₀ is the mean
// over the tracers of log ρ_t − log ρ₀ at their positions, with sampling error (spread)/√T: the
// reference the estimators on the particles are compared with. tracer_velocity is exposed so
// that a test can check it against the model's own velocities and Laplacians at the particles.
// Host loops: private to the library's tests and benchmarks.
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "detail/kl_calibration_laws.hpp"
#include "mfsim/app/simulation.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim::calibration {

// One law whose tracers the flow carries: a particle group and a slice of it (a ResNet layer).
struct TracedLaw {
  int group = 0;
  int slice = 0;
  std::string name;  // "two_layer", "blocks layer 0", "head"
};

// Points of a traced law, [count][D + 1] row-major: the coordinates (not whitened), then log ρ_t.
using TracerRows = std::vector<double>;

// The field's data on the host: what the evaluation at the current (stage) state holds.
struct FieldData {
  int d = 0;                   // input dimension
  index_t n = 0;               // samples
  std::vector<double> r;       // residuals [n]
  std::vector<double> states;  // ResNet: z_l^i [L + 1][n][d]; two-layer: the inputs [n][d]
  std::vector<double> sens;    // ResNet: q_l^i [L + 1][n][d]
};

inline FieldData field_data(const Model& model, const Evaluation& e) {
  FieldData f;
  f.d = model.data().dim();
  f.n = e.samples();
  const auto r = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), e.residual);
  f.r.assign(r.data(), r.data() + r.size());
  if (const auto* re = dynamic_cast<const ResNetEvaluation*>(&e)) {
    const auto z = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), re->states);
    const auto q = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), re->sensitivities);
    f.states.assign(z.data(), z.data() + z.size());
    f.sens.assign(q.data(), q.data() + q.size());
  } else {
    const auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), e.x());
    for (index_t i = 0; i < f.n; ++i)
      for (int c = 0; c < f.d; ++c) f.states.push_back(x(i, c));
  }
  return f;
}

namespace detail {

// One unit Ψ(θ) = coeff Σ_i r_i o_i σ(w·z_i + b) (o_i its output factor at sample i: a, or q·u):
// adds −∂Ψ/∂w to vw, −∂Ψ/∂b to vb (with `bias`) and ΔΨ over (w, b) to laplacian (o_i is linear
// in the output weights: no second derivative there), and hands coeff r_i σ_i to out_grad, which
// adds −∂Ψ/∂(output weights).
template <class Act, class Out, class OutGrad>
void unit_field(const Act& act, const double* w, double b, bool bias, const FieldData& f,
                const double* z, double coeff, const Out& out, const OutGrad& out_grad, double* vw,
                double* vb, double& laplacian) {
  const int d = f.d;
  for (index_t i = 0; i < f.n; ++i) {
    const double* zi = z + i * d;
    double u = bias ? b : 0, norm2 = bias ? 1 : 0;
    for (int c = 0; c < d; ++c) u += w[c] * zi[c], norm2 += zi[c] * zi[c];
    real s, ds, dds;
    act.eval(real(u), s, ds, dds);
    const double cr = coeff * f.r[std::size_t(i)], o = out(i);
    for (int c = 0; c < d; ++c) vw[c] -= cr * o * ds * zi[c];
    if (bias) *vb -= cr * o * ds;
    laplacian += cr * o * dds * norm2;
    out_grad(i, cr * s);
  }
}

}  // namespace detail

// v = −∇Ψ and ΔΨ of the traced law at the rows of `points` ([count][D + 1]), into `rate` (the
// same shape: the velocity, then d/dt log ρ_t = ΔΨ).
inline void tracer_velocity(const Config& config, const TracedLaw& law, const FieldData& f,
                            const TracerRows& points, TracerRows& rate) {
  const int d = f.d;
  rate.assign(points.size(), 0.0);
  if (config.model.kind() == ModelKind::two_layer) {
    const TwoLayerSpec& spec = config.model.two_layer();
    const int dim = 1 + d + (spec.bias ? 1 : 0);
    const std::size_t count = points.size() / std::size_t(dim + 1);
    with_activation(spec.activation, [&](auto act) {
      for (std::size_t j = 0; j < count; ++j) {
        const double* p = &points[j * std::size_t(dim + 1)];
        double* v = &rate[j * std::size_t(dim + 1)];
        detail::unit_field(
            act, p + 1, spec.bias ? p[1 + d] : 0, spec.bias, f, f.states.data(),
            spec.beta / double(f.n), [&](index_t) { return p[0]; },
            [&](index_t, double g) { v[0] -= g; }, v + 1, v + 1 + d, v[dim]);
      }
    });
    return;
  }
  const ResNetSpec& spec = config.model.resnet();
  const std::size_t layer = std::size_t(f.n) * std::size_t(d);
  if (law.group == 0) {  // the blocks (u, w, b) of layer law.slice
    const int dim = 2 * d + 1;
    const std::size_t count = points.size() / std::size_t(dim + 1);
    const double* z = &f.states[std::size_t(law.slice) * layer];
    const double* q = &f.sens[std::size_t(law.slice + 1) * layer];
    with_activation(spec.activation, [&](auto act) {
      for (std::size_t j = 0; j < count; ++j) {
        const double* p = &points[j * std::size_t(dim + 1)];
        double* v = &rate[j * std::size_t(dim + 1)];
        const auto out = [&](index_t i) {
          double s = 0;
          for (int c = 0; c < d; ++c) s += q[std::size_t(i * d + c)] * p[c];
          return s;
        };
        const auto out_grad = [&](index_t i, double g) {
          for (int c = 0; c < d; ++c) v[c] -= g * q[std::size_t(i * d + c)];
        };
        detail::unit_field(act, p + d, p[2 * d], true, f, z, spec.alpha / double(f.n), out,
                           out_grad, v + d, v + 2 * d, v[dim]);
      }
    });
    return;
  }
  const int dim = 1 + d;  // the head (a, v) on z_L
  const std::size_t count = points.size() / std::size_t(dim + 1);
  const double* z = &f.states[std::size_t(spec.depth) * layer];
  with_activation(spec.head_activation, [&](auto act) {
    for (std::size_t j = 0; j < count; ++j) {
      const double* p = &points[j * std::size_t(dim + 1)];
      double* v = &rate[j * std::size_t(dim + 1)];
      detail::unit_field(
          act, p + 1, 0, false, f, z, spec.beta / double(f.n), [&](index_t) { return p[0]; },
          [&](index_t, double g) { v[0] -= g; }, v + 1, nullptr, v[dim]);
    }
  });
}

// The rows of slice `slice` of group `group` of a state that tracks log-densities, as TracerRows.
inline TracerRows state_rows(const ParticleState& s, const GroupSpec& g, int group, int slice) {
  const auto theta = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s.theta[group]);
  const auto logp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s.log_density[group]);
  const index_t per = g.per_slice(), first = index_t(slice) * per;
  TracerRows rows;
  for (index_t i = first; i < first + per; ++i) {
    for (int c = 0; c < g.dim(); ++c) rows.push_back(theta(i, c));
    rows.push_back(logp(i));
  }
  return rows;
}

// The traced laws of a model: the two-layer's particles; the ResNet's first and last layer of
// blocks and its head.
inline std::vector<TracedLaw> traced_laws(const Config& config) {
  if (config.model.kind() == ModelKind::two_layer) return {{0, 0, "two_layer"}};
  const int last = int(config.model.resnet().depth) - 1;
  return {
      {0, 0, "blocks layer 0"}, {0, last, "blocks layer " + std::to_string(last)}, {1, 0, "head"}};
}

// A traced law at one time: the particles' sample (whitened, antithetic pairs adjacent, with their
// own transported log-ratios; z their whitened initial points) and the tracers' reference KL.
struct FlowLaw {
  std::string name;  // "<label> <law> t=<time>"
  int dim = 0;
  double time = 0;
  bool antithetic = false;
  Sample particles;
  Truth reference;  // the mean of the tracers' log-ratios ± its sampling error
  index_t tracers = 0;
  double reference_spread = 0;  // the tracers' log-ratios' standard deviation
};

namespace detail {

inline double log_initial_density(const GroupSpec& g, const double* theta) {
  double q = 0, norm = 0;
  for (int c = 0; c < g.dim(); ++c) {
    const double sd = g.init_std[std::size_t(c)];
    q += theta[c] * theta[c] / (sd * sd);
    norm += 0.5 * std::log(2 * 3.14159265358979323846 * sd * sd);
  }
  return -0.5 * q - norm;
}

// Whitened coordinates and log ρ − log ρ₀ of TracerRows.
inline void whiten(const GroupSpec& g, const TracerRows& rows, std::vector<double>* x,
                   std::vector<double>* log_ratio) {
  const int dim = g.dim();
  for (std::size_t j = 0; j < rows.size() / std::size_t(dim + 1); ++j) {
    const double* p = &rows[j * std::size_t(dim + 1)];
    if (x)
      for (int c = 0; c < dim; ++c) x->push_back(p[c] / g.init_std[std::size_t(c)]);
    if (log_ratio) log_ratio->push_back(p[dim] - log_initial_density(g, p));
  }
}

// a[j]: the stage j + 1 point is y + dt·a[j]·k_j; b: the weights of the stages' velocities.
struct Scheme {
  std::vector<double> a, b;
};

inline Scheme scheme(IntegratorKind kind) {
  switch (kind) {
    case IntegratorKind::euler:
      return {{}, {1}};
    case IntegratorKind::heun:
      return {{1}, {0.5, 0.5}};
    case IntegratorKind::rk4:
      return {{0.5, 0.5, 1}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}};
  }
  return {};
}

}  // namespace detail

// Runs `config` (the deterministic flow: no regularisation, no minibatches) from its Gaussian
// initial state with `tracers` fresh draws of ρ₀ per traced law (seed `tracer_seed`), and returns
// every traced law at each of `times` (rounded to whole steps of flow.dt).
inline std::vector<FlowLaw> run_traced_flow(const Config& config, const std::string& label,
                                            index_t tracers, const std::vector<double>& times,
                                            std::uint64_t tracer_seed) {
  if (config.flow.regularisation.any() || config.flow.minibatch.size > 0)
    throw std::invalid_argument("run_traced_flow: a deterministic full-batch flow only");
  Problem p = build_problem(config, self_communicator(), true);
  const Model& model = *p.model;
  const auto& groups = model.groups();
  const std::vector<TracedLaw> laws = traced_laws(config);
  const ParticleState initial = allocate_like(p.state, "calibration::initial");
  for (std::size_t g = 0; g < groups.size(); ++g)
    Kokkos::deep_copy(initial.theta[g], p.state.theta[g]);

  // The tracers: fresh draws of ρ₀ with log ρ₀ at them.
  const CounterRng rng(tracer_seed, rng_reference);
  std::vector<TracerRows> y(laws.size());
  for (std::size_t l = 0; l < laws.size(); ++l) {
    const GroupSpec& g = groups[std::size_t(laws[l].group)];
    std::vector<double> point(std::size_t(g.dim()));
    for (index_t j = 0; j < tracers; ++j) {
      for (int c = 0; c < g.dim(); ++c)
        point[std::size_t(c)] =
            g.init_std[std::size_t(c)] *
            rng.normal((std::uint64_t(l) << 40) + std::uint64_t(j), std::uint32_t(c));
      y[l].insert(y[l].end(), point.begin(), point.end());
      y[l].push_back(detail::log_initial_density(g, point.data()));
    }
  }

  const double dt = config.flow.dt;
  std::vector<index_t> record;
  for (double t : times) record.push_back(index_t(std::llround(t / dt)));
  const index_t steps = *std::max_element(record.begin(), record.end());
  const detail::Scheme rk = detail::scheme(config.flow.integrator);
  Integrator integrator(config.flow.integrator, p.state);
  ParticleState k1 = allocate_like(p.state, "calibration::k1");
  const auto e = model.make_evaluation();
  std::vector<TracerRows> k(laws.size()), sum(laws.size()), point(laws.size());
  // Every law's tracer velocities at stage `stage` (0: at y) into k, added to sum with weight b.
  const auto tracer_stage = [&](std::size_t stage) {
    const FieldData f = field_data(model, *e);
    for (std::size_t l = 0; l < laws.size(); ++l) {
      point[l] = y[l];
      if (stage > 0)
        for (std::size_t i = 0; i < point[l].size(); ++i)
          point[l][i] += dt * rk.a[stage - 1] * k[l][i];
      tracer_velocity(config, laws[l], f, point[l], k[l]);
      if (stage == 0) sum[l].assign(k[l].size(), 0.0);
      for (std::size_t i = 0; i < k[l].size(); ++i) sum[l][i] += rk.b[stage] * k[l][i];
    }
  };

  std::vector<FlowLaw> out;
  for (index_t step = 0;; ++step) {
    if (std::find(record.begin(), record.end(), step) != record.end())
      for (std::size_t l = 0; l < laws.size(); ++l) {
        const GroupSpec& g = groups[std::size_t(laws[l].group)];
        FlowLaw law;
        law.name = label + " " + laws[l].name;
        law.dim = g.dim();
        law.time = double(step) * dt;
        law.antithetic = config.init.antithetic;
        law.tracers = tracers;
        const TracerRows now = state_rows(p.state, g, laws[l].group, laws[l].slice);
        detail::whiten(g, now, &law.particles.x, &law.particles.log_ratio);
        detail::whiten(g, state_rows(initial, g, laws[l].group, laws[l].slice), &law.particles.z,
                       nullptr);
        std::vector<double> log_ratio;
        detail::whiten(g, y[l], nullptr, &log_ratio);
        double s = 0, s2 = 0;
        for (double r : log_ratio) s += r, s2 += r * r;
        const double mean = s / double(tracers), var = s2 / double(tracers) - mean * mean;
        law.reference = {mean, std::sqrt(var / double(tracers - 1))};
        law.reference_spread = std::sqrt(var);
        out.push_back(std::move(law));
      }
    if (step == steps) break;
    model.evaluate(p.state, *e, k1);
    tracer_stage(0);
    std::size_t stage = 0;
    integrator.finish_step(
        p.state, k1, real(dt),
        [&](const ExecSpace& space, const ParticleState& s, ParticleState& dsdt) {
          const real loss = model.evaluate(space, s, *e, dsdt);
          tracer_stage(++stage);
          return loss;
        });
    for (std::size_t l = 0; l < laws.size(); ++l)
      for (std::size_t i = 0; i < y[l].size(); ++i) y[l][i] += dt * sum[l][i];
  }
  return out;
}

}  // namespace mfsim::calibration

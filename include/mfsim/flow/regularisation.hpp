#pragma once
// The regularised, noisy flow of mean-field Langevin dynamics (MATH.md §2.4, §5.2): every particle
// of every group follows
//   dθ = (v(θ) − λ'θ − μ ∇P_ε(θ)) dt + sqrt(2 λ(t)) dB,
// the Wasserstein gradient flow of F_λ = L + (λ'/2) E|θ|² + μ P_ε − λ H(ρ) (one such term per
// group; the ResNet's block entropy is the mean over its layers). v = −∇Ψ is the model's
// velocity; the run loop adds the drifts to it and, with λ > 0, the noise after each
// Euler–Maruyama step.
//
// P_ε is the path norm of a group of two-layer units (GroupSpec::path_norm_scale = β, so that
// P_0 = path_norm_l2 = β mean_k |a_k| ‖(w_k, b_k)‖₂), smoothed at its kinks a = 0 and w = 0:
//   P_ε = β mean_k s_ε(a_k) s_ε(‖w_k‖),   s_ε(x) = sqrt(x² + ε²) − ε,
// so that 0 ≤ P_0 − P_ε ≤ ε β mean_k (|a_k| + ‖w_k‖) and every integrator (and the transport
// KL, which needs ΔP_ε) applies to it. Groups of other units carry no penalty. With c outputs
// (a ∈ R^c, GroupSpec::outputs) |a_k| is the Euclidean norm |a_k|₂ (MATH.md §1.5).
#include <cstdint>
#include <string>
#include <vector>

#include "mfsim/core/math.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

enum class TemperatureSchedule {
  constant,     // λ(t) = λ₀
  logarithmic,  // λ(t) = λ₀ / log(e + t) (Chizat 2022's annealing)
  exponential,  // λ(t) = λ₀ exp(−rate·t)
};
TemperatureSchedule parse_temperature_schedule(const std::string& name);  // throws InputError
const std::vector<std::string>& temperature_schedule_names();

struct Regularisation {
  double temperature = 0;  // λ₀: the entropic regularisation (noise) strength
  TemperatureSchedule schedule = TemperatureSchedule::constant;
  double temperature_rate = 0;        // exponential schedule's rate
  double weight_decay = 0;            // λ'
  double path_norm_penalty = 0;       // μ
  double path_norm_smoothing = 1e-3;  // ε of P_ε
  std::uint64_t noise_seed = 2;       // key of the noise (with the step and the particle id)

  bool noisy() const { return temperature > 0; }
  bool has_drift() const { return weight_decay > 0 || path_norm_penalty > 0; }
  bool any() const { return noisy() || has_drift(); }
  // λ(t) of the schedule.
  double temperature_at(double time) const;
};

// s_ε(|a|)·s_ε(‖w‖) of one two-layer unit θ = (a, w), a the first `outputs` coordinates, and what
// its drift and Laplacian need.
struct SmoothedPathWeight {
  double value;       // s_ε(|a|) s_ε(r), r = ‖w‖
  double d_a;         // ∂/∂a (one output)
  double d_w_factor;  // ∇_w = d_w_factor · w
  double laplacian;   // Δ_θ over all outputs + dim(w) coordinates
  double d_a_factor;  // several outputs: ∇_a = d_a_factor · a

  // One output, a = θ(0).
  template <class Row>
  KOKKOS_INLINE_FUNCTION static SmoothedPathWeight at(const Row& theta, int dim, double eps) {
    double r2 = 0;
    for (int c = 1; c < dim; ++c) r2 += double(theta(c)) * double(theta(c));
    const double a = theta(0);
    const double qa = math::sqrt(a * a + eps * eps), qr = math::sqrt(r2 + eps * eps);
    const double sa = qa - eps, sr = qr - eps;
    const int k = dim - 1;  // coordinates of w
    // s_ε''(a) = ε²/q³; Δ_w s_ε(‖w‖) = k/q − r²/q³.
    return {sa * sr, a / qa * sr, sa / qr,
            eps * eps / (qa * qa * qa) * sr + sa * (k / qr - r2 / (qr * qr * qr)), 0};
  }

  // a = θ(0 … outputs − 1) ∈ R^c: Δ_a s_ε(|a|) = (c − 1)/q + ε²/q³ with q = sqrt(|a|² + ε²).
  template <class Row>
  KOKKOS_INLINE_FUNCTION static SmoothedPathWeight vector_at(const Row& theta, int dim, double eps,
                                                             int outputs) {
    double a2 = 0, r2 = 0;
    for (int c = 0; c < outputs; ++c) a2 += double(theta(c)) * double(theta(c));
    for (int c = outputs; c < dim; ++c) r2 += double(theta(c)) * double(theta(c));
    const double qa = math::sqrt(a2 + eps * eps), qr = math::sqrt(r2 + eps * eps);
    const double sa = qa - eps, sr = qr - eps;
    const int k = dim - outputs;
    const double lap_a = (outputs - 1) / qa + eps * eps / (qa * qa * qa);
    return {sa * sr, 0, sa / qr, lap_a * sr + sa * (k / qr - r2 / (qr * qr * qr)), sr / qa};
  }

  // Either, by the number of outputs.
  template <class Row>
  KOKKOS_INLINE_FUNCTION static SmoothedPathWeight at(const Row& theta, int dim, double eps,
                                                      int outputs) {
    return outputs == 1 ? at(theta, dim, eps) : vector_at(theta, dim, eps, outputs);
  }
};

// out = v + the regularisers' drift at s: −λ'θ − μ ∇P_ε(θ) on θ, and on the log-densities (if
// tracked) the rate −div of that drift, λ'D + μ ΔP_ε, added to ΔΨ. `out` may alias `v`. The
// gradient is in flow time: a group of N particles with penalty μ P_ε moves by −N ∇_{θ_k}(μ P_ε).
// On the instance `space` (without it, the default instance), as add_langevin_noise.
void add_regulariser_drift(const ExecSpace& space, const Regularisation& r,
                           const std::vector<GroupSpec>& groups, const ParticleState& s,
                           const ParticleState& v, ParticleState& out);
void add_regulariser_drift(const Regularisation& r, const std::vector<GroupSpec>& groups,
                           const ParticleState& s, const ParticleState& v, ParticleState& out);

// θ += sqrt(2 λ(time) dt) ξ on every coordinate of every particle, ξ standard normals drawn from
// the counter-based generator keyed by (noise_seed, step, group, global particle id, coordinate):
// the same noise whatever the number of ranks or threads, and on a restart from any step.
void add_langevin_noise(const ExecSpace& space, const Regularisation& r,
                        const std::vector<GroupSpec>& groups, ParticleState& s, index_t step,
                        double time, double dt);
void add_langevin_noise(const Regularisation& r, const std::vector<GroupSpec>& groups,
                        ParticleState& s, index_t step, double time, double dt);

}  // namespace mfsim

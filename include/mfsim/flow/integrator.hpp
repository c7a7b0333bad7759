#pragma once
// Explicit Runge–Kutta schemes in flow time: Euler (order 1), Heun (2), classical RK4 (4).
// The log-densities of a state are integrated with the same scheme as the particles.
#include <functional>
#include <string>
#include <vector>

#include "mfsim/models/particle_state.hpp"

namespace mfsim {

enum class IntegratorKind { euler, heun, rk4 };
IntegratorKind parse_integrator(const std::string& name);  // throws InputError
std::string integrator_name(IntegratorKind kind);
const std::vector<std::string>& integrator_names();  // what flow.integrator accepts

// Evaluates the velocity field at a state, with its kernels on the execution-space instance
// `space`: dsdt ← v(s); returns the loss at s.
using VelocityField =
    std::function<real(const ExecSpace& space, const ParticleState& s, ParticleState& dsdt)>;

class Integrator {
 public:
  // The stage buffers are zeroed on `space` (without it, the default instance).
  Integrator(const ExecSpace& space, IntegratorKind kind, const ParticleState& like);
  Integrator(IntegratorKind kind, const ParticleState& like)
      : Integrator(ExecSpace(), kind, like) {}

  IntegratorKind kind() const { return kind_; }

  // Advances s by dt, given k1 = v(s) (the run loop evaluates it first, for its diagnostics):
  // every stage's update and evaluation of v on the instance `space` (without it, the default
  // instance).
  void finish_step(const ExecSpace& space, ParticleState& s, const ParticleState& k1, real dt,
                   const VelocityField& v);
  void finish_step(ParticleState& s, const ParticleState& k1, real dt, const VelocityField& v) {
    finish_step(ExecSpace(), s, k1, dt, v);
  }

 private:
  IntegratorKind kind_;
  ParticleState stage_, k2_, k3_, k4_;
};

}  // namespace mfsim

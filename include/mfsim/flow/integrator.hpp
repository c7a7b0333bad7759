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

// Evaluates the velocity field at a state: dsdt ← v(s); returns the loss at s.
using VelocityField = std::function<real(const ParticleState& s, ParticleState& dsdt)>;

class Integrator {
 public:
  Integrator(IntegratorKind kind, const ParticleState& like);

  IntegratorKind kind() const { return kind_; }

  // Advances s by dt, given k1 = v(s) (the run loop evaluates it first, for its diagnostics).
  void finish_step(ParticleState& s, const ParticleState& k1, real dt, const VelocityField& v);

 private:
  IntegratorKind kind_;
  ParticleState stage_, k2_, k3_, k4_;
};

}  // namespace mfsim

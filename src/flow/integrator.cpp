#include "mfsim/flow/integrator.hpp"

#include "mfsim/core/error.hpp"

namespace mfsim {

IntegratorKind parse_integrator(const std::string& name) {
  if (name == "euler") return IntegratorKind::euler;
  if (name == "heun") return IntegratorKind::heun;
  if (name == "rk4") return IntegratorKind::rk4;
  throw InputError("unknown integrator \"" + name + "\" (expected euler, heun or rk4)");
}

std::string integrator_name(IntegratorKind kind) {
  switch (kind) {
    case IntegratorKind::euler:
      return "euler";
    case IntegratorKind::heun:
      return "heun";
    case IntegratorKind::rk4:
      break;
  }
  return "rk4";
}

Integrator::Integrator(IntegratorKind kind, const ParticleState& like) : kind_(kind) {
  if (kind == IntegratorKind::euler) return;
  stage_ = allocate_like(like, "Integrator::stage");
  k2_ = allocate_like(like, "Integrator::k2");
  if (kind == IntegratorKind::rk4) {
    k3_ = allocate_like(like, "Integrator::k3");
    k4_ = allocate_like(like, "Integrator::k4");
  }
}

void Integrator::finish_step(ParticleState& s, const ParticleState& k1, real dt,
                             const VelocityField& v) {
  switch (kind_) {
    case IntegratorKind::euler:
      axpy(s, s, dt, k1);
      return;
    case IntegratorKind::heun:
      axpy(stage_, s, dt, k1);
      v(stage_, k2_);
      axpy(s, s, dt / 2, k1);
      axpy(s, s, dt / 2, k2_);
      return;
    case IntegratorKind::rk4:
      axpy(stage_, s, dt / 2, k1);
      v(stage_, k2_);
      axpy(stage_, s, dt / 2, k2_);
      v(stage_, k3_);
      axpy(stage_, s, dt, k3_);
      v(stage_, k4_);
      axpy(s, s, dt / 6, k1);
      axpy(s, s, dt / 3, k2_);
      axpy(s, s, dt / 3, k3_);
      axpy(s, s, dt / 6, k4_);
      return;
  }
}

}  // namespace mfsim

#include "mfsim/flow/integrator.hpp"

#include "mfsim/core/enum_names.hpp"

namespace mfsim {

namespace {
const EnumNames<IntegratorKind>& table() {
  static const EnumNames<IntegratorKind> names("integrator", {{IntegratorKind::euler, "euler"},
                                                              {IntegratorKind::heun, "heun"},
                                                              {IntegratorKind::rk4, "rk4"}});
  return names;
}
}  // namespace

IntegratorKind parse_integrator(const std::string& name) {
  return table().parse(name);
}

std::string integrator_name(IntegratorKind kind) {
  return table().name(kind);
}

const std::vector<std::string>& integrator_names() {
  return table().names();
}

Integrator::Integrator(const ExecSpace& space, IntegratorKind kind, const ParticleState& like)
    : kind_(kind) {
  if (kind == IntegratorKind::euler) return;
  stage_ = allocate_like(space, like, "Integrator::stage");
  k2_ = allocate_like(space, like, "Integrator::k2");
  if (kind == IntegratorKind::rk4) {
    k3_ = allocate_like(space, like, "Integrator::k3");
    k4_ = allocate_like(space, like, "Integrator::k4");
  }
}

void Integrator::finish_step(const ExecSpace& space, ParticleState& s, const ParticleState& k1,
                             real dt, const VelocityField& v) {
  switch (kind_) {
    case IntegratorKind::euler:
      axpy(space, s, s, dt, k1);
      return;
    case IntegratorKind::heun:
      axpy(space, stage_, s, dt, k1);
      v(space, stage_, k2_);
      axpy(space, s, s, dt / 2, k1);
      axpy(space, s, s, dt / 2, k2_);
      return;
    case IntegratorKind::rk4:
      axpy(space, stage_, s, dt / 2, k1);
      v(space, stage_, k2_);
      axpy(space, stage_, s, dt / 2, k2_);
      v(space, stage_, k3_);
      axpy(space, stage_, s, dt, k3_);
      v(space, stage_, k4_);
      axpy(space, s, s, dt / 6, k1);
      axpy(space, s, s, dt / 3, k2_);
      axpy(space, s, s, dt / 3, k3_);
      axpy(space, s, s, dt / 6, k4_);
      return;
  }
}

}  // namespace mfsim

#pragma once
// The mean squared particle speed: Σ_groups (1/N_g) Σ_k |v_k|², summed over every rank. Under
// the flow it is the dissipation rate −dL/dt = (1/n²) rᵀGr (A11); for the ResNet it is
// (1/LM)Σ|V_{l,m}|² + (1/K)Σ|V_k|², the discrete ∫∫|V^R|² dρ ds + ∫|V^H|² dτ.
#include <vector>

#include "mfsim/core/communicator.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

// Reduced on the execution-space instance `space` (without it, the default instance).
double mean_square_speed(const ExecSpace& space, const ParticleState& velocity,
                         const std::vector<GroupSpec>& groups, const Communicator& comm);
inline double mean_square_speed(const ParticleState& velocity, const std::vector<GroupSpec>& groups,
                                const Communicator& comm) {
  return mean_square_speed(ExecSpace(), velocity, groups, comm);
}

}  // namespace mfsim

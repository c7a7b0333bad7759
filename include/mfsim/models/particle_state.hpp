#pragma once
// The state the flow advances: one or more groups of particles, each an [N][D] matrix, and for
// each group optionally the log-density of the particle law at every particle (transport KL,
// MATH.md §5.1), which is integrated along the characteristics with the same scheme as θ.
#include <string>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

// What a model says about one of its particle groups.
struct GroupSpec {
  std::string name;                  // H5MD particle group: "two_layer", "resnet_blocks", ...
  std::vector<std::string> columns;  // one name per coordinate
  index_t global_count = 0;          // particles in the whole group, over every rank
  index_t offset = 0;                // global id of this rank's first particle
  index_t local_count = 0;           // particles held by this rank
  int slices = 1;                    // independent laws in the group (ResNet layers)
  std::vector<double> init_std;      // std of the Gaussian initial law, per column
  // Names the group's observables: "" gives kl_transport, path_norm_l1, ...; "head" gives
  // kl_head_transport, path_norm_head_l1, ... Groups of one model need distinct labels.
  std::string label;
  // β when the group's particles are two-layer units θ = (a, w) (output weight first, then the
  // input weights including a bias) contributing β·mean_k a_k σ(w_k·x̃): enables the path norms
  // (MATH.md §2.7). 0 for any other group.
  double path_norm_scale = 0;

  int dim() const { return int(columns.size()); }
};

struct ParticleState {
  std::vector<Matrix> theta;        // per group: [local_count][dim]
  std::vector<Vector> log_density;  // per group: [local_count], or empty views when not tracked

  std::size_t groups() const { return theta.size(); }
  bool tracks_log_density() const { return !log_density.empty() && log_density[0].extent(0) > 0; }
};

// A zero-initialised state shaped like the specs (log-density vectors only if `log_density`).
ParticleState allocate_state(const std::vector<GroupSpec>& specs, bool log_density,
                             const std::string& label);
ParticleState allocate_like(const ParticleState& like, const std::string& label);
void deep_copy(ParticleState& dst, const ParticleState& src);
// out = base + c * k, group by group (out may alias base).
void axpy(ParticleState& out, const ParticleState& base, real c, const ParticleState& k);
// True if every coordinate (and log-density) is finite; local to this rank.
bool all_finite(const ParticleState& s);
// Sets log_density to log ρ0(θ) for the product Gaussian N(0, diag(init_std²)) of each group.
void set_initial_log_density(ParticleState& s, const std::vector<GroupSpec>& specs);

}  // namespace mfsim

#pragma once
// The state the flow advances: one or more groups of particles, each an [N][D] matrix, and for
// each group optionally the log-density of the particle law at every particle (transport KL,
// MATH.md §5.1), which is integrated along the characteristics with the same scheme as θ.
#include <string>
#include <vector>

#include "mfsim/core/shard.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

// Where a rank's rows of a group sit among the global ids: the group is `slices` blocks of
// `per_slice` rows (ResNet layers), and the rank holds, in every slice s, the rows
// s·per_slice + [slice_offset, slice_offset + local_per_slice), stored slice-major (local row
// s·local_per_slice + j). With one slice this is a contiguous shard. Plain data, usable in kernels.
struct RowMap {
  index_t per_slice = 0, slice_offset = 0, local_per_slice = 0;
  KOKKOS_INLINE_FUNCTION index_t global_row(index_t local) const {
    const index_t s = local / local_per_slice;
    return s * per_slice + slice_offset + (local - s * local_per_slice);
  }
};

// What a model says about one of its particle groups.
struct GroupSpec {
  std::string name;                  // H5MD particle group: "two_layer", "resnet_blocks", ...
  std::vector<std::string> columns;  // one name per coordinate
  index_t global_count = 0;          // particles in the whole group, over every rank
  int slices = 1;                    // independent laws in the group (ResNet layers), equal sizes
  // This rank's shard of every slice (RowMap): rows slice·per_slice() + [slice_offset,
  // slice_offset + local_per_slice), local_count = slices · local_per_slice of them in all.
  index_t slice_offset = 0;
  index_t local_per_slice = 0;
  index_t local_count = 0;
  std::vector<double> init_std;  // std of the Gaussian initial law, per column
  // Names the group's observables: "" gives kl_transport, path_norm_l1, ...; "head" gives
  // kl_head_transport, path_norm_head_l1, ... Groups of one model need distinct labels.
  std::string label;
  // β when the group's particles are two-layer units θ = (a, w) (output weight first, then the
  // input weights including a bias) contributing β·mean_k a_k σ(w_k·x̃): enables the path norms
  // (MATH.md §2.7). 0 for any other group.
  double path_norm_scale = 0;
  // Output-weight columns leading a unit's row: c for units a ∈ R^c (path norms with |a|₂).
  int outputs = 1;

  int dim() const { return int(columns.size()); }
  index_t per_slice() const { return global_count / slices; }
  RowMap rows() const { return {per_slice(), slice_offset, local_per_slice}; }
};

// Gives `g` (global_count and slices set) the shard of `rank` of `size`: in every slice the
// contiguous shard_of(per_slice, rank, size, 2), so antithetic pairs stay on one rank and every
// rank holds part of every slice (each per-slice pass is split over all ranks).
void shard_group(GroupSpec& g, int rank, int size);

struct ParticleState {
  std::vector<Matrix> theta;        // per group: [local_count][dim]
  std::vector<Vector> log_density;  // per group: [local_count]; no views when not tracked

  std::size_t groups() const { return theta.size(); }
  // Not from the views' sizes: a rank may hold no particle of a group (M < 2P per layer).
  bool tracks_log_density() const { return !log_density.empty(); }
};

// A zero-initialised state shaped like the specs (log-density vectors only if `log_density`).
ParticleState allocate_state(const std::vector<GroupSpec>& specs, bool log_density,
                             const std::string& label);
// The operations of a step take the execution-space instance their kernels and copies run on
// first; the overloads without one use the default instance.
//
// A zero-initialised state shaped like `like` (zero-filled on `space`).
ParticleState allocate_like(const ExecSpace& space, const ParticleState& like,
                            const std::string& label);
ParticleState allocate_like(const ParticleState& like, const std::string& label);
void deep_copy(const ExecSpace& space, ParticleState& dst, const ParticleState& src);
void deep_copy(ParticleState& dst, const ParticleState& src);
// out = base + c * k, group by group (out may alias base).
void axpy(const ExecSpace& space, ParticleState& out, const ParticleState& base, real c,
          const ParticleState& k);
void axpy(ParticleState& out, const ParticleState& base, real c, const ParticleState& k);
// True if every coordinate (and log-density) is finite; local to this rank. Waits for `space`
// (the reductions' result is read on the host).
bool all_finite(const ExecSpace& space, const ParticleState& s);
bool all_finite(const ParticleState& s);
// Sets log_density to log ρ0(θ) for the product Gaussian N(0, diag(init_std²)) of each group.
void set_initial_log_density(ParticleState& s, const std::vector<GroupSpec>& specs);

}  // namespace mfsim

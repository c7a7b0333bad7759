#pragma once
// The optional capability of a model to define path norms beyond those of its groups of two-layer
// units (GroupSpec::path_norm_scale), read by PathNormObserver: the ResNet's weighted path norm
// (MATH.md §3.8).
#include <map>
#include <string>
#include <vector>

#include "mfsim/core/workspace.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {

class PathNormModel {
 public:
  virtual ~PathNormModel() = default;
  // By observable name, summed over every rank; intermediate sums in `scratch`, computed on the
  // execution-space instance `space` (without it, the default instance).
  virtual std::map<std::string, double> path_norms(const ExecSpace& space, const ParticleState& s,
                                                   Workspace& scratch) const = 0;
  std::map<std::string, double> path_norms(const ParticleState& s, Workspace& scratch) const {
    return path_norms(ExecSpace(), s, scratch);
  }
  // Norms with one value per layer (observable name → values), summed over every rank; none by
  // default.
  virtual std::map<std::string, std::vector<double>> layer_path_norms(
      const ExecSpace& /*space*/, const ParticleState& /*s*/) const {
    return {};
  }
};

}  // namespace mfsim

#pragma once
// Kokkos Tools regions, so that a profile (kp_space_time_stack, kp_nvtx_connector under Nsight
// Systems) reads as the architecture: the phases of a step and each observer by name.
#include <string>

#include <Kokkos_Core.hpp>

namespace mfsim {

// Pushes the region `name` for the lifetime of the scope. Costs one call into an empty function
// table when no tool is loaded.
class ProfilingRegion {
 public:
  explicit ProfilingRegion(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
  ~ProfilingRegion() { Kokkos::Profiling::popRegion(); }
  ProfilingRegion(const ProfilingRegion&) = delete;
  ProfilingRegion& operator=(const ProfilingRegion&) = delete;
};

}  // namespace mfsim

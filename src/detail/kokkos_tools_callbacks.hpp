#pragma once
// Kokkos Tools callbacks installed for a scope, and how to read a fence's callback: what the tests
// of a step's launches and instances and the step benchmarks record with. Not used by the library
// itself; it lives here because mfsim::internal hands src/ to both the tests and the benchmarks.
#include <Kokkos_Core.hpp>
#include <cstdint>
#include <string>

namespace mfsim {

// The callbacks to install; the null ones stay uninstalled.
struct ToolsCallbacks {
  // parallel_for, parallel_scan, and parallel_reduce unless begin_reduce is given.
  Kokkos::Tools::beginFunction begin_kernel = nullptr;
  Kokkos::Tools::beginFunction begin_reduce = nullptr;
  Kokkos::Tools::endFunction end_kernel = nullptr;  // all three kinds
  Kokkos::Tools::beginDeepCopyFunction begin_deep_copy = nullptr;
  Kokkos::Tools::beginFenceFunction begin_fence = nullptr;
};

// Installs the callbacks from construction to destruction, which removes them all.
class InstalledToolsCallbacks {
 public:
  explicit InstalledToolsCallbacks(const ToolsCallbacks& c) { set(c); }
  ~InstalledToolsCallbacks() { set(ToolsCallbacks()); }
  InstalledToolsCallbacks(const InstalledToolsCallbacks&) = delete;
  InstalledToolsCallbacks& operator=(const InstalledToolsCallbacks&) = delete;

 private:
  static void set(const ToolsCallbacks& c) {
    namespace tools = Kokkos::Tools::Experimental;
    tools::set_begin_parallel_for_callback(c.begin_kernel);
    tools::set_begin_parallel_reduce_callback(c.begin_reduce ? c.begin_reduce : c.begin_kernel);
    tools::set_begin_parallel_scan_callback(c.begin_kernel);
    tools::set_end_parallel_for_callback(c.end_kernel);
    tools::set_end_parallel_reduce_callback(c.end_kernel);
    tools::set_end_parallel_scan_callback(c.end_kernel);
    tools::set_begin_deep_copy_callback(c.begin_deep_copy);
    tools::set_begin_fence_callback(c.begin_fence);
  }
};

// Whether a fence's `device` is the whole device's (Kokkos::fence(), or a deep_copy without an
// instance): Kokkos Tools give it device and instance number 0. Kokkos 3.x reports no fence to
// the tools: false there.
inline bool is_global_fence(std::uint32_t device) {
#if KOKKOS_VERSION >= 40000
  const auto id = Kokkos::Tools::Experimental::identifier_from_devid(device);
  return id.device_id == 0 && id.instance_id == 0;
#else
  (void)device;
  return false;
#endif
}

// Whether a fence is the one Kokkos makes around every callback of a tool that does not say it
// needs none (callbacks installed at run time never can): Kokkos' own, not the code's.
inline bool is_tool_fence(const std::string& name) {
  return name.find("Kokkos Profile Tool Fence") != std::string::npos;
}

}  // namespace mfsim

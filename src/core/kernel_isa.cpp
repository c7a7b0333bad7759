#include "mfsim/core/kernel_isa.hpp"

#include "mfsim/core/types.hpp"

namespace mfsim {

// Compiled with the kernels' flags (MFSIM_ENABLE_ISA_CLONES, -march=native), so that the macros
// below describe the kernels. With clones, the tests mirror GCC's resolver for
// target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"): the highest level the CPU supports.
const char* kernel_instruction_set() {
#if defined(KOKKOS_ENABLE_CUDA) || defined(KOKKOS_ENABLE_HIP) || defined(KOKKOS_ENABLE_SYCL)
  if (!Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) return "GPU device";
#endif
#if defined(MFSIM_ENABLE_ISA_CLONES) && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512), chosen at load time";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2, FMA), chosen at load time";
  return "x86-64 baseline (SSE2), chosen at load time";
#elif defined(__AVX512F__)
  return "compiled for this CPU (AVX-512)";
#elif defined(__AVX2__)
  return "compiled for this CPU (AVX2)";
#elif defined(__x86_64__)
  return "x86-64 baseline (SSE2)";
#else
  return "the compiler's default for this CPU";
#endif
}

}  // namespace mfsim

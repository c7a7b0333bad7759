#pragma once
// MFSIM_ISA_CLONES: function multi-versioning of the hot pair kernels for builds that do not know
// their CPU (the `portable` preset: packages, clusters with mixed nodes). On x86-64 such a build
// targets the baseline instruction set, SSE2 without FMA: 2 doubles per instruction and separate
// multiplies and adds, about 4× slower than AVX-512 with FMA on the same core
// (docs/performance.md). A function marked MFSIM_ISA_CLONES is compiled three times — for x86-64-v4
// (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline — and the loader picks the widest one the CPU
// runs (GCC's target_clones, an ifunc resolved once at load time). Only the functions that hold a
// register block's whole inner loop are marked: the helpers they call (accumulate_outer,
// simd_math::tanh) are inlined into each clone, and a call into a clone is amortised over a whole
// block of pairs.
//
// Which clone runs may change the last bits of a result (FMA contraction), never the algorithm or
// its summation order (the tile sizes are compile-time constants of the build, not of the clone):
// on one machine a build stays bitwise reproducible. Empty when the build already targets its
// CPU (-march=native), for device passes and for compilers without x86-64-v* clones (CMake sets
// MFSIM_ENABLE_ISA_CLONES only for GCC >= 11 on x86-64 host backends).
#if defined(MFSIM_ENABLE_ISA_CLONES) && defined(__x86_64__) && !defined(__CUDACC__) && \
    !defined(__HIPCC__) && !defined(__SYCL_DEVICE_ONLY__)
#define MFSIM_ISA_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MFSIM_ISA_CLONES
#endif

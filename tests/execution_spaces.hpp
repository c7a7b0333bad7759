#pragma once
// One test source, every backend: the execution spaces this Kokkos enables that can run mfsim's
// kernels on its views (MemSpace accessible from them), as a gtest type list. A typed test over
// ExecutionSpaces (TYPED_TEST_SUITE(Suite, ExecutionSpaces), TypeParam the space) runs once per
// space: gtest names them "<Suite>/0.<Test>", "<Suite>/1.<Test>", ... and ctest
// "<Suite>.<Test><Kokkos::Serial>", ..., labelled with the backend they run on (serial, openmp,
// threads, cuda: tests/backend_labels.cmake). A build on OpenMP with Serial enabled runs such a
// test on both; a CUDA build on Cuda only (the host spaces cannot read CudaSpace). The pattern of
// Cabana's TestSERIAL_Category.hpp and ArborX's ArborX_EnableDeviceTypes.hpp, with one binary.
//
// Per backend are the tests that call a kernel templated on its execution space directly
// (GramKernel, BlockGramKernel, TwoLayerKernels, TwoLayerVectorKernels, ResNetKernels,
// PopulationKernel, KnnKernel: src/detail/gram_kernel.hpp, two_layer_kernels.hpp,
// two_layer_vector_kernels.hpp, resnet_kernels.hpp, pair_tiles.hpp, population_kernel.hpp,
// knn_tiling.hpp). The rest go through the library (the models, the kNN estimators, the observers,
// the run loop), which is compiled for ExecSpace alone, and run there once, with the build's label
// (docs/testing.md).
#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <type_traits>

#include "mfsim/core/types.hpp"

namespace mfsim::test {
namespace detail {

// Each candidate backend, or void where this Kokkos does not enable it.
#if defined(KOKKOS_ENABLE_SERIAL)
using SerialCandidate = Kokkos::Serial;
#else
using SerialCandidate = void;
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
using OpenMPCandidate = Kokkos::OpenMP;
#else
using OpenMPCandidate = void;
#endif
#if defined(KOKKOS_ENABLE_THREADS)
using ThreadsCandidate = Kokkos::Threads;
#else
using ThreadsCandidate = void;
#endif
#if defined(KOKKOS_ENABLE_CUDA)
using CudaCandidate = Kokkos::Cuda;
#else
using CudaCandidate = void;
#endif
#if defined(KOKKOS_ENABLE_HIP)
using HipCandidate = Kokkos::HIP;
#else
using HipCandidate = void;
#endif
#if defined(KOKKOS_ENABLE_SYCL) && KOKKOS_VERSION >= 40300
using SyclCandidate = Kokkos::SYCL;
#elif defined(KOKKOS_ENABLE_SYCL)
using SyclCandidate = Kokkos::Experimental::SYCL;
#else
using SyclCandidate = void;
#endif

template <class Space>
constexpr bool runs_mfsim_kernels() {
  if constexpr (std::is_void_v<Space>) {
    return false;
  } else {
    return Kokkos::SpaceAccessibility<Space, MemSpace>::accessible;
  }
}

// Types<Kept...> followed by the candidates that run mfsim's kernels.
template <class Kept, class... Candidates>
struct Enabled {
  using type = Kept;
};
template <class... Kept, class Space, class... Rest>
struct Enabled<::testing::Types<Kept...>, Space, Rest...> {
  using type = typename Enabled<
      std::conditional_t<runs_mfsim_kernels<Space>(), ::testing::Types<Kept..., Space>,
                         ::testing::Types<Kept...>>,
      Rest...>::type;
};

}  // namespace detail

using ExecutionSpaces =
    typename detail::Enabled<::testing::Types<>, detail::SerialCandidate, detail::OpenMPCandidate,
                             detail::ThreadsCandidate, detail::CudaCandidate, detail::HipCandidate,
                             detail::SyclCandidate>::type;

}  // namespace mfsim::test

#pragma once
// The real type, the execution/memory spaces and the view aliases every part of mfsim uses.
#include <Kokkos_Core.hpp>
#include <cstdint>

namespace mfsim {

#if defined(MFSIM_REAL_FLOAT)
using real = float;
inline constexpr const char* precision_name = "float";
#else
using real = double;
inline constexpr const char* precision_name = "double";
#endif

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;

// Row-major so that a particle's (or a sample's) coordinates are contiguous, as in the H5MD file.
using Matrix = Kokkos::View<real**, Kokkos::LayoutRight, MemSpace>;
using ConstMatrix = Kokkos::View<const real**, Kokkos::LayoutRight, MemSpace>;
using Vector = Kokkos::View<real*, MemSpace>;
using ConstVector = Kokkos::View<const real*, MemSpace>;
using HostMatrix = Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace>;
using HostVector = Kokkos::View<double*, Kokkos::HostSpace>;

using index_t = std::int64_t;

// Allocates without zero-filling: for views whose every entry is written next.
template <class ViewType, class... Extents>
ViewType uninitialized(const std::string& label, Extents... extents) {
  return ViewType(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), extents...);
}

}  // namespace mfsim

#include "mfsim/core/host_copy.hpp"

namespace mfsim {
namespace {

constexpr bool host_accessible =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;

// In the device views' layouts (a Vector is LayoutLeft on CUDA), which deep_copy and the
// layout-taking constructor below need.
using HostRealMatrix = Kokkos::View<real**, Matrix::array_layout, Kokkos::HostSpace>;
using HostRealVector = Kokkos::View<real*, Vector::array_layout, Kokkos::HostSpace>;

// `view` readable on the host once `space` has finished with it: the view itself where the host
// can read device memory, else its copy into `staging` (allocated by the caller: a host view of
// the same extents), made on `space`.
template <class DeviceView, class HostView>
typename HostView::const_type readable_on_host(const ExecSpace& space, const DeviceView& view,
                                               const HostView& staging) {
  if constexpr (host_accessible) {
    space.fence();  // the host reads what the instance wrote
    return view;
  } else {
    Kokkos::deep_copy(space, staging, view);
    space.fence();
    return staging;
  }
}

// A host buffer for the copy of `v` where the host cannot read device memory; empty elsewhere.
template <class HostView, class DeviceView>
HostView staging(const DeviceView& v) {
  if (host_accessible) return {};
  HostView out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::host_staging"), v.layout());
  return out;
}

}  // namespace

std::vector<double> to_host_doubles(const ExecSpace& space, ConstMatrix m) {
  const auto host = readable_on_host(space, m, staging<HostRealMatrix>(m));
  std::vector<double> out(host.extent(0) * host.extent(1));
  for (std::size_t i = 0; i < host.extent(0); ++i)
    for (std::size_t j = 0; j < host.extent(1); ++j) out[i * host.extent(1) + j] = host(i, j);
  return out;
}

std::vector<double> to_host_doubles(const ExecSpace& space, ConstVector v) {
  const auto host = readable_on_host(space, v, staging<HostRealVector>(v));
  return std::vector<double>(host.data(), host.data() + host.extent(0));
}

HostMatrix to_host(const ExecSpace& space, ConstMatrix m) {
  HostMatrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::host_matrix"), m.extent(0),
                 m.extent(1));
  copy_to_host(space, m, out);
  return out;
}

void copy_to_host(const ExecSpace& space, ConstMatrix m, HostMatrix out) {
  // A loop on the host converts real → double (deep_copy converts only within one memory space,
  // and would take a kernel of the default host instance to do it).
  const auto host = readable_on_host(space, m, staging<HostRealMatrix>(m));
  for (std::size_t i = 0; i < host.extent(0); ++i)
    for (std::size_t j = 0; j < host.extent(1); ++j) out(i, j) = host(i, j);
}

}  // namespace mfsim

#include "mfsim/core/host_copy.hpp"

namespace mfsim {

std::vector<double> to_host_doubles(ConstMatrix m) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m);
  std::vector<double> out(host.extent(0) * host.extent(1));
  for (std::size_t i = 0; i < host.extent(0); ++i)
    for (std::size_t j = 0; j < host.extent(1); ++j) out[i * host.extent(1) + j] = host(i, j);
  return out;
}

std::vector<double> to_host_doubles(ConstVector v) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(host.data(), host.data() + host.extent(0));
}

HostMatrix to_host(ConstMatrix m) {
  HostMatrix out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "mfsim::host_matrix"), m.extent(0),
                 m.extent(1));
  copy_to_host(m, out);
  return out;
}

void copy_to_host(ConstMatrix m, HostMatrix out) {
  // deep_copy converts real → double only within one memory space: mirror first (a no-op view
  // where m is already on the host).
  const auto mirror = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m);
  Kokkos::deep_copy(out, mirror);
}

}  // namespace mfsim

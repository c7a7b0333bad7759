#pragma once
// Host copies of device views, in double precision whatever `real` is: for files, eigensolvers
// and reductions on the host. Each copy waits for the execution-space instance it is given (the
// one whose kernels wrote the view; without one, the default instance), not for the whole device.
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

// A host copy in double, row-major, of a device view: what gather_slices and the H5MD files take.
std::vector<double> to_host_doubles(const ExecSpace& space, ConstMatrix m);
std::vector<double> to_host_doubles(const ExecSpace& space, ConstVector v);
inline std::vector<double> to_host_doubles(ConstMatrix m) {
  return to_host_doubles(ExecSpace(), m);
}
inline std::vector<double> to_host_doubles(ConstVector v) {
  return to_host_doubles(ExecSpace(), v);
}
// A host copy in double precision of a device matrix.
HostMatrix to_host(const ExecSpace& space, ConstMatrix m);
inline HostMatrix to_host(ConstMatrix m) {
  return to_host(ExecSpace(), m);
}
// The same into `out` (of m's extents), allocating nothing where m is host-accessible.
void copy_to_host(const ExecSpace& space, ConstMatrix m, HostMatrix out);
inline void copy_to_host(ConstMatrix m, HostMatrix out) {
  copy_to_host(ExecSpace(), m, out);
}

}  // namespace mfsim

#pragma once
// Host copies of device views, in double precision whatever `real` is: for files, eigensolvers
// and reductions on the host.
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

// A host copy in double, row-major, of a device view: what gather_slices and the H5MD files take.
std::vector<double> to_host_doubles(ConstMatrix m);
std::vector<double> to_host_doubles(ConstVector v);
// A host copy in double precision of a device matrix.
HostMatrix to_host(ConstMatrix m);
// The same into `out` (of m's extents), allocating nothing where m is host-accessible.
void copy_to_host(ConstMatrix m, HostMatrix out);

}  // namespace mfsim

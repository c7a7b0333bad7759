#pragma once
// Sizes checked up front: a width or a sample count whose arrays could never be allocated is
// refused before anything is allocated (a View of 2^63 rows would hang or overflow), with one
// line naming the key and the memory the run would need.
#include "mfsim/io/config.hpp"

namespace mfsim {

// Throws InputError when a lower bound of the memory the run needs (its particles three times:
// state, velocity and the previous step; its data) exceeds this machine's physical memory.
void check_memory(const Config& config);

}  // namespace mfsim

#pragma once
// `mfsim info FILE.h5`: what a run file holds (model, sizes, frames, last observables).
#include <string>

#include "mfsim/core/console.hpp"

namespace mfsim {

// The description, line by line, among the console's results.
void print_info(const std::string& path, const Console& console);

}  // namespace mfsim

#pragma once
// `mfsim info FILE.h5`: what a run file holds (model, sizes, frames, last observables).
#include <iosfwd>
#include <string>

namespace mfsim {

void print_info(const std::string& path, std::ostream& out);

}  // namespace mfsim

#include "mfsim/flow/observer.hpp"

namespace mfsim {

std::string observable_name(const std::string& family, const std::string& label,
                            const std::string& quantity) {
  return family + "_" + (label.empty() ? "" : label + "_") + quantity;
}

}  // namespace mfsim

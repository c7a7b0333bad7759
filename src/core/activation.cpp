#include "mfsim/core/activation.hpp"

#include "mfsim/core/error.hpp"

namespace mfsim {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {"relu",     "tanh", "sigmoid",
                                                 "softplus", "erf",  "gelu"};
  return names;
}

ActivationKind parse_activation(const std::string& name) {
  const auto& names = activation_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return ActivationKind(i);
  throw InputError("unknown activation \"" + name +
                   "\" (expected relu, tanh, sigmoid, softplus, erf or gelu)");
}

std::string activation_name(ActivationKind kind) {
  return activation_names().at(int(kind));
}

bool is_twice_differentiable(ActivationKind kind) {
  return kind != ActivationKind::relu;
}

}  // namespace mfsim

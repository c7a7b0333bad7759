#include "mfsim/core/activation.hpp"

#include "mfsim/core/enum_names.hpp"

namespace mfsim {

namespace {
const EnumNames<ActivationKind>& table() {
  static const EnumNames<ActivationKind> names("activation",
                                               {{ActivationKind::relu, "relu"},
                                                {ActivationKind::tanh, "tanh"},
                                                {ActivationKind::sigmoid, "sigmoid"},
                                                {ActivationKind::softplus, "softplus"},
                                                {ActivationKind::erf, "erf"},
                                                {ActivationKind::gelu, "gelu"}});
  return names;
}
}  // namespace

const std::vector<std::string>& activation_names() {
  return table().names();
}

ActivationKind parse_activation(const std::string& name) {
  return table().parse(name);
}

std::string activation_name(ActivationKind kind) {
  return table().name(kind);
}

bool is_twice_differentiable(ActivationKind kind) {
  return kind != ActivationKind::relu;
}

}  // namespace mfsim

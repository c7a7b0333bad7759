#include "mfsim/core/activation.hpp"

#include <stdexcept>

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
                                                {ActivationKind::gelu, "gelu"},
                                                {ActivationKind::linear, "linear"},
                                                {ActivationKind::quadratic, "quadratic"},
                                                {ActivationKind::hermite, "hermite"}});
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

bool is_polynomial(ActivationKind kind) {
  return kind == ActivationKind::linear || kind == ActivationKind::quadratic ||
         kind == ActivationKind::hermite;
}

std::vector<double> hermite_coefficients(const Activation& a) {
  switch (a.kind) {
    case ActivationKind::linear:
      return {0, 1};
    case ActivationKind::quadratic:
      return {1, 0, 1};
    case ActivationKind::hermite:
      if (a.hermite.empty() || a.hermite.size() > std::size_t(max_hermite_degree + 1))
        throw std::logic_error("hermite activation: 1 to 9 coefficients");
      return a.hermite;
    default:
      throw std::logic_error("hermite_coefficients: " + activation_name(a.kind) +
                             " is not a polynomial");
  }
}

activations::Polynomial polynomial_activation(const Activation& a) {
  const std::vector<double> c = hermite_coefficients(a);
  // he[i] = the monomial coefficients of He_i, by He_{i+1} = u He_i − i He_{i−1} (integers).
  double he[max_hermite_degree + 1][max_hermite_degree + 1] = {};
  he[0][0] = 1;
  he[1][1] = 1;
  for (int i = 1; i < max_hermite_degree; ++i)
    for (int j = 0; j <= i + 1; ++j) he[i + 1][j] = (j > 0 ? he[i][j - 1] : 0) - i * he[i - 1][j];
  activations::Polynomial p;
  double monomial[max_hermite_degree + 1] = {};
  for (std::size_t i = 0; i < c.size(); ++i)
    for (std::size_t j = 0; j <= i; ++j) monomial[j] += c[i] * he[i][j];
  for (int j = 0; j <= max_hermite_degree; ++j) {
    p.p[j] = real(monomial[j]);
    if (monomial[j] != 0) p.degree = j;
  }
  return p;
}

}  // namespace mfsim

#include "mfsim/models/loss.hpp"

#include "mfsim/core/enum_names.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim {

namespace {
const EnumNames<LossKind>& table() {
  static const EnumNames<LossKind> names(
      "loss", {{LossKind::square, "square"}, {LossKind::logistic, "logistic"}});
  return names;
}
}  // namespace

LossKind parse_loss(const std::string& name) {
  return table().parse(name);
}

const std::string& loss_name(LossKind kind) {
  return table().name(kind);
}

const std::vector<std::string>& loss_names() {
  return table().names();
}

double loss_and_derivative(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                           Vector dl) {
  const index_t n = index_t(f.extent(0));
  if (kind == LossKind::square) {
    Kokkos::parallel_for(
        "mfsim::Loss::square_derivative", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
        KOKKOS_LAMBDA(index_t i) { dl(i) = f(i) - y(i); });
    return half_mean_square(space, dl);
  }
  if (n == 0) return 0;
  double sum = 0;
  Kokkos::parallel_reduce(
      "mfsim::Loss::logistic", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, double& acc) {
        const double fi = f(i), yi = y(i);
        acc += logistic_loss(fi, yi);
        dl(i) = real(logistic_derivative(fi, yi));
      },
      sum);
  return sum / double(n);
}

double loss_and_derivative(LossKind kind, ConstVector f, ConstVector y, Vector dl) {
  return loss_and_derivative(ExecSpace(), kind, f, y, dl);
}

double mean_loss(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                 Vector scratch) {
  return loss_and_derivative(space, kind, f, y, scratch);
}

double mean_loss(LossKind kind, ConstVector f, ConstVector y, Vector scratch) {
  return mean_loss(ExecSpace(), kind, f, y, scratch);
}

}  // namespace mfsim

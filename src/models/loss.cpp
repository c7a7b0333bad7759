#include "mfsim/models/loss.hpp"

#include "mfsim/core/enum_names.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim {

namespace {

// The losses of c > 1 outputs: square on c targets a sample, cross-entropy on class labels.
double vector_loss_and_derivative(const ExecSpace& space, LossKind kind, ConstVector f,
                                  ConstVector y, Vector dl, int c) {
  const index_t n = index_t(f.extent(0)) / c;
  if (n == 0) return 0;
  double sum = 0;
  if (kind == LossKind::square) {
    Kokkos::parallel_reduce(
        "mfsim::Loss::vector_square", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
        KOKKOS_LAMBDA(index_t i, double& acc) {
          for (int j = 0; j < c; ++j) {
            const real r = f(i * c + j) - y(i * c + j);
            acc += double(r) * double(r);
            dl(i * c + j) = r;
          }
        },
        sum);
    return sum / (2.0 * double(n));
  }
  Kokkos::parallel_reduce(
      "mfsim::Loss::cross_entropy", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, double& acc) {
        acc += cross_entropy(&f(i * c), c, int(y(i)), &dl(i * c));
      },
      sum);
  return sum / double(n);
}

const EnumNames<LossKind>& table() {
  static const EnumNames<LossKind> names("loss", {{LossKind::square, "square"},
                                                  {LossKind::logistic, "logistic"},
                                                  {LossKind::cross_entropy, "cross_entropy"}});
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

std::string loss_formula(LossKind kind) {
  switch (kind) {
    case LossKind::logistic:
      return "L = (1/n) sum_i log(1 + exp(-y_i f(x_i)))";
    case LossKind::cross_entropy:
      return "L = (1/n) sum_i [log sum_j exp(f_j(x_i)) - f_{y_i}(x_i)]";
    case LossKind::square:
      break;
  }
  return "L = |f(x)-y|^2/(2n)";
}

double loss_and_derivative(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                           Vector dl, int outputs) {
  if (outputs > 1 || needs_class_labels(kind))
    return vector_loss_and_derivative(space, kind, f, y, dl, outputs);
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

double loss_and_derivative(LossKind kind, ConstVector f, ConstVector y, Vector dl, int outputs) {
  return loss_and_derivative(ExecSpace(), kind, f, y, dl, outputs);
}

double mean_loss(const ExecSpace& space, LossKind kind, ConstVector f, ConstVector y,
                 Vector scratch, int outputs) {
  return loss_and_derivative(space, kind, f, y, scratch, outputs);
}

double mean_loss(LossKind kind, ConstVector f, ConstVector y, Vector scratch, int outputs) {
  return mean_loss(ExecSpace(), kind, f, y, scratch, outputs);
}

}  // namespace mfsim

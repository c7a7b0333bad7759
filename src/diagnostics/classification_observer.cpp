#include "mfsim/diagnostics/classification_observer.hpp"

#include <cfloat>

#include "mfsim/core/math.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"

namespace mfsim {

double accuracy(const ExecSpace& space, ConstVector f, ConstVector y) {
  const index_t n = index_t(f.extent(0));
  if (n == 0) return 0;
  index_t right = 0;
  Kokkos::parallel_reduce(
      "mfsim::Classification::accuracy", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, index_t & acc) {
        if (double(y(i)) * double(f(i)) > 0) ++acc;
      },
      right);
  return double(right) / double(n);
}

double margin(const ExecSpace& space, ConstVector f, ConstVector y) {
  double smallest = DBL_MAX;
  Kokkos::parallel_reduce(
      "mfsim::Classification::margin",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(f.extent(0))),
      KOKKOS_LAMBDA(index_t i, double& acc) {
        const double m = double(y(i)) * double(f(i));
        if (m < acc) acc = m;
      },
      Kokkos::Min<double>(smallest));
  return smallest;
}

namespace {
// The class of sample i: its label, or the argmax of its one-hot row.
KOKKOS_INLINE_FUNCTION int class_of(const ConstVector& y, index_t i, int targets) {
  if (targets == 1) return int(y(i));
  int best = 0;
  for (int j = 1; j < targets; ++j)
    if (y(i * targets + j) > y(i * targets + best)) best = j;
  return best;
}
}  // namespace

double accuracy(const ExecSpace& space, ConstVector f, ConstVector y, int c, int targets) {
  const index_t n = index_t(f.extent(0)) / c;
  if (n == 0) return 0;
  index_t right = 0;
  Kokkos::parallel_reduce(
      "mfsim::Classification::vector_accuracy", Kokkos::RangePolicy<ExecSpace>(space, 0, n),
      KOKKOS_LAMBDA(index_t i, index_t & acc) {
        int best = 0;
        for (int j = 1; j < c; ++j)
          if (f(i * c + j) > f(i * c + best)) best = j;
        if (best == class_of(y, i, targets)) ++acc;
      },
      right);
  return double(right) / double(n);
}

double margin(const ExecSpace& space, ConstVector f, ConstVector y, int c, int targets) {
  double smallest = DBL_MAX;
  Kokkos::parallel_reduce(
      "mfsim::Classification::vector_margin",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(f.extent(0)) / c),
      KOKKOS_LAMBDA(index_t i, double& acc) {
        const int label = class_of(y, i, targets);
        double other = -DBL_MAX;
        for (int j = 0; j < c; ++j)
          if (j != label && double(f(i * c + j)) > other) other = double(f(i * c + j));
        const double m = double(f(i * c + label)) - other;
        if (m < acc) acc = m;
      },
      Kokkos::Min<double>(smallest));
  return smallest;
}

void ClassificationObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Dataset& d = p.model.data();
  const int c = p.model.outputs(), t = d.targets;
  const auto accuracy_of = [&](ConstVector f, ConstVector y) {
    return c == 1 ? accuracy(p.space, f, y) : accuracy(p.space, f, y, c, t);
  };
  sink.append_observable("train_accuracy", p.step, p.time,
                         {accuracy_of(p.evaluation.output, d.y_train)});
  if (d.n_test() > 0) {
    const Vector f = scratch_.view<Vector>("test_output", d.n_test() * c);
    p.model.predict(p.space, p.state, d.x_test, f, scratch_);
    sink.append_observable("test_accuracy", p.step, p.time, {accuracy_of(f, d.y_test)});
  }
  const double m = c == 1 ? margin(p.space, p.evaluation.output, d.y_train)
                          : margin(p.space, p.evaluation.output, d.y_train, c, t);
  sink.append_observable("margin", p.step, p.time, {m});
  const auto& groups = p.model.groups();
  if (groups.size() != 1 || !(groups[0].path_norm_scale > 0)) return;
  const double norm = path_norms(p.space, groups[0], p.state.theta[0], p.model.comm()).l2;
  sink.append_observable("normalised_margin", p.step, p.time, {norm > 0 ? m / norm : 0.0});
}

}  // namespace mfsim

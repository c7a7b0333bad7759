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

void ClassificationObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Dataset& d = p.model.data();
  sink.append_observable("train_accuracy", p.step, p.time,
                         {accuracy(p.space, p.evaluation.output, d.y_train)});
  if (d.n_test() > 0) {
    const Vector f = scratch_.view<Vector>("test_output", d.n_test());
    p.model.predict(p.space, p.state, d.x_test, f, scratch_);
    sink.append_observable("test_accuracy", p.step, p.time, {accuracy(p.space, f, d.y_test)});
  }
  const double m = margin(p.space, p.evaluation.output, d.y_train);
  sink.append_observable("margin", p.step, p.time, {m});
  const auto& groups = p.model.groups();
  if (groups.size() != 1 || !(groups[0].path_norm_scale > 0)) return;
  const double norm = path_norms(p.space, groups[0], p.state.theta[0], p.model.comm()).l2;
  sink.append_observable("normalised_margin", p.step, p.time, {norm > 0 ? m / norm : 0.0});
}

}  // namespace mfsim

#include "mfsim/diagnostics/path_norm_observer.hpp"

#include <cmath>

#include "mfsim/core/math.hpp"
#include "mfsim/models/path_norm_model.hpp"

namespace mfsim {

double path_norm_rademacher_bound(double radius, int input_dim, index_t samples) {
  // Massart's lemma over the 2d' vertices ±e_j of the unit ℓ1 ball: log(2d'), not log d'
  // (E, Ma & Wu 2019; docs/corrections.md).
  return 2 * radius * std::sqrt(2 * std::log(2.0 * double(input_dim)) / double(samples));
}

PathNorms path_norms(const ExecSpace& space, const GroupSpec& group, ConstMatrix theta,
                     const Communicator& comm) {
  const int dim = int(theta.extent(1)), outputs = group.outputs;
  double sums[2] = {0, 0};
  const auto policy = Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(theta.extent(0)));
  if (outputs == 1) {
    Kokkos::parallel_reduce(
        "mfsim::PathNorm::sums", policy,
        KOKKOS_LAMBDA(index_t k, double& l1, double& l2) {
          double n1 = 0, n2 = 0;
          for (int c = 1; c < dim; ++c) {
            const double w = theta(k, c);
            n1 += math::fabs(w);
            n2 += w * w;
          }
          const double a = math::fabs(double(theta(k, 0)));
          l1 += a * n1;
          l2 += a * math::sqrt(n2);
        },
        sums[0], sums[1]);
  } else {
    // |a|₂ of the output weights a ∈ R^c (MATH.md §1.5).
    Kokkos::parallel_reduce(
        "mfsim::PathNorm::vector_sums", policy,
        KOKKOS_LAMBDA(index_t k, double& l1, double& l2) {
          double n1 = 0, n2 = 0, a2 = 0;
          for (int c = outputs; c < dim; ++c) {
            const double w = theta(k, c);
            n1 += math::fabs(w);
            n2 += w * w;
          }
          for (int j = 0; j < outputs; ++j) a2 += double(theta(k, j)) * double(theta(k, j));
          const double a = math::sqrt(a2);
          l1 += a * n1;
          l2 += a * math::sqrt(n2);
        },
        sums[0], sums[1]);
  }
  comm.allreduce_sum(sums, 2);
  const double scale = group.path_norm_scale / double(group.global_count);
  return {scale * sums[0], scale * sums[1]};
}

void PathNormObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const auto& groups = p.model.groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (!(groups[g].path_norm_scale > 0)) continue;
    const int dim = groups[g].dim();
    const auto [p1, p2] = path_norms(p.space, groups[g], p.state.theta[g], p.model.comm());
    const std::string& label = groups[g].label;
    sink.append_observable(observable_name("path_norm", label, "l1"), p.step, p.time, {p1});
    sink.append_observable(observable_name("path_norm", label, "l2"), p.step, p.time, {p2});
    // A bound on n training samples: none for the population flow (n_train = 0).
    if (p.model.data().n_train() > 0)
      sink.append_observable(observable_name("rademacher", label, "bound"), p.step, p.time,
                             {path_norm_rademacher_bound(p1, dim - 1, p.model.data().n_train())});
  }
  if (const auto* extra = dynamic_cast<const PathNormModel*>(&p.model)) {
    for (const auto& [name, value] : extra->path_norms(p.space, p.state, scratch_))
      sink.append_observable(name, p.step, p.time, {value});
    for (const auto& [name, values] : extra->layer_path_norms(p.space, p.state))
      sink.append_observable(name, p.step, p.time, values, {values.size()});
  }
}

}  // namespace mfsim

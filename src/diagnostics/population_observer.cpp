#include "mfsim/diagnostics/population_observer.hpp"

#include "mfsim/core/math.hpp"
#include "mfsim/models/population.hpp"

namespace mfsim {

std::vector<double> teacher_max_cosines(const ExecSpace& space, ConstMatrix theta,
                                        ConstMatrix teacher, const Communicator& comm) {
  const int d = int(teacher.extent(1)) - 1;
  std::vector<double> out(teacher.extent(0));
  for (std::size_t j = 0; j < out.size(); ++j) {
    double best = -1;
    Kokkos::parallel_reduce(
        "mfsim::Population::teacher_cosine",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(theta.extent(0))),
        KOKKOS_LAMBDA(index_t k, double& m) {
          double dot = 0, ww = 0, ss = 0;
          for (int c = 0; c < d; ++c) {
            const double w = theta(k, 1 + c), s = teacher(j, c);
            dot += w * s;
            ww += w * w;
            ss += s * s;
          }
          const double cosine = ww > 0 && ss > 0 ? dot / math::sqrt(ww * ss) : 0.0;
          m = cosine > m ? cosine : m;
        },
        Kokkos::Max<double>(best));
    out[j] = comm.allreduce_max(best);
  }
  return out;
}

void PopulationObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const auto& e = dynamic_cast<const PopulationEvaluation&>(p.evaluation);
  sink.append_observable("population_risk", p.step, p.time, {e.loss});
  sink.append_observable("population_teacher_term", p.step, p.time, {e.teacher_term});
  sink.append_observable("population_interaction", p.step, p.time, {e.interaction});
  const std::vector<double> cosines =
      teacher_max_cosines(p.space, p.state.theta[0], p.model.data().teacher, p.model.comm());
  sink.append_observable("teacher_max_cosine", p.step, p.time, cosines, {cosines.size()});
}

}  // namespace mfsim

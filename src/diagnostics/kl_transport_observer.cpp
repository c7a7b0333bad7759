#include "mfsim/diagnostics/kl_transport_observer.hpp"

#include <stdexcept>

namespace mfsim {

KlTransportObserver::KlTransportObserver(const Model& model, index_t every) : every_(every) {
  for (const GroupSpec& g : model.groups()) references_.emplace_back(g);
}

void KlTransportObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  if (!p.state.tracks_log_density())
    throw std::logic_error("kl transport: the state does not track log-densities");
  const auto& groups = p.model.groups();
  std::vector<double> sums(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g)
    sums[g] = references_[g].sum_log_ratio(p.state.theta[g], p.state.log_density[g]);
  p.model.comm().allreduce_sum(sums.data(), int(sums.size()));
  for (std::size_t g = 0; g < groups.size(); ++g)
    sink.append_observable(observable_name("kl", groups[g].label, "transport"), p.step, p.time,
                           {sums[g] / double(groups[g].global_count)});
}

}  // namespace mfsim

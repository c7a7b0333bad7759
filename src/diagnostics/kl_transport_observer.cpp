#include "mfsim/diagnostics/kl_transport_observer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "mfsim/diagnostics/kl_reliability.hpp"

namespace mfsim {

KlTransportObserver::KlTransportObserver(const Model& model, index_t every,
                                         std::optional<Console> notes)
    : every_(every), series_(notes) {
  for (const GroupSpec& g : model.groups()) references_.emplace_back(g);
}

void KlTransportObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  if (!p.state.tracks_log_density())
    throw std::logic_error("kl transport: the state does not track log-densities");
  const auto& groups = p.model.groups();
  std::vector<double> sums(2 * groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto s = references_[g].log_ratio_sums(p.space, p.state.theta[g], p.state.log_density[g]);
    sums[2 * g] = s.sum;
    sums[2 * g + 1] = s.squares;
  }
  p.model.comm().allreduce_sum(sums.data(), int(sums.size()));
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double count = double(groups[g].global_count), mean = sums[2 * g] / count;
    const double variance = std::max(sums[2 * g + 1] / count - mean * mean, 0.0);
    const Estimate kl{mean, std::sqrt(variance / std::max(count - 1, 1.0))};
    series_.append(sink, observable_name("kl", groups[g].label, "transport"), p, kl,
                   kl_reliable(kl, 0), "more particles shrink its standard error (model.width)");
  }
}

}  // namespace mfsim

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

namespace {

// Σ r_k and Σ r_k² of every slice of a group: the rows of slice s are this rank's local rows
// s·local_per_slice + [0, local_per_slice) (GroupSpec).
std::vector<double> slice_sums(const FlowPoint& p, const GaussianReference& reference,
                               const GroupSpec& group, std::size_t g) {
  std::vector<double> sums(2 * std::size_t(group.slices));
  const index_t rows = group.local_per_slice;
  for (int s = 0; s < group.slices; ++s) {
    const auto range = Kokkos::make_pair(s * rows, (s + 1) * rows);
    const auto r =
        reference.log_ratio_sums(p.space, Kokkos::subview(p.state.theta[g], range, Kokkos::ALL),
                                 Kokkos::subview(p.state.log_density[g], range));
    sums[2 * std::size_t(s)] = r.sum;
    sums[2 * std::size_t(s) + 1] = r.squares;
  }
  return sums;
}

// The transport estimate from Σ r and Σ r² over `count` particles.
Estimate transport_estimate(double sum, double squares, double count) {
  const double mean = sum / count;
  const double variance = std::max(squares / count - mean * mean, 0.0);
  return {mean, std::sqrt(variance / std::max(count - 1, 1.0))};
}

}  // namespace

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
    const Estimate kl =
        transport_estimate(sums[2 * g], sums[2 * g + 1], double(groups[g].global_count));
    series_.append(sink, observable_name("kl", groups[g].label, "transport"), p, kl,
                   kl_reliable(kl, 0), "more particles shrink its standard error (model.width)");
    if (groups[g].slices < 2) continue;
    std::vector<double> layer_sums = slice_sums(p, references_[g], groups[g], g);
    p.model.comm().allreduce_sum(layer_sums.data(), int(layer_sums.size()));
    std::vector<Estimate> layers;
    std::vector<bool> reliable;
    for (int s = 0; s < groups[g].slices; ++s) {
      layers.push_back(transport_estimate(layer_sums[2 * std::size_t(s)],
                                          layer_sums[2 * std::size_t(s) + 1],
                                          double(groups[g].per_slice())));
      reliable.push_back(kl_reliable(layers.back(), 0));
    }
    series_.append_layers(sink, observable_name("kl", groups[g].label, "transport_layers"), p,
                          layers, reliable, "more particles a layer shrink its standard error");
  }
}

}  // namespace mfsim

#include "mfsim/diagnostics/kl_transport_observer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "mfsim/diagnostics/kl_reliability.hpp"

namespace mfsim {

KlTransportObserver::KlTransportObserver(const Model& model, index_t every, bool antithetic,
                                         std::optional<Console> notes)
    : every_(every), antithetic_(antithetic), series_(notes) {
  for (const GroupSpec& g : model.groups()) references_.emplace_back(g);
}

namespace {

constexpr std::size_t sums_per_estimate = 3;

void store(const GaussianReference::LogRatioSums& r, double* out) {
  out[0] = r.sum;
  out[1] = r.squares;
  out[2] = r.pair_squares;
}

// The log-ratio sums of every slice of a group: the rows of slice s are this rank's local rows
// s·local_per_slice + [0, local_per_slice) (GroupSpec).
std::vector<double> slice_sums(const FlowPoint& p, const GaussianReference& reference,
                               const GroupSpec& group, std::size_t g, bool paired) {
  std::vector<double> sums(sums_per_estimate * std::size_t(group.slices));
  const index_t rows = group.local_per_slice;
  for (int s = 0; s < group.slices; ++s) {
    const auto range = Kokkos::make_pair(s * rows, (s + 1) * rows);
    const auto r =
        reference.log_ratio_sums(p.space, Kokkos::subview(p.state.theta[g], range, Kokkos::ALL),
                                 Kokkos::subview(p.state.log_density[g], range), paired);
    store(r, &sums[sums_per_estimate * std::size_t(s)]);
  }
  return sums;
}

// The transport estimate from the log-ratio sums `s` (sum, squares, pair_squares) over `count`
// particles. The standard error is the spread of the independent draws over their root count:
// the particles, or with antithetic pairs the pair means (r_2j + r_2j+1)/2, whose twins are
// correlated along the flow (treating them as independent understates the error).
Estimate transport_estimate(const double* s, double count, bool paired) {
  const double mean = s[0] / count;
  if (!paired) {
    const double variance = std::max(s[1] / count - mean * mean, 0.0);
    return {mean, std::sqrt(variance / std::max(count - 1, 1.0))};
  }
  const double pairs = count / 2;
  const double variance = std::max(s[2] / (4 * pairs) - mean * mean, 0.0);
  return {mean, std::sqrt(variance / std::max(pairs - 1, 1.0))};
}

}  // namespace

void KlTransportObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  if (!p.state.tracks_log_density())
    throw std::logic_error("kl transport: the state does not track log-densities");
  const auto& groups = p.model.groups();
  std::vector<double> sums(sums_per_estimate * groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto s = references_[g].log_ratio_sums(p.space, p.state.theta[g], p.state.log_density[g],
                                                 antithetic_);
    store(s, &sums[sums_per_estimate * g]);
  }
  p.model.comm().allreduce_sum(sums.data(), int(sums.size()));
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Estimate kl = transport_estimate(&sums[sums_per_estimate * g],
                                           double(groups[g].global_count), antithetic_);
    series_.append(sink, observable_name("kl", groups[g].label, "transport"), p, kl,
                   kl_reliable(kl, 0), "more particles shrink its standard error (model.width)");
    if (groups[g].slices < 2) continue;
    std::vector<double> layer_sums = slice_sums(p, references_[g], groups[g], g, antithetic_);
    p.model.comm().allreduce_sum(layer_sums.data(), int(layer_sums.size()));
    std::vector<Estimate> layers;
    std::vector<bool> reliable;
    for (int s = 0; s < groups[g].slices; ++s) {
      layers.push_back(transport_estimate(&layer_sums[sums_per_estimate * std::size_t(s)],
                                          double(groups[g].per_slice()), antithetic_));
      reliable.push_back(kl_reliable(layers.back(), 0));
    }
    series_.append_layers(sink, observable_name("kl", groups[g].label, "transport_layers"), p,
                          layers, reliable, "more particles a layer shrink its standard error");
  }
}

}  // namespace mfsim

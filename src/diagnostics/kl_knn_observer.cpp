#include "mfsim/diagnostics/kl_knn_observer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ostream>

#include "mfsim/core/gather.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"

namespace mfsim {

KlKnnObserver::KlKnnObserver(const Model& model, const ParticleState& initial, int k, index_t every,
                             std::ostream* notes)
    : k_(k), every_(every) {
  const Communicator& comm = model.comm();
  const auto& groups = model.groups();
  bias_.assign(groups.size(), 0.0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    references_.emplace_back(groups[g]);
    // The neighbour search needs a whole slice on one process: rank 0 holds every particle.
    const ConstMatrix all =
        gather_rows(comm, initial.theta[g], groups[g].global_count, groups[g].slices);
    if (!comm.is_root()) {
      initial_.emplace_back();
      whitened_.emplace_back();
      continue;
    }
    const index_t count = groups[g].global_count;
    initial_.emplace_back("mfsim::KlKnn::initial_" + groups[g].name, count, groups[g].dim());
    whitened_.emplace_back("mfsim::KlKnn::whitened_" + groups[g].name, count, groups[g].dim());
    references_[g].whiten(all, initial_[g]);
    // The true KL of the initial particles to ρ₀ is 0 (they are drawn from it): the estimate on
    // them is the estimator's bias at t = 0 (docs/corrections.md).
    const int slices = groups[g].slices;
    const index_t per_slice = count / slices;
    double bias = 0;
    for (int l = 0; l < slices; ++l) {
      const auto rows = Kokkos::make_pair(l * per_slice, (l + 1) * per_slice);
      bias += kl_knn_standard_normal(Kokkos::subview(initial_[g], rows, Kokkos::ALL), k);
    }
    bias_[g] = bias / slices;
    // The rule of docs/corrections.md: unreliable when the predicted relative bias N^(-2/D) of
    // N particles per slice in D dimensions is above 0.1, or the measured bias above 0.1 nats.
    const int dim = groups[g].dim();
    if (notes && (double(per_slice) < std::pow(10.0, dim / 2.0) || std::fabs(bias_[g]) > 0.1))
      *notes << fmt::format(
          "mfsim: warning: kNN KL of {} is unreliable here ({} particles per slice in D = {}; "
          "reliable needs N >= 10^(D/2) = {:.3g}): its value at t = 0 is {:.3g} where the true KL "
          "is 0 (kl{}_knn_bias_t0); prefer kl = [\"transport\"]\n",
          groups[g].name, per_slice, dim, std::pow(10.0, dim / 2.0), bias_[g],
          groups[g].label.empty() ? "" : "_" + groups[g].label);
  }
}

void KlKnnObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Communicator& comm = p.model.comm();
  const auto& groups = p.model.groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ConstMatrix all =
        gather_rows(comm, p.state.theta[g], groups[g].global_count, groups[g].slices);
    double estimates[2] = {0, 0};  // one-sample, two-sample
    if (comm.is_root()) {
      references_[g].whiten(all, whitened_[g]);
      const int slices = groups[g].slices;
      const index_t per_slice = groups[g].global_count / slices;
      for (int l = 0; l < slices; ++l) {
        const auto rows = Kokkos::make_pair(l * per_slice, (l + 1) * per_slice);
        const ConstMatrix x = Kokkos::subview(whitened_[g], rows, Kokkos::ALL);
        const ConstMatrix y = Kokkos::subview(initial_[g], rows, Kokkos::ALL);
        const KlKnnEstimates kl = kl_knn_estimates(x, y, k_, true, scratch_);
        estimates[0] += kl.standard_normal;
        estimates[1] += kl.two_sample;
      }
      estimates[0] /= slices;
      estimates[1] /= slices;
    }
    comm.broadcast(estimates, 2, 0);
    double bias = bias_[g];
    comm.broadcast(&bias, 1, 0);
    const std::string& label = groups[g].label;
    sink.append_observable(observable_name("kl", label, "knn"), p.step, p.time, {estimates[0]});
    sink.append_observable(observable_name("kl", label, "knn_bias_t0"), p.step, p.time, {bias});
    sink.append_observable(observable_name("kl", label, "knn_corrected"), p.step, p.time,
                           {estimates[0] - bias});
    sink.append_observable(observable_name("kl", label, "knn_two_sample"), p.step, p.time,
                           {estimates[1]});
  }
}

}  // namespace mfsim

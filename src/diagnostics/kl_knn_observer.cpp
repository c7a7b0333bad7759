#include "mfsim/diagnostics/kl_knn_observer.hpp"

#include "mfsim/diagnostics/kl_knn.hpp"

namespace mfsim {

KlKnnObserver::KlKnnObserver(const Model& model, const ParticleState& initial, int k, index_t every)
    : k_(k), every_(every) {
  const auto& groups = model.groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    references_.emplace_back(groups[g]);
    const index_t count = index_t(initial.theta[g].extent(0));
    initial_.emplace_back("mfsim::KlKnn::initial_" + groups[g].name, count, groups[g].dim());
    whitened_.emplace_back("mfsim::KlKnn::whitened_" + groups[g].name, count, groups[g].dim());
    references_[g].whiten(initial.theta[g], initial_[g]);
  }
}

void KlKnnObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const auto& groups = p.model.groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    references_[g].whiten(p.state.theta[g], whitened_[g]);
    const int slices = groups[g].slices;
    const index_t per_slice = groups[g].global_count / slices;
    double one_sample = 0, two_sample = 0;
    for (int l = 0; l < slices; ++l) {
      const auto rows = Kokkos::make_pair(l * per_slice, (l + 1) * per_slice);
      const ConstMatrix x = Kokkos::subview(whitened_[g], rows, Kokkos::ALL);
      const ConstMatrix y = Kokkos::subview(initial_[g], rows, Kokkos::ALL);
      one_sample += kl_knn_standard_normal(x, k_);
      two_sample += kl_knn_two_sample(x, y, k_, true);
    }
    const std::string& label = groups[g].label;
    sink.append_observable(observable_name("kl", label, "knn"), p.step, p.time,
                           {one_sample / slices});
    sink.append_observable(observable_name("kl", label, "knn_two_sample"), p.step, p.time,
                           {two_sample / slices});
  }
}

}  // namespace mfsim

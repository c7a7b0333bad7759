#include "mfsim/diagnostics/free_energy_observer.hpp"

#include <cmath>

#include "mfsim/core/gather.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"

namespace mfsim {

FreeEnergyObserver::FreeEnergyObserver(const Model& model, const Regularisation& r, int knn_k,
                                       index_t every, std::unique_ptr<GibbsGap> gibbs_gap)
    : regularisation_(r), k_(knn_k), every_(every), gibbs_gap_(std::move(gibbs_gap)) {
  for (const GroupSpec& g : model.groups()) {
    references_.emplace_back(g);
    double log_std = 0;
    for (double s : g.init_std) log_std += std::log(s);
    log_std_.push_back(log_std);
    const bool holds_all = r.noisy() && model.comm().is_root();
    whitened_.push_back(
        holds_all ? Matrix("mfsim::FreeEnergy::whitened_" + g.name, g.global_count, g.dim())
                  : Matrix());
  }
}

double FreeEnergyObserver::entropy(const FlowPoint& p, std::vector<double>& per_group) {
  const Communicator& comm = p.model.comm();
  const auto& groups = p.model.groups();
  per_group.assign(groups.size(), 0.0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ConstMatrix all =
        gather_rows(comm, p.state.theta[g], groups[g].global_count, groups[g].slices);
    if (!comm.is_root()) continue;
    // Whitened, the neighbourhoods match the law's shape; H(θ) = H(θ/σ) + Σ_j log σ_j.
    references_[g].whiten(all, whitened_[g]);
    const int slices = groups[g].slices;
    const index_t per_slice = groups[g].global_count / slices;
    double h = 0;
    for (int l = 0; l < slices; ++l) {
      const auto rows = Kokkos::make_pair(l * per_slice, (l + 1) * per_slice);
      h += entropy_knn(Kokkos::subview(whitened_[g], rows, Kokkos::ALL), k_, scratch_);
    }
    per_group[g] = h / slices + log_std_[g];
  }
  comm.broadcast(per_group.data(), int(per_group.size()), 0);
  double total = 0;
  for (double h : per_group) total += h;
  return total;
}

void FreeEnergyObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Regularisation& r = regularisation_;
  const auto& groups = p.model.groups();
  // Per group: E|θ|² and the smoothed path norm P_ε.
  double decay_term = 0, penalty_term = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ConstMatrix theta = p.state.theta[g];
    const int dim = int(theta.extent(1));
    const double eps = r.path_norm_smoothing;
    const bool units = groups[g].path_norm_scale > 0;
    double sums[2] = {0, 0};
    Kokkos::parallel_reduce(
        "mfsim::FreeEnergy::moments", Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))),
        KOKKOS_LAMBDA(index_t k, double& norm2, double& path) {
          for (int c = 0; c < dim; ++c) norm2 += double(theta(k, c)) * double(theta(k, c));
          if (units)
            path += SmoothedPathWeight::at(Kokkos::subview(theta, k, Kokkos::ALL), dim, eps).value;
        },
        sums[0], sums[1]);
    p.model.comm().allreduce_sum(sums, 2);
    const double count = double(groups[g].global_count);
    decay_term += 0.5 * r.weight_decay * sums[0] / count;
    penalty_term += r.path_norm_penalty * groups[g].path_norm_scale * sums[1] / count;
  }

  const double lambda = r.temperature_at(p.time);
  double entropy_term = 0;
  if (r.noisy()) {
    std::vector<double> per_group;
    const double h = entropy(p, per_group);
    entropy_term = -lambda * h;
    for (std::size_t g = 0; g < groups.size(); ++g)
      sink.append_observable(observable_name("entropy", groups[g].label, "knn"), p.step, p.time,
                             {per_group[g]});
    if (gibbs_gap_)
      sink.append_observable("gibbs_gap", p.step, p.time, {(*gibbs_gap_)(p, h, lambda)});
  }
  sink.append_observable("temperature", p.step, p.time, {lambda});
  sink.append_observable("weight_decay_term", p.step, p.time, {decay_term});
  sink.append_observable("path_norm_penalty_term", p.step, p.time, {penalty_term});
  sink.append_observable("entropy_term", p.step, p.time, {entropy_term});
  sink.append_observable("free_energy", p.step, p.time,
                         {p.loss + decay_term + penalty_term + entropy_term});
}

}  // namespace mfsim

#include "mfsim/diagnostics/free_energy_observer.hpp"

#include <cmath>

#include "mfsim/core/gather.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/kl_reliability.hpp"

namespace mfsim {

FreeEnergyObserver::FreeEnergyObserver(const Model& model, const Regularisation& r,
                                       const KnnSettings& knn, index_t every,
                                       std::unique_ptr<GibbsGap> gibbs_gap,
                                       std::optional<Console> notes)
    : regularisation_(r),
      k_(knn.k),
      stride_(knn.antithetic ? 2 : 1),
      every_(every),
      gibbs_gap_(std::move(gibbs_gap)),
      series_(notes) {
  for (const GroupSpec& g : model.groups()) {
    references_.emplace_back(g);
    double log_std = 0;
    for (double s : g.init_std) log_std += std::log(s);
    log_std_.push_back(log_std);
    const bool holds_all = r.noisy() && model.comm().is_root();
    const index_t count = knn_particle_count(g, knn.antithetic);
    whitened_.push_back(holds_all ? Matrix("mfsim::FreeEnergy::whitened_" + g.name, count, g.dim())
                                  : Matrix());
    const index_t per_slice = count / g.slices;
    reference_bias_.push_back(holds_all
                                  ? reference_bias(ExecSpace(), per_slice, g.dim(), knn.k,
                                                   {0, std::uint64_t(1) << 30, per_slice}, scratch_)
                                  : 0.0);
  }
}

std::vector<FreeEnergyObserver::GroupEntropy> FreeEnergyObserver::entropy(const FlowPoint& p) {
  const Communicator& comm = p.model.comm();
  const auto& groups = p.model.groups();
  std::vector<double> numbers(3 * groups.size(), 0.0);  // per group: H, its variance, bias bound
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ConstMatrix all =
        gather_rows(comm, p.state.theta[g], groups[g].global_count, groups[g].slices);
    if (!comm.is_root()) continue;
    // Whitened, the neighbourhoods match the law's shape; H(θ) = H(θ/σ) + Σ_j log σ_j.
    references_[g].whiten(p.space, all, whitened_[g], stride_);
    const int slices = groups[g].slices;
    const index_t per_slice = index_t(whitened_[g].extent(0)) / slices;
    for (int l = 0; l < slices; ++l) {
      const auto rows = Kokkos::make_pair(l * per_slice, (l + 1) * per_slice);
      const KnnKlEstimates e = knn_kl_estimates(
          p.space, Kokkos::subview(whitened_[g], rows, Kokkos::ALL), k_, {}, scratch_);
      numbers[3 * g] += e.entropy.value / slices;
      numbers[3 * g + 1] +=
          e.entropy.standard_error * e.entropy.standard_error / (double(slices) * slices);
      numbers[3 * g + 2] +=
          knn_bias_bound(e.entropy.value - e.entropy_half, groups[g].dim(), reference_bias_[g]) /
          slices;
    }
    numbers[3 * g] += log_std_[g];
  }
  comm.broadcast(numbers.data(), int(numbers.size()), 0);
  std::vector<GroupEntropy> out;
  for (std::size_t g = 0; g < groups.size(); ++g)
    out.push_back({{numbers[3 * g], std::sqrt(numbers[3 * g + 1])}, numbers[3 * g + 2]});
  return out;
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
    const int outputs = groups[g].outputs;
    double sums[2] = {0, 0};
    const auto policy = Kokkos::RangePolicy<ExecSpace>(p.space, 0, index_t(theta.extent(0)));
    if (outputs == 1) {
      Kokkos::parallel_reduce(
          "mfsim::FreeEnergy::moments", policy,
          KOKKOS_LAMBDA(index_t k, double& norm2, double& path) {
            for (int c = 0; c < dim; ++c) norm2 += double(theta(k, c)) * double(theta(k, c));
            if (units)
              path +=
                  SmoothedPathWeight::at(Kokkos::subview(theta, k, Kokkos::ALL), dim, eps).value;
          },
          sums[0], sums[1]);
    } else {  // a ∈ R^c: s_ε(|a|₂) (a kernel of its own, so that c = 1 keeps its rounding)
      Kokkos::parallel_reduce(
          "mfsim::FreeEnergy::vector_moments", policy,
          KOKKOS_LAMBDA(index_t k, double& norm2, double& path) {
            for (int c = 0; c < dim; ++c) norm2 += double(theta(k, c)) * double(theta(k, c));
            if (units)
              path += SmoothedPathWeight::vector_at(Kokkos::subview(theta, k, Kokkos::ALL), dim,
                                                    eps, outputs)
                          .value;
          },
          sums[0], sums[1]);
    }
    p.model.comm().allreduce_sum(sums, 2);
    const double count = double(groups[g].global_count);
    decay_term += 0.5 * r.weight_decay * sums[0] / count;
    penalty_term += r.path_norm_penalty * groups[g].path_norm_scale * sums[1] / count;
  }

  const double lambda = r.temperature_at(p.time);
  double entropy_term = 0, entropy_variance = 0;
  bool entropy_reliable = true;
  const std::string advice =
      "the kNN entropy is biased where the law concentrates near lower-dimensional sets or D is "
      "large (more particles: model.width)";
  if (r.noisy()) {
    const std::vector<GroupEntropy> per_group = entropy(p);
    double h = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const GroupEntropy& e = per_group[g];
      const bool reliable = kl_reliable(e.h, e.bias_bound);
      series_.append(sink, observable_name("entropy", groups[g].label, "knn"), p, e.h, reliable,
                     advice);
      h += e.h.value;
      entropy_variance += e.h.standard_error * e.h.standard_error;
      entropy_reliable = entropy_reliable && reliable;
    }
    entropy_term = -lambda * h;
    if (gibbs_gap_) {
      const Estimate gap = (*gibbs_gap_)(p, h, lambda);
      const double log_z_error = gap.standard_error;
      series_.append(
          sink, "gibbs_gap", p,
          {gap.value, std::sqrt(entropy_variance + log_z_error * log_z_error)},
          entropy_reliable && kl_error_multiplier * log_z_error <= kl_tolerance(gap.value),
          "its entropy is unreliable (entropy_*_knn_reliable) or log Z's importance sampling "
          "(more draws: diagnostics.gibbs_samples)");
    }
  }
  sink.append_observable("temperature", p.step, p.time, {lambda});
  sink.append_observable("weight_decay_term", p.step, p.time, {decay_term});
  sink.append_observable("path_norm_penalty_term", p.step, p.time, {penalty_term});
  sink.append_observable("entropy_term", p.step, p.time, {entropy_term});
  const double free_energy = p.loss + decay_term + penalty_term + entropy_term;
  if (r.noisy())
    series_.append(sink, "free_energy", p, {free_energy, lambda * std::sqrt(entropy_variance)},
                   entropy_reliable, "its entropy is unreliable (entropy_*_knn_reliable)");
  else
    sink.append_observable("free_energy", p.step, p.time, {free_energy});
}

}  // namespace mfsim

#include "mfsim/diagnostics/kl_knn_observer.hpp"

#include <cmath>

#include "mfsim/core/gather.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/kl_reliability.hpp"

namespace mfsim {

index_t knn_particle_count(const GroupSpec& group, bool antithetic) {
  return antithetic ? group.global_count / 2 : group.global_count;
}

namespace {

// The draws of the reference bias: a stream apart from the two-sample estimate's.
constexpr std::uint64_t reference_bias_stream = std::uint64_t(1) << 30,
                        ellipsoid_stream = std::uint64_t(1) << 29;

// The rows of slice l of a group's whitened particles.
ConstMatrix slice(const Matrix& whitened, int slices, int l) {
  const index_t per_slice = index_t(whitened.extent(0)) / slices;
  return Kokkos::subview(whitened, Kokkos::make_pair(l * per_slice, (l + 1) * per_slice),
                         Kokkos::ALL);
}

// The mean over slices of estimates: the values and bias bounds averaged, the standard errors
// combined as those of a mean of independent estimates.
struct SliceMean {
  double value = 0, variance = 0, bias_bound = 0;
  void add(const Estimate& e, double bound) {
    value += e.value;
    variance += e.standard_error * e.standard_error;
    bias_bound += bound;
  }
  void finish(int slices) {
    value /= slices;
    variance /= double(slices) * slices;
    bias_bound /= slices;
  }
};

}  // namespace

KlKnnObserver::KlKnnObserver(const Model& model, const ParticleState& initial,
                             const KnnSettings& settings, index_t every,
                             std::optional<Console> notes)
    : settings_(settings), every_(every), series_(notes) {
  const Communicator& comm = model.comm();
  const auto& groups = model.groups();
  const index_t stride = settings.antithetic ? 2 : 1;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    references_.emplace_back(groups[g]);
    // The neighbour search needs a whole slice on one process: rank 0 holds every particle.
    const ConstMatrix all =
        gather_rows(comm, initial.theta[g], groups[g].global_count, groups[g].slices);
    double bias[2] = {0, 0};
    if (comm.is_root()) {
      whitened_.emplace_back("mfsim::KlKnn::whitened_" + groups[g].name,
                             knn_particle_count(groups[g], settings.antithetic), groups[g].dim());
      references_[g].whiten(ExecSpace(), all, whitened_[g], stride);
      // The true KL of the initial particles to ρ₀ is 0 (they are drawn from it): the estimate on
      // them is the estimator's bias at t = 0.
      const int slices = groups[g].slices;
      SliceMean mean;
      for (int l = 0; l < slices; ++l)
        mean.add(kl_knn_standard_normal(ExecSpace(), slice(whitened_[g], slices, l), settings.k,
                                        scratch_),
                 0);
      mean.finish(slices);
      bias[0] = mean.value;
      bias[1] = std::sqrt(mean.variance);
      const ReferenceDraws draws{settings.seed, reference_bias_stream + std::uint64_t(g),
                                 index_t(whitened_[g].extent(0)) / slices};
      reference_bias_.push_back(
          reference_bias(ExecSpace(), draws.count, groups[g].dim(), settings.k, draws, scratch_));
      ellipsoid_reference_.push_back(
          knn_ellipsoid_applies(draws.count, groups[g].dim())
              ? ellipsoid_reference(ExecSpace(), draws.count, groups[g].dim(),
                                    {draws.seed, draws.stream + ellipsoid_stream, draws.count},
                                    scratch_)
              : EllipsoidReference());
    } else {
      whitened_.emplace_back();
      reference_bias_.push_back(0);
      ellipsoid_reference_.emplace_back();
    }
    ellipsoid_.push_back(knn_ellipsoid_applies(
        knn_particle_count(groups[g], settings.antithetic) / groups[g].slices, groups[g].dim()));
    comm.broadcast(bias, 2, 0);
    bias_.push_back({bias[0], bias[1]});
  }
}

void KlKnnObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Communicator& comm = p.model.comm();
  const auto& groups = p.model.groups();
  const index_t stride = settings_.antithetic ? 2 : 1;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ConstMatrix all =
        gather_rows(comm, p.state.theta[g], groups[g].global_count, groups[g].slices);
    const int dim = groups[g].dim();
    // One-sample: value, variance, bias bound; then the same for the two-sample estimate and the
    // ellipsoid estimate.
    // Then value, standard error and bias bound of every slice's one-sample estimate.
    const int slices = groups[g].slices;
    std::vector<double> numbers(9 + 3 * std::size_t(slices), 0.0);
    if (comm.is_root()) {
      references_[g].whiten(p.space, all, whitened_[g], stride);
      SliceMean one, two, ellipsoid;
      for (int l = 0; l < slices; ++l) {
        const ConstMatrix x = slice(whitened_[g], slices, l);
        const ReferenceDraws draws{settings_.seed, (std::uint64_t(g) << 20) + std::uint64_t(l),
                                   settings_.draws_per_particle * index_t(x.extent(0))};
        const KnnKlEstimates e = knn_kl_estimates(p.space, x, settings_.k, draws, scratch_);
        const double bound =
            knn_bias_bound(e.one_sample.value - e.one_sample_half, dim, reference_bias_[g]);
        one.add(e.one_sample, bound);
        const std::size_t at = 9 + 3 * std::size_t(l);
        numbers[at] = e.one_sample.value;
        numbers[at + 1] = e.one_sample.standard_error;
        numbers[at + 2] = bound;
        two.add(e.two_sample, two_sample_bias_bound(e.two_sample.value, e.one_sample.value, bound));
        if (ellipsoid_[g]) {
          const EllipsoidKl el = kl_knn_ellipsoid(p.space, x, ellipsoid_reference_[g], scratch_);
          ellipsoid.add(el.kl, ellipsoid_bias_bound(el.kl.value, el.half, dim, e.one_sample.value,
                                                    e.one_sample.value - bias_[g].value));
        }
      }
      one.finish(slices);
      two.finish(slices);
      ellipsoid.finish(slices);
      const double values[9] = {one.value,       one.variance,       one.bias_bound,
                                two.value,       two.variance,       two.bias_bound,
                                ellipsoid.value, ellipsoid.variance, ellipsoid.bias_bound};
      for (int i = 0; i < 9; ++i) numbers[i] = values[i];
    }
    comm.broadcast(numbers.data(), int(numbers.size()), 0);
    const Estimate knn{numbers[0], std::sqrt(numbers[1])};
    const Estimate two_sample{numbers[3], std::sqrt(numbers[4])};
    const Estimate corrected{knn.value - bias_[g].value,
                             std::hypot(knn.standard_error, bias_[g].standard_error)};
    const std::string& label = groups[g].label;
    const std::string advice =
        "the kNN estimators are biased where the law concentrates near lower-dimensional sets or "
        "D is large; prefer kl = [\"transport\"] where the flow allows it";
    series_.append(sink, observable_name("kl", label, "knn"), p, knn, kl_reliable(knn, numbers[2]),
                   advice);
    sink.append_observable(observable_name("kl", label, "knn_bias_t0"), p.step, p.time,
                           {bias_[g].value});
    // Its bias is the estimate's less the one at t = 0: bounded by the sum of both.
    series_.append(sink, observable_name("kl", label, "knn_corrected"), p, corrected,
                   kl_reliable(corrected, numbers[2] + std::fabs(bias_[g].value)), advice);
    series_.append(sink, observable_name("kl", label, "knn_two_sample"), p, two_sample,
                   kl_reliable(two_sample, numbers[5]), advice);
    if (ellipsoid_[g]) {
      const Estimate e{numbers[6], std::sqrt(numbers[7])};
      series_.append(sink, observable_name("kl", label, "knn_ellipsoid"), p, e,
                     kl_reliable(e, numbers[8]), advice);
    }
    if (slices < 2) continue;
    std::vector<Estimate> layers;
    std::vector<bool> reliable;
    for (int l = 0; l < slices; ++l) {
      const std::size_t at = 9 + 3 * std::size_t(l);
      layers.push_back({numbers[at], numbers[at + 1]});
      reliable.push_back(kl_reliable(layers.back(), numbers[at + 2]));
    }
    series_.append_layers(sink, observable_name("kl", label, "knn_layers"), p, layers, reliable,
                          advice);
  }
}

}  // namespace mfsim

#pragma once
// kNN estimates of KL(ρ_t || ρ₀) for each particle group (MATH.md §5.3), on whitened coordinates
// (θ_j / σ_j with the initial stds):
//   kl_<label>_knn              Kozachenko–Leonenko, against the known Gaussian ρ₀
//   kl_<label>_knn_two_sample   Wang–Kulkarni–Verdú, against 10·N fresh draws of ρ₀ (generated
//                               in chunks and streamed through the neighbour search)
//   kl_<label>_knn_bias_t0      the Kozachenko–Leonenko estimate on the initial particles, whose
//                               true KL to ρ₀ is 0: the estimator's bias there (a constant)
//   kl_<label>_knn_corrected    kl_<label>_knn − kl_<label>_knn_bias_t0 (first-order correction:
//                               the bias at ρ_t is taken to be the bias at ρ₀)
//   kl_<label>_knn_ellipsoid    the geometric (local-ellipsoid) estimate less its value at ρ₀
//                               (knn_ellipsoid.hpp), where it applies (D ≤ 16, N ≥ 4D + 4)
// each but the bias with its _stderr and _reliable (kl_reliability.hpp: the halving checks), and
// a warning on the notes the first time one is unreliable (EstimateSeries).
// With antithetic pairs (rows 2j, 2j + 1), the estimates use one member of each pair: the twins
// stay close, and a neighbour that is a twin is no independent draw (N is then half the group).
// A group of L slices (ResNet layers) is estimated slice by slice from each slice's particles, and
// the slices' estimates are averaged; such a group also gets kl_<label>_knn_layers, the
// Kozachenko–Leonenko estimate of every slice (shape {L}) with its _stderr and _reliable per
// layer (the same halving bias bound as kl_<label>_knn, slice by slice). The initial particles are
// the state the run starts from for a fresh run, and frame 0 of init.path on a restart
// (Diagnostics). With several ranks, the particles are gathered to rank 0 for the neighbour search
// (a serial O(N²/L) search per group; Diagnostics caps the gathered size), and rank 0 broadcasts
// the estimates.
#include <cstdint>
#include <optional>
#include <vector>

#include "mfsim/diagnostics/estimate_series.hpp"
#include "mfsim/diagnostics/gaussian_reference.hpp"
#include "mfsim/diagnostics/knn_ellipsoid.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

struct KnnSettings {
  int k = 5;
  bool antithetic = false;  // the particles come in antithetic pairs
  std::uint64_t seed = 0;   // of the fresh reference draws
  index_t draws_per_particle = 10;
};

class KlKnnObserver final : public Observer {
 public:
  KlKnnObserver(const Model& model, const ParticleState& initial, const KnnSettings& settings,
                index_t every, std::optional<Console> notes = std::nullopt);
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "kl_knn"; }
  index_t every() const override { return every_; }

 private:
  std::vector<GaussianReference> references_;
  std::vector<Matrix> whitened_;        // per group, the particles the estimates use (rank 0)
  std::vector<Estimate> bias_;          // per group, the estimate at t = 0 (every rank)
  std::vector<double> reference_bias_;  // per group, reference_bias of a slice (rank 0)
  std::vector<bool> ellipsoid_;         // per group, whether kl_knn_ellipsoid applies
  std::vector<EllipsoidReference> ellipsoid_reference_;  // per group, of a slice (rank 0)
  Workspace scratch_;  // the neighbour searches' panels and distances
  KnnSettings settings_;
  index_t every_;
  EstimateSeries series_;
};

// The particles of a group that the kNN estimates use: all, or one of each antithetic pair.
index_t knn_particle_count(const GroupSpec& group, bool antithetic);

}  // namespace mfsim

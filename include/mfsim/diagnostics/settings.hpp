#pragma once
// What the [diagnostics] section of a config asks for (docs/diagnostics.md).
#include "mfsim/core/types.hpp"
#include "mfsim/diagnostics/eigenvalues.hpp"

namespace mfsim {

struct DiagnosticsSettings {
  index_t every = 10;  // cadence (steps) of the cheap diagnostics (KL transport, path norms)

  // Gram matrix: gram_lambda_min/max, energy_identity_error, loss_bound (+ NTK λ₀).
  bool gram = true;
  index_t gram_every = 10;
  index_t gram_max_samples = 2000;  // gram is skipped (with a log line) above this n_train
  // data.kind = "population": the Gram diagnostics' probe set of fresh inputs (Dataset::probe).
  index_t probe_samples = 0;
  EigenSolverKind gram_solver = EigenSolverKind::dense;
  bool gram_spectrum = false;  // /observables/gram_spectrum [T][n]
  bool gram_matrix = false;    // /observables/gram_matrix [T][n][n], n_train ≤ 500
  bool gram_layers = false;    // gram_<part>_lambda_min_layers [T][L]: λ_min of each layer's term
  bool ntk = true;             // λ₀ of the infinite-width kernel, with the Gram diagnostics

  // KL(ρ_t || ρ₀).
  bool kl_transport = false;  // log-density along characteristics (needs a C² activation)
  bool kl_knn = false;        // Kozachenko–Leonenko and Wang–Kulkarni–Verdú estimators
  int knn_k = 5;
  index_t knn_every = 10;

  // The regularised flow's objective (free_energy and its terms), when flow.temperature,
  // weight_decay or path_norm_penalty is set; at knn_every with temperature > 0 (the entropy is a
  // kNN estimate), else at `every`.
  bool free_energy = true;
  // gibbs_gap, with the free energy where it is valid (model A, D <= 4, temperature and
  // weight_decay > 0); gibbs_gap_required: asked for explicitly, so an invalid setting is an error.
  bool gibbs_gap = true, gibbs_gap_required = false;
  index_t gibbs_samples = 65536;  // importance samples of its log-partition function

  bool path_norm = true;    // path_norm_l1, path_norm_l2, rademacher_bound
  bool path_length = true;  // w2_path_length

  static constexpr index_t gram_matrix_max_samples = 500;
  // The two-sample kNN KL compares each slice's N particles with this many times N fresh draws of
  // ρ₀, streamed through the neighbour search in chunks.
  static constexpr index_t knn_draws_per_particle = 10;
  // kNN KL with several ranks: most coordinates (particles × dimension, per group) gathered to rank
  // 0 for the neighbour search (2^27 doubles = 1 GiB).
  static constexpr index_t knn_gather_max_values = index_t(1) << 27;
};

}  // namespace mfsim

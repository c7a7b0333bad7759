#pragma once
// The diagnostics a config's [diagnostics] section asks for, built for one problem: the observers
// run_flow calls, and the constants they add to /parameters (the NTK reference λ₀).
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mfsim/app/simulation.hpp"
#include "mfsim/core/console.hpp"
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class Diagnostics {
 public:
  // Checks the request against the model before anything is written, and throws InputError
  // naming the key: transport KL needs C² activations (and a state built with log-densities,
  // build_problem(..., log_density = settings.kl_transport)), kNN needs more particles per slice
  // than knn_k and a single process, gram_matrix a small n_train. Diagnostics that do not apply
  // (gram above gram_max_samples) are left out with a line on the console's notes (root rank
  // only), where GramObserver's and the kNN observer's notes go too.
  // On a restart, w2_path_length and loss_bound continue from the init file's values at the
  // restart step (read alike on every rank), or start again with a note on the console's notes
  // (root rank).
  Diagnostics(const Config& config, const Problem& problem, const Console& console);
  // The same with every message, results and notes, on `log` (tests).
  Diagnostics(const Config& config, const Problem& problem, std::ostream& log);

  std::vector<Observer*> observers() const;
  // /parameters entries: ntk_lambda0 = λ_min(K) and ntk_gram_scale (β²: G(0) → scale·K), when
  // the Gram diagnostics run and the model has an infinite-width reference.
  const std::map<std::string, std::string>& parameters() const { return parameters_; }

 private:
  std::vector<std::unique_ptr<Observer>> observers_;
  std::map<std::string, std::string> parameters_;
};

}  // namespace mfsim

#include "mfsim/app/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/classification_observer.hpp"
#include "mfsim/diagnostics/free_energy_observer.hpp"
#include "mfsim/diagnostics/gibbs_gap.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/kl_knn_observer.hpp"
#include "mfsim/diagnostics/kl_transport_observer.hpp"
#include "mfsim/diagnostics/path_length_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/diagnostics/population_observer.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/models/population.hpp"

namespace mfsim {
namespace {

void check_transport(const Model& model, const ParticleState& state) {
  for (const auto& [key, activation] : model.activations()) {
    if (!is_twice_differentiable(activation.kind))
      throw InputError(fmt::format(
          "diagnostics.kl: \"transport\" needs a twice-differentiable activation, but {} = "
          "\"{}\"; use \"softplus\" (a smooth ReLU; raise model.softplus_kappa to sharpen it) or "
          "kl = [\"knn\"]",
          key, activation_name(activation.kind)));
  }
  if (!state.tracks_log_density())
    throw std::logic_error("transport KL needs a state built with log-densities");
}

// `antithetic`: the kNN KL estimates use one particle of each antithetic pair.
void check_knn(const Model& model, int k, bool antithetic) {
  for (const GroupSpec& g : model.groups()) {
    // With several ranks the particles are gathered to rank 0 (KlKnnObserver): cap that copy.
    if (model.comm().size() > 1 &&
        g.global_count * g.dim() > DiagnosticsSettings::knn_gather_max_values)
      throw InputError(fmt::format(
          "diagnostics.kl: \"knn\" with {} ranks gathers the {} × {} coordinates of {} on rank "
          "0, above the limit of {} values; use kl = [\"transport\"] or a single process",
          model.comm().size(), g.global_count, g.dim(), g.name,
          DiagnosticsSettings::knn_gather_max_values));
    const index_t per_slice = knn_particle_count(g, antithetic) / g.slices;
    if (per_slice <= k)
      throw InputError(fmt::format(
          "diagnostics.knn_k: must be below the {} particles per slice of {} that the kNN "
          "estimates use{} (got {})",
          per_slice, g.name, antithetic ? " (one of each antithetic pair)" : "", k));
  }
}

// The Gibbs gap where the config allows it (GibbsGap's conditions); why not, as an error, where it
// was asked for explicitly.
std::unique_ptr<GibbsGap> make_gibbs_gap(const Config& c, const Model& model) {
  const DiagnosticsSettings& s = c.diagnostics;
  const Regularisation& r = c.flow.regularisation;
  if (!s.gibbs_gap) return nullptr;
  const auto* potential = dynamic_cast<const PotentialModel*>(&model);
  std::string why;
  if (!potential)
    why = fmt::format("the {} model has no potential at arbitrary points", model.kind());
  else if (model.groups().size() != 1 || model.groups()[0].dim() > GibbsGap::max_dim)
    why = fmt::format("needs particles of dimension <= {} (model.bias and data.dim give {})",
                      GibbsGap::max_dim, model.groups()[0].dim());
  else if (!(r.temperature > 0 && r.weight_decay > 0))
    why = "needs flow.temperature > 0 and flow.weight_decay > 0";
  else if (!s.free_energy)
    why = "needs diagnostics.free_energy = true";
  if (why.empty())
    return std::make_unique<GibbsGap>(model, *potential, r, s.gibbs_samples, r.noise_seed);
  if (s.gibbs_gap_required) throw InputError("diagnostics.gibbs_gap: " + why);
  return nullptr;
}

// The initial particles of the two-sample kNN estimate: the state the run starts from, or on a
// restart the first frame of the file it restarts from (already open: Problem::init_file).
ParticleState initial_particles(const Problem& p) {
  ParticleState initial = allocate_state(p.model->groups(), false, "initial");
  if (p.init_file)
    load_state(*p.init_file, "init.path", p.model->groups(), 0, initial);
  else
    for (std::size_t g = 0; g < initial.theta.size(); ++g)
      Kokkos::deep_copy(initial.theta[g], p.state.theta[g]);
  return initial;
}

// On a restart, the scalar observable `name` that the init file holds at the restart step, from
// which this run carries the original run's curve on; none if the file lacks it at that step (an
// older file, the diagnostic off, another cadence). Every rank reads the same file alike.
std::optional<double> restart_value(const Problem& p, const std::string& name) {
  const auto names = p.init_file->observables();
  if (std::find(names.begin(), names.end(), name) == names.end()) return std::nullopt;
  const ObservableSeries s = p.init_file->read_observable(name);
  if (!s.shape.empty()) return std::nullopt;
  for (std::size_t i = 0; i < s.step.size(); ++i) {
    if (s.step[i] != p.first_step) continue;
    // Carried on into this run's output: an input, which holds finite values only.
    if (!std::isfinite(s.value[i]))
      throw InputError(fmt::format(
          "init.path: {}: /observables/{}/value at the restart step {} is {}; input files must "
          "hold finite values",
          p.init_file->path(), name, p.first_step, s.value[i]));
    return s.value[i];
  }
  return std::nullopt;
}

// Particle groups are told apart by their labels in the observables' names.
void check_distinct_labels(const Model& model) {
  std::set<std::string> labels;
  for (const GroupSpec& g : model.groups())
    if (!labels.insert(g.label).second)
      throw std::logic_error("particle groups of " + model.kind() + " share the label \"" +
                             g.label + "\"");
}

// The plain gradient flow: no regulariser, no noise, no minibatch.
bool plain_flow(const Config& c, const Model& model) {
  return !c.flow.regularisation.any() && !c.flow.minibatch.active(model.data().n_train());
}

// A restart carries on the curves integrated along the run from the init file's values at the
// restart step; those it lacks start again from this run's start, named in one note at the end.
class RestartCurves {
 public:
  explicit RestartCurves(const Problem& p) : p_(p) {}

  // The init file's value of `name` at the restart step; none without a restart, or where the
  // file lacks it: then the curve starts again from `start`, which note_missing says.
  std::optional<double> value(const std::string& name, const std::string& start) {
    std::optional<double> value;
    if (!p_.init_file) return value;
    on_every_rank(p_.model->comm(), [&] { value = restart_value(p_, name); });
    if (!value) missing_.push_back(name + " starts again from " + start);
    return value;
  }

  // A curve that starts again for a reason of its own (`what` says which and why).
  void starts_again(const std::string& what) { missing_.push_back(what); }

  void note_missing(const Config& c, const Console& root) const {
    if (missing_.empty()) return;
    std::string what = missing_[0];
    for (std::size_t i = 1; i < missing_.size(); ++i) what += ", " + missing_[i];
    root.note(fmt::format("mfsim: note: {} holds no value at the restart step {}: {}", c.init.path,
                          p_.first_step, what));
  }

 private:
  const Problem& p_;
  std::vector<std::string> missing_;
};

using Observers = std::vector<std::unique_ptr<Observer>>;

void add_kl_observers(const Config& c, const Problem& p, const Console& root, Observers& out) {
  const DiagnosticsSettings& s = c.diagnostics;
  const Model& model = *p.model;
  if (s.kl_transport) {
    check_transport(model, p.state);
    out.push_back(std::make_unique<KlTransportObserver>(model, s.every, c.init.antithetic, root));
  }
  if (s.kl_knn) {
    check_knn(model, s.knn_k, c.init.antithetic);
    ParticleState initial;
    // Reading a restart's first frame may fail on one rank only: end every rank the same way.
    on_every_rank(model.comm(), [&] { initial = initial_particles(p); });
    const KnnSettings knn{s.knn_k, c.init.antithetic, c.init.seed,
                          DiagnosticsSettings::knn_draws_per_particle};
    out.push_back(std::make_unique<KlKnnObserver>(model, initial, knn, s.knn_every, root));
  }
}

// The model's Gram capability where the Gram diagnostics are asked for and apply; null where they
// are off, the model has no Gram matrix, or n_train is above gram_max_samples (then with a line
// on the notes stream).
const GramModel* requested_gram(const DiagnosticsSettings& s, const Model& model,
                                const Console& root) {
  const GramModel* gram = gram_model(model);
  if (!s.gram || !gram || gram->gram_parts().empty()) return nullptr;
  // The Gram matrix is (n · c)²: n_train samples (or a probe set's), c = model.outputs rows a
  // sample.
  const index_t n = gram->gram_samples(model.data()) * model.outputs();
  if (n > s.gram_max_samples) {
    root.note(fmt::format(
        "mfsim: Gram diagnostics skipped: n_train{} = {} > diagnostics.gram_max_samples = {}",
        model.outputs() > 1 ? " * model.outputs" : "", n, s.gram_max_samples));
    return nullptr;
  }
  if (s.gram_matrix && n > DiagnosticsSettings::gram_matrix_max_samples)
    throw InputError(
        fmt::format("diagnostics.gram_matrix: the matrix is written only for {} <= {} (got {})",
                    gram->gram_on_training_samples() ? "n_train" : "probe_samples",
                    DiagnosticsSettings::gram_matrix_max_samples, n));
  return gram;
}

std::unique_ptr<Observer> make_gram_observer(const Config& c, const Model& model,
                                             const GramModel& gram, const Console& root,
                                             RestartCurves& restart) {
  auto observer = std::make_unique<GramObserver>(model, gram, c.diagnostics, root.notes_stream());
  if (!gram.gram_on_training_samples()) {
    // (A11) and (A12) are statements about the training samples' loss: a probe set has none.
    observer->omit_energy_identity();
    observer->omit_loss_bound();
  } else if (!plain_flow(c, model) || model.loss_kind() != LossKind::square) {
    // (A12) bounds the square loss of the plain, full-batch gradient flow only.
    observer->omit_loss_bound();
  } else if (const auto bound = restart.value("loss_bound", "the loss")) {
    observer->continue_from(*bound);
  }
  return observer;
}

// The NTK reference beside the particle Gram: ntk_lambda0 = λ_min(K) and ntk_gram_scale (β²),
// where the model has an infinite-width kernel K.
void record_ntk(const DiagnosticsSettings& s, const Model& model, const GramModel& gram,
                std::map<std::string, std::string>& parameters) {
  const index_t n = gram.gram_samples(model.data());
  Matrix kernel("mfsim::Diagnostics::ntk", n, n);
  const double scale = gram.infinite_width_gram(kernel);
  if (!(scale > 0)) return;
  const ExtremeEigenvalues ev = extreme_eigenvalues(to_host(kernel), s.gram_solver);
  parameters["ntk_lambda0"] = fmt::format("{:.17g}", ev.min);
  parameters["ntk_gram_scale"] = fmt::format("{:.17g}", scale);
}

void add_free_energy_observer(const Config& c, const Model& model, const Console& root,
                              Observers& out) {
  const DiagnosticsSettings& s = c.diagnostics;
  const Regularisation& regularisation = c.flow.regularisation;
  std::unique_ptr<GibbsGap> gibbs_gap = make_gibbs_gap(c, model);
  if (!(s.free_energy && regularisation.any())) return;
  if (regularisation.noisy()) check_knn(model, s.knn_k, c.init.antithetic);
  const KnnSettings knn{s.knn_k, c.init.antithetic, c.init.seed,
                        DiagnosticsSettings::knn_draws_per_particle};
  out.push_back(std::make_unique<FreeEnergyObserver>(model, regularisation, knn,
                                                     regularisation.noisy() ? s.knn_every : s.every,
                                                     std::move(gibbs_gap), root));
}

void add_path_observers(const Config& c, const Model& model, RestartCurves& restart,
                        Observers& out) {
  const DiagnosticsSettings& s = c.diagnostics;
  bool any_path_norm = false;
  for (const GroupSpec& g : model.groups()) any_path_norm = any_path_norm || g.path_norm_scale > 0;
  if (s.path_norm && any_path_norm) out.push_back(std::make_unique<PathNormObserver>(s.every));
  // The W₂ path length integrates the model's full-batch velocity: a bound on the movement of
  // the plain gradient flow only (the regularisers' drift, the noise and minibatches move the
  // particles otherwise).
  if (s.path_length && plain_flow(c, model)) {
    auto length = std::make_unique<PathLengthObserver>(s.every);
    if (const auto value = restart.value("w2_path_length", "0")) length->continue_from(*value);
    out.push_back(std::move(length));
  }
}

}  // namespace

Diagnostics::Diagnostics(const Config& c, const Problem& p, const Console& console) {
  const DiagnosticsSettings& s = c.diagnostics;
  const Model& model = *p.model;
  const Console root = console.on_root(model.comm());
  check_distinct_labels(model);
  RestartCurves restart(p);
  // In the order run_flow calls them.
  add_kl_observers(c, p, root, observers_);
  if (s.kl_transport && p.log_density_restarted)
    restart.starts_again("kl_transport starts again from 0 (the file has no log-densities)");
  if (const GramModel* gram = requested_gram(s, model, root)) {
    observers_.push_back(make_gram_observer(c, model, *gram, root, restart));
    if (s.ntk) record_ntk(s, model, *gram, parameters_);
  }
  if (classifies(model.loss_kind()) || (model.outputs() > 1 && model.data().classes > 0))
    observers_.push_back(std::make_unique<ClassificationObserver>());
  add_free_energy_observer(c, model, root, observers_);
  add_path_observers(c, model, restart, observers_);
  if (dynamic_cast<const PopulationModel*>(&model)) {
    observers_.push_back(std::make_unique<PopulationObserver>(s.every));
    parameters_["population_teacher_energy"] =
        fmt::format("{:.17g}", dynamic_cast<const PopulationModel&>(model).teacher_energy());
  }
  restart.note_missing(c, root);
}

Diagnostics::Diagnostics(const Config& c, const Problem& p, std::ostream& log)
    : Diagnostics(c, p, Console(log, log)) {}

std::vector<Observer*> Diagnostics::observers() const {
  std::vector<Observer*> out;
  for (const auto& o : observers_) out.push_back(o.get());
  return out;
}

}  // namespace mfsim

#include "mfsim/io/config.hpp"

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "config_section.hpp"
#include "input_file.hpp"
#include "mfsim/core/enum_names.hpp"
#include "mfsim/diagnostics/knn.hpp"
#include "mfsim/models/population.hpp"

namespace mfsim {
namespace {

using config_detail::Section;

// A config is a small text file; a larger one is not read (a 10 GB file would be, in memory).
constexpr std::uint64_t max_config_bytes = 16u << 20;

// toml++ builds and frees a table per level of a dotted key or table header by recursion: a key
// 50 000 levels deep overflows the stack. A config needs two (section.key); deeper ones are
// refused before parsing. (toml++ bounds the nesting of arrays and inline tables itself.)
constexpr std::size_t max_key_depth = 32;

const std::vector<std::string> known_sections = {"model", "data",   "init",
                                                 "flow",  "output", "diagnostics"};

const EnumNames<ModelKind>& model_kinds() {
  static const EnumNames<ModelKind> names(
      "model kind", {{ModelKind::two_layer, "two_layer"}, {ModelKind::resnet, "resnet"}});
  return names;
}

const EnumNames<DataKind>& data_kinds() {
  static const EnumNames<DataKind> names("data kind", {{DataKind::teacher, "teacher"},
                                                       {DataKind::random_labels, "random_labels"},
                                                       {DataKind::file, "file"},
                                                       {DataKind::population, "population"}});
  return names;
}

const EnumNames<InitKind>& init_kinds() {
  static const EnumNames<InitKind> names(
      "init kind", {{InitKind::gaussian, "gaussian"}, {InitKind::file, "file"}});
  return names;
}

const EnumNames<InputDistribution>& input_distributions() {
  static const EnumNames<InputDistribution> names(
      "input distribution",
      {{InputDistribution::sphere, "sphere"}, {InputDistribution::gaussian, "gaussian"}});
  return names;
}

// The estimators diagnostics.kl lists.
enum class KlEstimator { transport, knn };
const EnumNames<KlEstimator>& kl_estimators() {
  static const EnumNames<KlEstimator> names(
      "KL estimator", {{KlEstimator::transport, "transport"}, {KlEstimator::knn, "knn"}});
  return names;
}

// Both models' specs while the config is read: [model] fills the keys of both (so that every key
// is validated whatever the kind), [init] their initial stds; the chosen one is kept.
struct ModelDraft {
  ModelKind kind = ModelKind::two_layer;
  TwoLayerSpec two_layer;
  ResNetSpec resnet;
  LossKind loss_kind() const { return two_layer.loss; }
};

// The line of `text` (1-based) on which a key or table header is nested deeper than
// max_key_depth, or 0. Dots inside strings and comments do not count; one outside them separates
// two parts of a key (or is a number's decimal point, at most one per value).
std::size_t line_of_too_deep_key(const std::string& text) {
  std::size_t line = 1, dots = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (c == '#') {  // a comment, to the end of the line
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {  // a string, multi-line ones too
      const std::string quote =
          text.compare(i, 3, std::string(3, c)) == 0 ? std::string(3, c) : std::string(1, c);
      std::size_t j = i + quote.size();
      while (j < text.size() && text.compare(j, quote.size(), quote) != 0) {
        if (c == '"' && text[j] == '\\') ++j;  // an escaped character in a basic string
        if (j < text.size() && text[j] == '\n') {
          ++line;
          if (quote.size() == 1) break;  // an unterminated one-line string: toml++ reports it
        }
        ++j;
      }
      i = std::min(j + quote.size(), text.size()) - 1;
    } else if (c == '.') {
      if (++dots >= max_key_depth) return line;
    } else if (c == '=' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}' || c == '\n') {
      dots = 0;  // a key or a value ends here
    }
  }
  return 0;
}

// "section.key=value" → root[section][key] = value (TOML syntax; a bare word is a string).
void apply_override(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string path = assignment.substr(0, eq);
  const auto dot = path.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == path.size())
    throw InputError("--set " + config_detail::quoted(assignment) + ": expected section.key=value");
  const std::string section = path.substr(0, dot), key = path.substr(dot + 1);
  const std::string text = assignment.substr(eq + 1);
  // One key, one value: a line break would start another key or section of TOML, which the
  // value's parse would take in silently.
  for (const char c : assignment)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      throw InputError("--set " + config_detail::quoted(assignment) +
                       ": holds a line break or another control character; one section.key=value "
                       "per --set");
  if (line_of_too_deep_key(text) != 0)
    throw InputError(fmt::format("--set {}: nested deeper than {} levels",
                                 config_detail::quoted(assignment), max_key_depth));

  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"value", text}};
  }
  toml::node* existing = root.get(section);
  if (!existing) {
    root.insert_or_assign(section, toml::table{});
    existing = root.get(section);
  }
  toml::table* table = existing->as_table();
  if (!table)
    throw InputError("--set " + config_detail::quoted(assignment) + ": " + section +
                     " is not a table");
  table->insert_or_assign(key, *parsed.get("value"));
}

void require_file(Section& s, const std::string& key, const std::string& path) {
  if (path.empty()) s.error(key, "is required");
  std::error_code ec;  // a symbolic-link loop: an error, reported below
  if (!std::filesystem::exists(path, ec) && !ec)
    s.error(key, "no such file " + config_detail::quoted(path));
  // Refused here, naming the key: a FIFO would block the run's start in open().
  try {
    require_regular_file(path);
  } catch (const InputError& e) {
    s.error(key, e.what());
  }
}

// Every key is read whatever the kind (see read_data); keys shared by the two models have one
// meaning in both: width is the number of particles of one layer (all of model A), activation the
// hidden units' σ, beta the output multiplier.
void read_model(ModelDraft& model, const toml::table& root, toml::table& resolved) {
  Section s(root, "model", resolved);
  model.kind = model_kinds().parse(s.choice("kind", "two_layer", model_kinds().names()));
  TwoLayerSpec& m = model.two_layer;
  ResNetSpec& r = model.resnet;
  const std::string activation = s.choice("activation", "tanh", activation_names());
  const real kappa = real(s.number("softplus_kappa", 1.0, 0.0, HUGE_VAL, true));
  m.activation = r.activation = Activation{parse_activation(activation), kappa};
  m.width = r.width = s.integer("width", 1024, 1);
  // β = 0 is the data-free flow (Ψ ≡ 0): with weight decay and noise, the Ornstein–Uhlenbeck
  // process of MATH.md V6a.
  m.beta = r.beta = s.number("beta", 1.0, 0.0);
  m.bias = s.boolean("bias", true);
  m.loss = r.loss = parse_loss(s.choice("loss", "square", loss_names()));
  m.outputs = r.outputs = int(s.integer("outputs", 1, 1, 1 << 16));
  if (m.outputs == 1 && m.loss == LossKind::cross_entropy)
    s.error("outputs",
            "model.loss = \"cross_entropy\" needs model.outputs >= 2 (one output a class)");
  if (m.outputs > 1 && m.loss == LossKind::logistic)
    s.error("outputs",
            "model.loss = \"logistic\" has one output (labels -1/+1): set model.outputs = 1, or "
            "model.loss = \"cross_entropy\" for several classes");
  // Model B only.
  r.depth = s.integer("depth", 16, 1, 1 << 20);
  r.head_width = s.integer("head_width", 1024, 1);
  r.alpha = s.number("alpha", 1.0, 0.0, HUGE_VAL, true);
  r.head_activation = {parse_activation(s.choice("head_activation", "tanh", activation_names())),
                       kappa};
  r.depth_init = parse_depth_init(s.choice("depth_init", "iid", depth_init_names()));
  r.path_norm_weight = s.number("path_norm_weight", 3.0, 0.0);
  // σ = Σ c_i He_i of every "hermite" activation: model A's σ, model B's σ0 and σh, and the
  // teacher's σ* (read_data). Read only where given, required where used.
  if (s.has("hermite_coefficients"))
    m.activation.hermite = s.numbers("hermite_coefficients", max_hermite_degree + 1);
  r.activation.hermite = r.head_activation.hermite = m.activation.hermite;
  const bool uses_hermite =
      m.activation.kind == ActivationKind::hermite ||
      (model.kind == ModelKind::resnet && r.head_activation.kind == ActivationKind::hermite);
  if (uses_hermite && m.activation.hermite.empty())
    s.error(
        "hermite_coefficients",
        "is required with activation \"hermite\": c_0 ... c_p of sigma = sum_i c_i He_i, p <= " +
            std::to_string(max_hermite_degree));
  s.finish();
}

// What the population flow has closed forms for (MATH.md §2.8): model A without bias, erf, relu or
// a polynomial, the square loss, a noiseless teacher of the same activation or a polynomial one,
// Gaussian inputs.
void check_population(const ModelDraft& model, const SyntheticDataSpec& g, const Section& s) {
  const std::string why = " with data.kind = \"population\"";
  if (model.kind != ModelKind::two_layer)
    throw InputError("model.kind: must be \"two_layer\"" + why);
  if (model.two_layer.bias)
    throw InputError("model.bias: must be false" + why +
                     " (no closed-form Gaussian kernel with a bias)");
  const ActivationKind a = model.two_layer.activation.kind;
  if (!has_population_kernel(a))
    throw InputError(
        "model.activation: must be \"erf\", \"relu\", \"linear\", \"quadratic\" or "
        "\"hermite\"" +
        why + " (got \"" + activation_name(a) + "\": no closed-form Gaussian kernel)");
  if (model.two_layer.loss != LossKind::square)
    throw InputError("model.loss: must be \"square\"" + why);
  if (model.two_layer.outputs != 1)
    throw InputError("model.outputs: must be 1" + why + " (got " +
                     std::to_string(model.two_layer.outputs) + ")");
  if (!has_population_kernel(a, g.teacher_activation.kind))
    s.error("teacher_activation", "must equal model.activation (\"" + activation_name(a) +
                                      "\") or be a polynomial (linear, quadratic, hermite)" + why +
                                      " (got \"" + activation_name(g.teacher_activation.kind) +
                                      "\")");
  if (g.inputs != InputDistribution::gaussian) s.error("inputs", "must be \"gaussian\"" + why);
  if (g.noise > 0)
    s.error("noise", "must be 0" + why + " (the population risk has no label noise)");
}

// Every key of a section is read whatever its `kind`, so that switching kinds with --set never
// turns the other keys into errors; only the chosen kind's requirements are enforced.
void read_data(Config& c, const ModelDraft& model, const toml::table& root, toml::table& resolved) {
  Section s(root, "data", resolved);
  DataConfig& d = c.data;
  d.kind = data_kinds().parse(s.choice("kind", "teacher", data_kinds().names()));
  SyntheticDataSpec& g = d.synthetic;
  g.target = d.kind == DataKind::random_labels ? TargetKind::random_labels : TargetKind::teacher;
  g.dim = int(s.integer("dim", 5, 1, 1 << 20));
  g.n_train = s.integer("n_train", 100, 1);
  g.n_test = s.integer("n_test", 1000, 0);
  // The population risk (MATH.md §2.8) is that of Gaussian inputs and a teacher of the student's
  // activation: those are its defaults.
  const bool population = d.kind == DataKind::population;
  g.inputs = input_distributions().parse(
      s.choice("inputs", population ? "gaussian" : "sphere", input_distributions().names()));
  g.teacher_width = int(s.integer("teacher_width", 1, 1, 1 << 24));
  g.teacher_activation.kind = parse_activation(
      s.choice("teacher_activation",
               population ? activation_name(model.two_layer.activation.kind) : std::string("relu"),
               activation_names()));
  // σ* = Σ c_i He_i of a "hermite" teacher (for teacher_width = 1 the single-index model
  // g(w*·x)): its own coefficients, else the student's.
  g.teacher_activation.hermite = model.two_layer.activation.hermite;
  if (s.has("teacher_hermite_coefficients"))
    g.teacher_activation.hermite =
        s.numbers("teacher_hermite_coefficients", max_hermite_degree + 1);
  if (g.teacher_activation.kind == ActivationKind::hermite && g.teacher_activation.hermite.empty())
    s.error("teacher_hermite_coefficients",
            "is required with teacher_activation = \"hermite\" (or model.hermite_coefficients)");
  // x ~ N(0, diag(covariance_diagonal)) for Gaussian inputs.
  if (s.has("covariance_diagonal")) {
    g.covariance_diagonal = s.numbers("covariance_diagonal", std::size_t(g.dim));
    if (g.covariance_diagonal.size() != std::size_t(g.dim))
      s.error("covariance_diagonal", "must hold data.dim = " + std::to_string(g.dim) +
                                         " variances (got " +
                                         std::to_string(g.covariance_diagonal.size()) + ")");
    for (double v : g.covariance_diagonal)
      if (!(v > 0)) s.error("covariance_diagonal", "must hold positive variances");
    if (g.inputs != InputDistribution::gaussian)
      s.error("covariance_diagonal", "needs inputs = \"gaussian\"");
  }
  g.noise = s.number("noise", 0.0, 0.0);
  g.seed = std::uint64_t(s.integer("seed", 1, 0));
  g.sign_labels = needs_signed_labels(model.loss_kind());
  d.path = s.text("path", "");
  if (d.kind == DataKind::file) require_file(s, "path", d.path);
  if (population) {
    check_population(model, g, s);
    g.n_train = 0;  // the flow needs no samples; the test set stays, a Monte-Carlo check
  }
  s.finish();
}

void read_init(Config& c, ModelDraft& model, const toml::table& root, toml::table& resolved) {
  Section s(root, "init", resolved);
  InitConfig& i = c.init;
  TwoLayerSpec& m = model.two_layer;
  ResNetSpec& r = model.resnet;
  i.kind = init_kinds().parse(s.choice("kind", "gaussian", init_kinds().names()));
  // The Gaussian law is also the reference of the KL diagnostics when starting from a file.
  // std_a: output weights (model A's a, the ResNet head's a); std_w, std_b: a hidden unit's input
  // weights and bias (model A, the ResNet blocks); std_u: the blocks' u; std_v: the head's v.
  m.std_a = r.std_a = s.number("std_a", 1.0, 0.0, HUGE_VAL, true);
  m.std_w = r.std_w = s.number("std_w", 1.0, 0.0, HUGE_VAL, true);
  m.std_b = r.std_b = s.number("std_b", 1.0, 0.0, HUGE_VAL, true);
  r.std_u = s.number("std_u", 1.0, 0.0, HUGE_VAL, true);
  r.std_v = s.number("std_v", 1.0, 0.0, HUGE_VAL, true);
  i.seed = std::uint64_t(s.integer("seed", 2, 0));
  i.antithetic = s.boolean("antithetic", false);
  if (i.kind == InitKind::gaussian && i.antithetic) {
    // Pairs live within one layer of the blocks and within the head.
    if (m.width % 2 != 0)
      s.error("antithetic", "needs an even model.width (got " + std::to_string(m.width) + ")");
    if (model.kind == ModelKind::resnet && r.head_width % 2 != 0)
      s.error("antithetic",
              "needs an even model.head_width (got " + std::to_string(r.head_width) + ")");
  }
  i.path = s.text("path", "");
  if (i.kind == InitKind::file) require_file(s, "path", i.path);
  i.frame = s.integer("frame", -1, std::numeric_limits<std::int64_t>::min());
  s.finish();
}

void read_flow(Config& c, const toml::table& root, toml::table& resolved) {
  Section s(root, "flow", resolved);
  RunSettings& f = c.flow;
  f.integrator = parse_integrator(s.choice("integrator", "euler", integrator_names()));
  f.dt = s.number("dt", 0.01, 0.0, HUGE_VAL, true);
  // Without `steps`, a given t_end alone decides when to stop.
  const bool has_steps = s.has("steps"), has_t_end = s.has("t_end");
  if (has_t_end) f.t_end = s.number("t_end", 0.0, 0.0, HUGE_VAL, true);
  f.steps =
      (has_t_end && !has_steps) ? std::numeric_limits<index_t>::max() : s.integer("steps", 1000, 0);
  f.loss_tol = s.number("loss_tol", 0.0, 0.0);
  // Mean-field Langevin dynamics and the regularisers (flow/regularisation.hpp).
  Regularisation& r = f.regularisation;
  r.temperature = s.number("temperature", 0.0, 0.0);
  r.schedule = parse_temperature_schedule(
      s.choice("temperature_schedule", "constant", temperature_schedule_names()));
  r.temperature_rate = s.number("temperature_rate", 0.0, 0.0);
  r.weight_decay = s.number("weight_decay", 0.0, 0.0);
  r.path_norm_penalty = s.number("path_norm_penalty", 0.0, 0.0);
  r.path_norm_smoothing = s.number("path_norm_smoothing", 1e-3, 0.0, HUGE_VAL, true);
  // Default: the init seed (a stream of its own, so independent of the initial draws). Resolved
  // only where it matters, so that a noiseless run's resolved config does not grow a key that
  // follows init.seed.
  r.noise_seed = c.init.seed;
  if (r.noisy() || s.has("noise_seed"))
    r.noise_seed = std::uint64_t(s.integer("noise_seed", std::int64_t(c.init.seed), 0));
  // Stochastic gradients (flow/minibatch.hpp).
  MinibatchSettings& b = f.minibatch;
  b.size = s.integer("batch_size", 0, 0);
  b.online = s.boolean("online", false);
  if (b.online && b.size == 0)
    s.error("online", "needs flow.batch_size > 0 (the fresh samples of each step)");
  if (b.size > 0 && c.data.kind == DataKind::population)
    s.error("batch_size", "must be 0 with data.kind = \"population\" (the flow has no samples)");
  if (b.online && c.data.kind == DataKind::file)
    s.error("online",
            "draws fresh samples of the synthetic data law: it needs data.kind = "
            "\"teacher\" or \"random_labels\", not a file");
  b.online_data = c.data.synthetic;
  b.seed = c.init.seed;
  if (b.size > 0 || s.has("batch_seed"))
    b.seed = std::uint64_t(s.integer("batch_seed", std::int64_t(c.init.seed), 0));
  // The activation caches of both models (TwoLayerSpec::activation_cache_bytes,
  // ResNetSpec::activation_cache_bytes; docs/performance.md).
  const std::int64_t cache_bytes =
      s.integer("activation_cache_bytes", std::int64_t(TwoLayerSpec().activation_cache_bytes), 0);
  if (auto* two_layer = std::get_if<TwoLayerSpec>(&c.model.spec))
    two_layer->activation_cache_bytes = std::uint64_t(cache_bytes);
  if (auto* resnet = std::get_if<ResNetSpec>(&c.model.spec))
    resnet->activation_cache_bytes = std::uint64_t(cache_bytes);
  if (r.noisy() && f.integrator != IntegratorKind::euler)
    s.error("integrator", "must be \"euler\" (Euler–Maruyama) when flow.temperature > 0 (got \"" +
                              integrator_name(f.integrator) +
                              "\"): the noise has no higher-order "
                              "scheme here");
  s.finish();
}

void read_output(Config& c, const toml::table& root, toml::table& resolved) {
  Section s(root, "output", resolved);
  c.output.path = s.text("path", "run.h5");
  if (c.output.path.empty()) s.error("path", "must not be empty");
  c.flow.observe_every = s.integer("observe_every", 10, 1);
  c.flow.snapshot_every = s.integer("snapshot_every", 100, 1);
  s.finish();
}

// Read after [output]: the cadences default to output.observe_every.
void read_diagnostics(Config& c, const toml::table& root, toml::table& resolved) {
  Section s(root, "diagnostics", resolved);
  DiagnosticsSettings& d = c.diagnostics;
  d.every = s.integer("every", c.flow.observe_every, 1);
  // The population flow has no training samples: its Gram matrix is built on a probe set of
  // probe_samples fresh inputs (Dataset::probe), and is off without one.
  const bool population = c.data.kind == DataKind::population;
  d.probe_samples = s.integer("probe_samples", 0, 0);
  if (d.probe_samples > 0 && !population)
    s.error("probe_samples",
            "needs data.kind = \"population\" (the other data kinds build the Gram matrix on "
            "their training samples)");
  d.gram = s.boolean("gram", !population || d.probe_samples > 0);
  if (population && d.gram && d.probe_samples == 0)
    s.error("gram",
            "needs samples, and data.kind = \"population\" has none: set "
            "diagnostics.probe_samples = n (a probe set of n inputs) or gram = false");
  if (!d.gram) d.probe_samples = 0;  // the probe set serves the Gram diagnostics only
  d.gram_every = s.integer("gram_every", d.every, 1);
  d.gram_max_samples = s.integer("gram_max_samples", 2000, 1);
  if (d.probe_samples > d.gram_max_samples)
    s.error("probe_samples", "must be <= gram_max_samples = " + std::to_string(d.gram_max_samples) +
                                 " (got " + std::to_string(d.probe_samples) + ")");
  d.gram_solver = parse_eigen_solver(s.choice("gram_solver", "dense", eigen_solver_names()));
  d.gram_spectrum = s.boolean("gram_spectrum", false);
  if (d.gram_spectrum && d.gram_solver == EigenSolverKind::lanczos)
    s.error("gram_spectrum",
            "needs gram_solver = \"dense\" (Lanczos gives only the extreme eigenvalues)");
  d.gram_matrix = s.boolean("gram_matrix", false);
  d.gram_layers = s.boolean("gram_layers", false);
  d.ntk = s.boolean("ntk", true);
  d.kl_transport = d.kl_knn = false;
  for (const auto& name : s.strings("kl", {}, kl_estimators().names())) {
    const KlEstimator estimator = kl_estimators().parse(name);
    d.kl_transport = d.kl_transport || estimator == KlEstimator::transport;
    d.kl_knn = d.kl_knn || estimator == KlEstimator::knn;
  }
  if (d.kl_transport && c.flow.regularisation.noisy())
    s.error("kl",
            "\"transport\" is exact only without noise (flow.temperature > 0): use kl = "
            "[\"knn\"], whose entropy also gives the free energy");
  if (d.kl_transport && population)
    s.error("kl",
            "\"transport\" is not implemented for data.kind = \"population\" (it needs the "
            "Laplacian of the potential): use kl = [\"knn\"]");
  d.knn_k = int(s.integer("knn_k", 5, 1, knn_max_k));
  d.knn_every = s.integer("knn_every", d.every, 1);
  d.free_energy = s.boolean("free_energy", true);
  d.gibbs_gap_required = s.has("gibbs_gap");
  d.gibbs_gap = s.boolean("gibbs_gap", true);
  d.gibbs_samples = s.integer("gibbs_samples", 65536, 16);
  d.path_norm = s.boolean("path_norm", true);
  d.path_length = s.boolean("path_length", true);
  s.finish();
}

}  // namespace

const std::vector<std::string>& model_kind_names() {
  return model_kinds().names();
}
const std::vector<std::string>& data_kind_names() {
  return data_kinds().names();
}
const std::vector<std::string>& init_kind_names() {
  return init_kinds().names();
}
const std::string& model_kind_name(ModelKind kind) {
  return model_kinds().name(kind);
}
const std::string& data_kind_name(DataKind kind) {
  return data_kinds().name(kind);
}
const std::string& init_kind_name(InitKind kind) {
  return init_kinds().name(kind);
}

namespace {

// A relative data.path or init.path written in a config file names a file beside the config (as
// most tools read paths in their config files), whatever the working directory; one given by an
// override (--set) stays relative to the working directory. Absolute paths stay as they are.
void resolve_from_folder(toml::table& root, const std::filesystem::path& folder) {
  if (folder.empty()) return;
  for (const char* section : {"data", "init"}) {
    toml::table* table = root[section].as_table();
    if (!table) continue;
    toml::value<std::string>* path = (*table)["path"].as_string();
    if (!path || path->get().empty() || std::filesystem::path(path->get()).is_absolute()) continue;
    *path = (folder / path->get()).lexically_normal().string();
  }
}

Config parse(const std::string& text, const std::vector<std::string>& overrides,
             const std::string& source, const std::filesystem::path& folder) {
  if (const std::size_t line = line_of_too_deep_key(text); line != 0)
    throw InputError(fmt::format("{}:{}: a key or table header nested deeper than {} levels",
                                 source, line, max_key_depth));
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw InputError(source + ":" + std::to_string(e.source().begin.line) +
                     ": TOML syntax error: " + std::string(e.description()));
  }
  resolve_from_folder(root, folder);
  for (const auto& o : overrides) apply_override(root, o);
  for (const auto& [key, node] : root) {
    (void)node;
    bool known = false;
    for (const auto& k : known_sections) known = known || k == key.str();
    if (!known) throw InputError(std::string(key.str()) + ": unknown section");
  }

  Config c;
  c.source = source;
  c.verbatim = text;
  toml::table resolved;
  ModelDraft model;
  read_model(model, root, resolved);
  read_data(c, model, root, resolved);
  read_init(c, model, root, resolved);
  if (model.kind == ModelKind::resnet)
    c.model.spec = model.resnet;
  else
    c.model.spec = model.two_layer;
  read_flow(c, root, resolved);
  read_output(c, root, resolved);
  read_diagnostics(c, root, resolved);
  std::ostringstream os;
  os << resolved;
  c.resolved = os.str();
  return c;
}

}  // namespace

Config parse_config(const std::string& text, const std::vector<std::string>& overrides,
                    const std::string& source) {
  return parse(text, overrides, source, {});
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  // std::ifstream opens a directory and reads nothing from it: the defaults would run.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path + ": is a directory, not a config file");
  // A FIFO or a device (/dev/zero) would block or never end; a config is a small text file.
  const std::uint64_t size = require_regular_file(path);
  if (size > max_config_bytes)
    throw InputError(fmt::format("{}: {} bytes, more than a config file may hold ({})", path, size,
                                 max_config_bytes));
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), overrides, path, std::filesystem::path(path).parent_path());
}

}  // namespace mfsim

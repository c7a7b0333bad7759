#pragma once
// The run configuration: TOML sections [model] [data] [init] [flow] [output] [diagnostics], with
// command-line overrides `section.key=value`. Every key is validated; a problem is an InputError
// whose one-line message names the key.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/diagnostics/settings.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {

enum class ModelKind { two_layer, resnet };
enum class DataKind { teacher, random_labels, file, population };
enum class InitKind { gaussian, file };

// The names the config keys accept (model.kind, data.kind, init.kind), and the inverse.
const std::vector<std::string>& model_kind_names();
const std::vector<std::string>& data_kind_names();
const std::vector<std::string>& init_kind_names();
const std::string& model_kind_name(ModelKind kind);
const std::string& data_kind_name(DataKind kind);
const std::string& init_kind_name(InitKind kind);

// The one spec of the model the config chose (with the initial stds of [init]). Every [model] key
// is validated whatever the kind, so that switching kinds with --set never turns the other
// model's keys into errors; the keys the models share (width, beta, activation, loss, std_a,
// std_w, std_b) have one meaning in both.
struct ModelConfig {
  std::variant<TwoLayerSpec, ResNetSpec> spec;

  ModelKind kind() const {
    return std::holds_alternative<ResNetSpec>(spec) ? ModelKind::resnet : ModelKind::two_layer;
  }
  LossKind loss_kind() const {
    return std::visit([](const auto& s) { return s.loss; }, spec);
  }
  // c = model.outputs.
  int outputs() const {
    return std::visit([](const auto& s) { return s.outputs; }, spec);
  }
  // Coordinates of all the particles (the models' own counts, in long double).
  long double coordinates(int dim) const {
    return std::visit([dim](const auto& s) { return s.coordinates(dim); }, spec);
  }
  // The spec of that kind; std::bad_variant_access if the config chose the other model.
  const TwoLayerSpec& two_layer() const { return std::get<TwoLayerSpec>(spec); }
  const ResNetSpec& resnet() const { return std::get<ResNetSpec>(spec); }
};

struct DataConfig {
  DataKind kind = DataKind::teacher;
  SyntheticDataSpec synthetic;  // kind teacher, random_labels or population (no training set)
  std::string path;             // kind file
};

struct InitConfig {
  InitKind kind = InitKind::gaussian;
  std::uint64_t seed = 2;
  bool antithetic = false;
  std::string path;  // kind file
  index_t frame = -1;
};

struct OutputConfig {
  std::string path = "run.h5";
};

struct Config {
  ModelConfig model;
  DataConfig data;
  InitConfig init;
  RunSettings flow;  // [flow] plus the cadences of [output]
  OutputConfig output;
  DiagnosticsSettings diagnostics;

  std::string source;    // where the text came from (file name)
  std::string verbatim;  // the TOML text as given
  std::string resolved;  // every key with its value after defaults and overrides
};

// Reads `path` and applies the overrides ("section.key=value"; values in TOML syntax, bare words
// are strings). A relative data.path or init.path in the file is taken from the file's folder
// (one given by an override from the working directory).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const std::string& text, const std::vector<std::string>& overrides = {},
                    const std::string& source = "<config>");

}  // namespace mfsim

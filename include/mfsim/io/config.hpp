#pragma once
// The run configuration: TOML sections [model] [data] [init] [flow] [output] [diagnostics], with
// command-line overrides `section.key=value`. Every key is validated; a problem is an InputError
// whose one-line message names the key.
#include <cstdint>
#include <string>
#include <vector>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/diagnostics/settings.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {

// Both specs are filled from every key whatever the kind (keys shared by the models, such as
// width, beta, activation, std_a, std_w and std_b, have one meaning in both); `kind` picks one.
struct ModelConfig {
  std::string kind = "two_layer";  // two_layer | resnet
  TwoLayerSpec two_layer;          // includes the initial stds of [init]
  ResNetSpec resnet;               // includes the initial stds of [init]
};

struct DataConfig {
  std::string kind = "teacher";  // teacher | random_labels | file
  SyntheticDataSpec synthetic;
  std::string path;  // kind = "file"
};

struct InitConfig {
  std::string kind = "gaussian";  // gaussian | file
  std::uint64_t seed = 2;
  bool antithetic = false;
  std::string path;  // kind = "file"
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
// are strings).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const std::string& text, const std::vector<std::string>& overrides = {},
                    const std::string& source = "<config>");

}  // namespace mfsim

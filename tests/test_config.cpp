// Config parsing: defaults, overrides, and every kind of bad input giving a one-line error that
// names the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "mfsim/app/model_factory.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/io/config.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, overrides, "test.toml");
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(Config, DefaultsAreResolved) {
  const Config c = parse_config("");
  EXPECT_EQ(c.model.kind(), ModelKind::two_layer);
  EXPECT_EQ(c.model.two_layer().width, 1024);
  EXPECT_EQ(c.model.two_layer().activation.kind, ActivationKind::tanh);
  EXPECT_EQ(c.data.synthetic.n_train, 100);
  EXPECT_EQ(c.flow.steps, 1000);
  EXPECT_EQ(c.flow.integrator, IntegratorKind::euler);
  EXPECT_EQ(c.output.path, "run.h5");
  EXPECT_THAT(c.resolved, HasSubstr("width = 1024"));
  EXPECT_THAT(c.resolved, HasSubstr("observe_every = 10"));
  // The resolved text is itself a valid config that resolves to the same thing.
  EXPECT_EQ(parse_config(c.resolved).resolved, c.resolved);
}

TEST(Config, ValuesAndOverrides) {
  const Config c = parse_config(
      "[model]\nactivation = \"softplus\"\nsoftplus_kappa = 4\nwidth = 64\n"
      "[flow]\nintegrator = \"rk4\"\nt_end = 2.5\n",
      {"model.width=128", "model.beta=2", "output.path=out/run.h5", "init.antithetic=true",
       "data.inputs=gaussian"});
  EXPECT_EQ(c.model.two_layer().width, 128);
  EXPECT_DOUBLE_EQ(c.model.two_layer().beta, 2.0);
  EXPECT_EQ(c.model.two_layer().activation.kind, ActivationKind::softplus);
  EXPECT_DOUBLE_EQ(c.model.two_layer().activation.kappa, 4.0);
  EXPECT_EQ(c.output.path, "out/run.h5");
  EXPECT_TRUE(c.init.antithetic);
  EXPECT_EQ(c.data.synthetic.inputs, InputDistribution::gaussian);
  EXPECT_DOUBLE_EQ(c.flow.t_end, 2.5);
  EXPECT_GT(c.flow.steps, 1000000);  // t_end alone decides
  EXPECT_EQ(parse_config("[flow]\nt_end = 1.0\nsteps = 5\n").flow.steps, 5);
  EXPECT_EQ(c.model.two_layer().activation_cache_bytes, std::uint64_t(256) << 20);
  EXPECT_EQ(
      parse_config("[flow]\nactivation_cache_bytes = 0\n").model.two_layer().activation_cache_bytes,
      0u);
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_THAT(error_of("[model]\nwidht = 5\n"), HasSubstr("model.widht: unknown key"));
  EXPECT_THAT(error_of("[modle]\n"), HasSubstr("modle: unknown section"));
  EXPECT_THAT(error_of("[model]\nwidth = 0\n"), HasSubstr("model.width: must be >= 1 (got 0)"));
  EXPECT_THAT(error_of("[model]\nwidth = -3\n"), HasSubstr("model.width"));
  EXPECT_THAT(error_of("[model]\nwidth = 2.5\n"), HasSubstr("model.width: must be an integer"));
  EXPECT_THAT(error_of("[model]\nwidth = \"big\"\n"), HasSubstr("model.width"));
  EXPECT_THAT(error_of("[model]\nbeta = nan\n"), HasSubstr("model.beta: must be a finite number"));
  EXPECT_THAT(error_of("[model]\nbeta = -1\n"), HasSubstr("model.beta: must be >= 0"));
  EXPECT_THAT(error_of("[model]\nactivation = \"swish\"\n"),
              HasSubstr("model.activation: must be one of relu, tanh"));
  EXPECT_THAT(error_of("[model]\nkind = \"resnet3\"\n"),
              HasSubstr("model.kind: must be one of two_layer, resnet"));
  EXPECT_THAT(error_of("[model]\nbias = 1\n"), HasSubstr("model.bias: must be true or false"));
  EXPECT_THAT(error_of("[flow]\ndt = 0\n"), HasSubstr("flow.dt: must be > 0"));
  EXPECT_THAT(error_of("[flow]\ndt = -0.1\n"), HasSubstr("flow.dt"));
  EXPECT_THAT(error_of("[flow]\ndt = inf\n"), HasSubstr("flow.dt: must be a finite number"));
  EXPECT_THAT(error_of("[flow]\nintegrator = \"leapfrog\"\n"), HasSubstr("flow.integrator"));
  EXPECT_THAT(error_of("[flow]\nsteps = -1\n"), HasSubstr("flow.steps"));
  EXPECT_THAT(error_of("[flow]\nactivation_cache_bytes = -1\n"),
              HasSubstr("flow.activation_cache_bytes: must be >= 0"));
  EXPECT_THAT(error_of("[data]\nn_train = 0\n"), HasSubstr("data.n_train"));
  EXPECT_THAT(error_of("[data]\nnoise = -1\n"), HasSubstr("data.noise"));
  EXPECT_THAT(error_of("[data]\nkind = \"file\"\npath = \"/nonexistent/data.h5\"\n"),
              HasSubstr("data.path: no such file"));
  EXPECT_THAT(error_of("[data]\nkind = \"file\"\n"), HasSubstr("data.path: is required"));
  EXPECT_THAT(error_of("[init]\nkind = \"file\"\npath = \"/nonexistent/run.h5\"\n"),
              HasSubstr("init.path: no such file"));
  EXPECT_THAT(error_of("[init]\nantithetic = true\n[model]\nwidth = 7\n"),
              HasSubstr("init.antithetic: needs an even model.width"));
  EXPECT_THAT(error_of("[output]\nobserve_every = 0\n"), HasSubstr("output.observe_every"));
  EXPECT_THAT(error_of("[output]\npath = \"\"\n"), HasSubstr("output.path"));
  EXPECT_THAT(error_of("model = 3\n"), HasSubstr("model: must be a table"));
  EXPECT_THAT(error_of("[model\nwidth = 3\n"), HasSubstr("test.toml:1: TOML syntax error"));
}

// The memory check's count of coordinates is the models' own: the particles they allocate.
TEST(Config, CoordinateCountsAreThoseOfTheModels) {
  for (const char* text : {"[model]\nwidth = 12\n", "[model]\nwidth = 12\nbias = false\n",
                           "[model]\nkind = \"resnet\"\ndepth = 3\nwidth = 4\nhead_width = 6\n"}) {
    const Config c = parse_config(text, {"data.dim=5", "data.n_train=8", "data.n_test=2"});
    const Dataset data = make_synthetic_dataset(c.data.synthetic);
    const auto model = make_model(c.model, data);
    long double allocated = 0;
    for (const GroupSpec& g : model->groups()) allocated += (long double)g.global_count * g.dim();
    EXPECT_EQ(c.model.coordinates(5), allocated) << text;
  }
}

TEST(Config, KindsHaveNameTables) {
  EXPECT_EQ(model_kind_names(), (std::vector<std::string>{"two_layer", "resnet"}));
  EXPECT_EQ(data_kind_names(),
            (std::vector<std::string>{"teacher", "random_labels", "file", "population"}));
  EXPECT_EQ(init_kind_names(), (std::vector<std::string>{"gaussian", "file"}));
  EXPECT_EQ(model_kind_name(ModelKind::resnet), "resnet");
  EXPECT_EQ(data_kind_name(DataKind::random_labels), "random_labels");
  EXPECT_EQ(init_kind_name(InitKind::file), "file");
  EXPECT_EQ(parse_config("[data]\nkind = \"random_labels\"\n").data.kind, DataKind::random_labels);
}

TEST(Config, ResNetKeys) {
  const Config c = parse_config(
      "[model]\nkind = \"resnet\"\ndepth = 8\nwidth = 64\nhead_width = 128\nalpha = 2.5\n"
      "beta = 3\nactivation = \"softplus\"\nsoftplus_kappa = 4\nhead_activation = \"erf\"\n"
      "depth_init = \"constant\"\npath_norm_weight = 1.5\n"
      "[init]\nstd_u = 0.5\nstd_w = 0.6\nstd_b = 0.7\nstd_a = 0.8\nstd_v = 0.9\n"
      "antithetic = true\n");
  const ResNetSpec& r = c.model.resnet();
  EXPECT_EQ(c.model.kind(), ModelKind::resnet);
  EXPECT_EQ(r.depth, 8);
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.head_width, 128);
  EXPECT_DOUBLE_EQ(r.alpha, 2.5);
  EXPECT_DOUBLE_EQ(r.beta, 3.0);
  EXPECT_EQ(r.activation.kind, ActivationKind::softplus);
  EXPECT_DOUBLE_EQ(r.activation.kappa, 4.0);
  EXPECT_EQ(r.head_activation.kind, ActivationKind::erf);
  EXPECT_DOUBLE_EQ(r.head_activation.kappa, 4.0);
  EXPECT_EQ(r.depth_init, DepthInit::constant);
  EXPECT_DOUBLE_EQ(r.path_norm_weight, 1.5);
  EXPECT_DOUBLE_EQ(r.std_u, 0.5);
  EXPECT_DOUBLE_EQ(r.std_w, 0.6);
  EXPECT_DOUBLE_EQ(r.std_b, 0.7);
  EXPECT_DOUBLE_EQ(r.std_a, 0.8);
  EXPECT_DOUBLE_EQ(r.std_v, 0.9);
  EXPECT_TRUE(c.init.antithetic);
  EXPECT_THAT(c.resolved, HasSubstr("depth_init = 'constant'"));
  // Defaults, and the keys shared with model A have the same meaning there.
  const Config d = parse_config("[model]\nkind = \"resnet\"\n");
  EXPECT_EQ(d.model.resnet().depth, 16);
  EXPECT_EQ(d.model.resnet().head_width, 1024);
  EXPECT_EQ(d.model.resnet().depth_init, DepthInit::iid);
  EXPECT_DOUBLE_EQ(d.model.resnet().path_norm_weight, 3.0);
  const Config a = parse_config("[model]\nkind = \"resnet\"\nwidth = 64\n[init]\nstd_a = 0.8\n",
                                {"model.kind=two_layer"});
  EXPECT_EQ(a.model.two_layer().width, 64);
  EXPECT_DOUBLE_EQ(a.model.two_layer().std_a, 0.8);
  // One spec, of the chosen kind.
  EXPECT_THROW((void)a.model.resnet(), std::bad_variant_access);
  EXPECT_THROW((void)d.model.two_layer(), std::bad_variant_access);
  // Keys of the other model are accepted whatever the kind (so that --set can switch kinds).
  EXPECT_NO_THROW(parse_config("[model]\nkind = \"resnet\"\nbias = false\n"));
  EXPECT_NO_THROW(parse_config("[model]\ndepth = 4\nhead_width = 3\n[init]\nstd_u = 2\n"));
  EXPECT_NO_THROW(parse_config("[model]\nhead_width = 3\n[init]\nantithetic = true\n"));
}

TEST(Config, ResNetErrorsNameTheKey) {
  const std::string resnet = "[model]\nkind = \"resnet\"\n";
  EXPECT_THAT(error_of(resnet + "depth = 0\n"), HasSubstr("model.depth: must be in [1, "));
  EXPECT_THAT(error_of(resnet + "depth = 2.5\n"), HasSubstr("model.depth: must be an integer"));
  EXPECT_THAT(error_of(resnet + "head_width = 0\n"), HasSubstr("model.head_width: must be >= 1"));
  EXPECT_THAT(error_of(resnet + "alpha = 0\n"), HasSubstr("model.alpha: must be > 0"));
  EXPECT_THAT(error_of(resnet + "alpha = nan\n"),
              HasSubstr("model.alpha: must be a finite number"));
  EXPECT_THAT(error_of(resnet + "head_activation = \"swish\"\n"),
              HasSubstr("model.head_activation: must be one of relu, tanh"));
  EXPECT_THAT(error_of(resnet + "depth_init = \"random\"\n"),
              HasSubstr("model.depth_init: must be one of iid, constant"));
  EXPECT_THAT(error_of(resnet + "path_norm_weight = -1\n"),
              HasSubstr("model.path_norm_weight: must be >= 0"));
  EXPECT_THAT(error_of(resnet + "widht = 3\n"), HasSubstr("model.widht: unknown key"));
  EXPECT_THAT(error_of(resnet + "[init]\nstd_u = -1\n"), HasSubstr("init.std_u: must be > 0"));
  EXPECT_THAT(error_of(resnet + "[init]\nstd_v = inf\n"),
              HasSubstr("init.std_v: must be a finite number"));
  EXPECT_THAT(error_of(resnet + "width = 7\n[init]\nantithetic = true\n"),
              HasSubstr("init.antithetic: needs an even model.width (got 7)"));
  EXPECT_THAT(error_of(resnet + "head_width = 9\n[init]\nantithetic = true\n"),
              HasSubstr("init.antithetic: needs an even model.head_width (got 9)"));
}

TEST(Config, BadOverridesNameTheKey) {
  EXPECT_THAT(error_of("", {"model.width=abc"}), HasSubstr("model.width"));
  EXPECT_THAT(error_of("", {"widthonly=3"}), HasSubstr("expected section.key=value"));
  EXPECT_THAT(error_of("", {"model.width"}), HasSubstr("expected section.key=value"));
  EXPECT_THAT(error_of("", {"model.colour=3"}), HasSubstr("model.colour: unknown key"));
}

TEST(Config, DeeplyNestedKeysAreRefusedBeforeParsing) {
  // toml++ recurses per level of a dotted key or table header: 50 000 levels overflowed the stack.
  std::string deep_key = "a", deep_header = "[a";
  for (int i = 0; i < 50000; ++i) deep_key += ".a", deep_header += ".a";
  EXPECT_THAT(error_of(deep_key + " = 1\n"),
              HasSubstr("test.toml:1: a key or table header nested"));
  EXPECT_THAT(error_of("[model]\nwidth = 8\n" + deep_header + "]\n"),
              HasSubstr("test.toml:3: a key or table header nested deeper than 32 levels"));
  EXPECT_THAT(error_of("", {"model.x={" + deep_key + " = 1}"}),
              HasSubstr("nested deeper than 32 levels"));
  // Dots in strings, comments and numbers are not nesting.
  const std::string dots(100, '.');
  EXPECT_NO_THROW(parse_config("[model] # " + dots +
                                   "\nactivation = \"tanh\"\n[output]\npath = '''" + dots + "\n" +
                                   dots + "'''\n[flow]\ndt = 0.5\n",
                               {}, "test.toml"));
  EXPECT_THAT(error_of("[model]\nactivation = \"" + dots + "\"\n"), HasSubstr("model.activation"));
  std::string keys = "[model]\nwidth = 4\n";
  for (int i = 0; i < 40; ++i) keys += "[\"a.b\".c" + std::to_string(i) + "]\n";
  EXPECT_THAT(error_of(keys), HasSubstr("a.b: unknown section"));  // parsed, then refused by name
}

TEST(Config, OverridesHoldOneKeyAndOneValue) {
  // A line break would start another section, which the value's parse took in silently.
  EXPECT_THAT(error_of("", {"model.width=8\n[flow]\nsteps=1"}),
              HasSubstr("holds a line break or another control character"));
  EXPECT_THAT(error_of("", {std::string("model.activation=tanh\0x", 23)}),
              HasSubstr("control character"));
  EXPECT_THAT(error_of("", {"model.activation=\"tanh\rx\""}), HasSubstr("control character"));
  EXPECT_EQ(parse_config("", {"model.width=8 # a comment"}, "t").model.two_layer().width, 8);
  EXPECT_EQ(parse_config("", {"output.path=a\tb.h5"}, "t").output.path, "a\tb.h5");
}

TEST(Config, OnlyRegularFilesOfASaneSizeAreRead) {
  const std::string dir = test::scratch_dir("config_special_files");
  // A device never ends; a FIFO blocks open() until a writer comes (none will).
  EXPECT_THAT(error_message([] { load_config("/dev/zero"); }),
              HasSubstr("/dev/zero: is a character device, not a regular file"));
  const std::string fifo = dir + "/fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(error_message([&] { load_config(fifo); }),
              HasSubstr("is a FIFO, not a regular file"));
  const std::string huge = dir + "/huge.toml";
  std::ofstream(huge).close();
  std::filesystem::resize_file(huge, 17u << 20);  // sparse: no disk space used
  EXPECT_THAT(error_message([&] { load_config(huge); }),
              HasSubstr("more than a config file may hold"));
  // The same for the files a config names.
  for (const std::string key : {"data", "init"})
    EXPECT_THAT(error_of("[" + key + "]\nkind = \"file\"\npath = \"" + fifo + "\"\n"),
                HasSubstr(key + ".path: " + fifo + ": is a FIFO, not a regular file"));
}

TEST(Config, LoadsFiles) {
  const std::string dir = test::scratch_dir("config_files");
  std::ofstream(dir + "/a.toml") << "[model]\nwidth = 16\n";
  EXPECT_EQ(load_config(dir + "/a.toml").model.two_layer().width, 16);
  EXPECT_EQ(load_config(dir + "/a.toml").source, dir + "/a.toml");
  EXPECT_THROW(load_config(dir + "/missing.toml"), InputError);
  // The shipped example configs are valid.
  EXPECT_NO_THROW(load_config(MFSIM_SOURCE_DIR "/simulations/configs/two_layer_meanfield.toml"));
  EXPECT_EQ(load_config(MFSIM_SOURCE_DIR "/simulations/configs/resnet_meanfield.toml").model.kind(),
            ModelKind::resnet);
}

}  // namespace
}  // namespace mfsim
